//! What the tests read from a sign-in: the keychain entry of a provider's app, the secrets a
//! session holds (for the leak checks), the loopback port of an authorization URL, the files a
//! run wrote, and SHA-256 as the provider's request log spells it.

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::path::{Path, PathBuf};

use logto_desktop::auth::{KeyringStore, StoredSession, TokenStore};
use url::Url;

use crate::support::idp::Idp;

/// The keychain entry of `idp`'s app, emptied (the Secret Service must be running).
pub fn empty_keychain(idp: &Idp) -> KeyringStore {
    let store = KeyringStore::new(KEYCHAIN_SERVICE, &idp.info.issuer, &idp.info.app_id);
    store
        .delete()
        .expect("the Secret Service must be running (run the tests with `make test`)");
    store
}

/// The session the entry holds, decoded as the app would.
pub fn stored_session(store: &KeyringStore, idp: &Idp) -> Option<StoredSession> {
    let text = store.load().expect("the keychain answers")?;
    Some(
        StoredSession::decode(&text, &idp.info.issuer, &idp.info.app_id)
            .expect("the entry decodes"),
    )
}

/// The tokens a session holds (ID, default access, refresh) and its nonce.
pub fn session_secrets(session: &StoredSession) -> Vec<String> {
    [
        session.id_token(),
        session.access_token().map(|(token, _)| token),
        session.refresh_token(),
        session.nonce(),
    ]
    .into_iter()
    .flatten()
    .map(str::to_string)
    .collect()
}

/// The port of the loopback `redirect_uri` an authorization URL carries, checked to be
/// `http://127.0.0.1:<port>/callback`.
pub fn redirect_port(url: impl AsRef<str>) -> u16 {
    let url = Url::parse(url.as_ref()).expect("the authorization URL");
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("redirect_uri in the authorization URL");
    let redirect = Url::parse(&redirect).expect("redirect_uri is a URL");
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(redirect.path(), "/callback");
    redirect.port().expect("an explicit port")
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Lowercase hex SHA-256, as the provider's request log names a token.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
