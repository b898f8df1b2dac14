//! Where sessions live between runs: the OS keychain (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows) behind the [`TokenStore`] seam. There is no file fallback: when
//! the keychain is missing or locked the caller gets [`AuthError::Keychain`] and nothing is
//! written anywhere else.

use std::sync::Mutex;

use super::error::AuthError;

/// Keeps one secret string. Implementations block; async callers use `spawn_blocking`.
pub trait TokenStore: Send + Sync {
    /// The secret, or `None` when nothing is kept. A secret that cannot be read back as text is
    /// [`AuthError::CorruptSession`]; a store that cannot be used is [`AuthError::Keychain`].
    /// Errors never hold the secret.
    fn load(&self) -> Result<Option<String>, AuthError>;
    /// Keeps `secret` (at most 2,560 bytes, the smallest keychain's limit: Windows'),
    /// replacing what was kept. Nothing may be written anywhere else when this fails.
    fn save(&self, secret: &str) -> Result<(), AuthError>;
    /// Deleting what is not there is not an error.
    fn delete(&self) -> Result<(), AuthError>;
    /// Whether a session could be saved now; asked before the browser opens, so that a locked or
    /// missing keychain is reported before the person signs in, not after. Changes nothing the
    /// app keeps. By default: the entry can be read.
    fn check(&self) -> Result<(), AuthError> {
        match self.load() {
            Ok(_) | Err(AuthError::CorruptSession) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The OS keychain entry for one tenant and app of one program: account `<app id>@<issuer>`
/// under the program's service, so two tenants, two apps or two programs never share an entry.
/// With the `os-keychain` feature (a default one).
#[cfg(feature = "os-keychain")]
pub struct KeyringStore {
    service: String,
    account: String,
}

#[cfg(feature = "os-keychain")]
impl KeyringStore {
    /// The entry for `app_id` at `issuer` under `service`: account `<app id>@<issuer>`. Touches
    /// no keychain until used.
    pub fn new(service: &str, issuer: &str, app_id: &str) -> Self {
        KeyringStore {
            service: service.to_string(),
            account: format!("{app_id}@{issuer}"),
        }
    }

    /// The entry of `config`: its [`keychain_service`](crate::Config::keychain_service), issuer
    /// and app id.
    pub fn for_config(config: &crate::Config) -> Self {
        Self::new(&config.keychain_service, &config.issuer(), &config.app_id)
    }

    fn entry(&self) -> Result<keyring::Entry, AuthError> {
        keyring::Entry::new(&self.service, &self.account).map_err(keychain_error)
    }
}

#[cfg(feature = "os-keychain")]
impl TokenStore for KeyringStore {
    fn load(&self) -> Result<Option<String>, AuthError> {
        match self.entry()?.get_secret() {
            // Stored bytes that are not UTF-8 cannot be a session of ours.
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| AuthError::CorruptSession),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(keyring::Error::BadEncoding(_)) => Err(AuthError::CorruptSession),
            Err(e) => Err(keychain_error(e)),
        }
    }

    /// Raw UTF-8 bytes (`set_secret`), not `set_password`: on Windows the latter stores UTF-16,
    /// which would halve the 2,560 bytes Credential Manager allows.
    fn save(&self, secret: &str) -> Result<(), AuthError> {
        self.entry()?
            .set_secret(secret.as_bytes())
            .map_err(keychain_error)
    }

    fn delete(&self) -> Result<(), AuthError> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }

    /// Writes and removes a probe entry beside the session's: reading alone can succeed on a
    /// keychain that will not take a write (a locked collection that has no entry yet).
    fn check(&self) -> Result<(), AuthError> {
        let probe = keyring::Entry::new(&self.service, &format!("{}#check", self.account))
            .map_err(keychain_error)?;
        probe.set_secret(b"check").map_err(keychain_error)?;
        match probe.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }
}

/// keyring's errors name the platform's failure, never the secret.
#[cfg(feature = "os-keychain")]
fn keychain_error(error: keyring::Error) -> AuthError {
    let what = match &error {
        keyring::Error::NoStorageAccess(_) => "locked or not running".to_string(),
        keyring::Error::PlatformFailure(e) => format!("platform error: {e}"),
        keyring::Error::TooLong(name, max) => format!("{name} is longer than {max}"),
        other => other.to_string(),
    };
    AuthError::Keychain(what)
}

/// A keychain entry read back: for a program that checks what this crate stored (a test, a
/// support tool) or moves it to a store of its own. Read-only: only [`AuthService`] writes
/// entries, and their format may change between versions (a newer one is refused, never
/// misread). Its `Debug` shows no token.
///
/// ```
/// # use logto_native::{AuthError, StoredSession};
/// # fn check(entry: &str) -> Result<(), AuthError> {
/// let stored = StoredSession::decode(entry, "https://tenant.logto.app/oidc", "app-id")?;
/// println!("{} is signed in", stored.user().sub);
/// assert!(stored.refresh_token().is_some(), "the session can be renewed");
/// # Ok(()) }
/// ```
///
/// [`AuthService`]: crate::AuthService
#[derive(Debug, Clone)]
pub struct StoredSession(crate::session::Session);

impl StoredSession {
    /// Reads `entry` (what [`TokenStore::load`] returned) as the session of `app_id` at
    /// `issuer`. An entry that cannot be read, or is another app's or issuer's, is
    /// [`AuthError::CorruptSession`]; one written by a newer version is
    /// [`AuthError::NewerVersion`]. No error quotes the entry.
    pub fn decode(entry: &str, issuer: &str, app_id: &str) -> Result<Self, AuthError> {
        use crate::session::{DecodeError, Session};
        match Session::decode(entry, issuer, app_id) {
            Ok(session) => Ok(StoredSession(session)),
            Err(DecodeError::NewerVersion) => Err(AuthError::NewerVersion),
            Err(DecodeError::Unreadable | DecodeError::OtherTenant) => {
                Err(AuthError::CorruptSession)
            }
        }
    }

    /// Who signed in.
    pub fn user(&self) -> &crate::User {
        &self.0.user
    }

    /// The refresh token (a secret), if the session has one.
    pub fn refresh_token(&self) -> Option<&str> {
        self.0
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.secret().as_str())
    }

    /// The raw ID token (a secret), if the entry had room for it; otherwise only the claims
    /// that a later refresh is checked against are kept ([`Self::id_claims`]).
    pub fn id_token(&self) -> Option<&str> {
        self.0.tokens.id_token.as_ref().map(|t| t.secret())
    }

    /// The claims of the ID token, without `nonce`: all of them, or the kept ones.
    pub fn id_claims(&self) -> &serde_json::Value {
        &self.0.id_claims
    }

    /// The default access token (a secret) and its expiry in Unix seconds, if the entry kept it.
    pub fn access_token(&self) -> Option<(&str, Option<u64>)> {
        let token = self.0.access.get(&crate::tokens::TokenKey::default())?;
        Some((token.token.secret().as_str(), token.expires_at))
    }

    /// The nonce of the sign-in (a secret): a refreshed ID token that carries one must repeat it.
    pub fn nonce(&self) -> Option<&str> {
        self.0.nonce.as_ref().map(|n| n.secret().as_str())
    }
}

/// A store that keeps the session in memory only, for tests and for programs that must not
/// keep a sign-in past their own end. Starts empty.
#[derive(Default)]
pub struct MemoryStore {
    /// What is kept; tests may read or set it directly.
    pub(crate) value: Mutex<Option<String>>,
    /// While true, every call fails with [`AuthError::Keychain`], as a locked keychain would.
    pub(crate) fail: Mutex<bool>,
    /// Fail only deletes (a keychain that reads and writes but will not remove).
    pub(crate) fail_delete: Mutex<bool>,
    /// Fail only writes (a keychain that reads but will not take a new secret).
    pub(crate) fail_save: Mutex<bool>,
}

impl MemoryStore {
    fn check(&self) -> Result<(), AuthError> {
        if *self
            .fail
            .lock()
            .map_err(|_| AuthError::Keychain("poisoned".into()))?
        {
            return Err(AuthError::Keychain("locked or not running".into()));
        }
        Ok(())
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<String>, AuthError> {
        self.check()?;
        Ok(self
            .value
            .lock()
            .map_err(|_| AuthError::Keychain("poisoned".into()))?
            .clone())
    }
    fn save(&self, secret: &str) -> Result<(), AuthError> {
        self.check()?;
        if *self
            .fail_save
            .lock()
            .map_err(|_| AuthError::Keychain("poisoned".into()))?
        {
            return Err(AuthError::Keychain(
                "the secret could not be written".into(),
            ));
        }
        *self
            .value
            .lock()
            .map_err(|_| AuthError::Keychain("poisoned".into()))? = Some(secret.to_string());
        Ok(())
    }
    fn delete(&self) -> Result<(), AuthError> {
        self.check()?;
        if *self
            .fail_delete
            .lock()
            .map_err(|_| AuthError::Keychain("poisoned".into()))?
        {
            return Err(AuthError::Keychain("the entry could not be removed".into()));
        }
        *self
            .value
            .lock()
            .map_err(|_| AuthError::Keychain("poisoned".into()))? = None;
        Ok(())
    }
}

/// Refresh tokens that sign-out could not remove from the keychain, so that a later start does
/// not show a signed-out session as signed in; those whose revocation failed too are marked
/// `unrevoked`, and a later start revokes them before it forgets them. The file holds SHA-256
/// hashes, one per line, never a token (a hash of a 256-bit random token tells nothing about it).
pub struct SignedOutMarks {
    path: std::path::PathBuf,
}

/// The word after a mark's hash when its grant was not revoked.
const UNREVOKED: &str = "unrevoked";

impl SignedOutMarks {
    /// Marks kept in the file at `path` (made, with its folder, on the first mark; written as
    /// every file of the core is: whole, 0600, its new folder 0700, never through a symlink).
    pub fn new(path: std::path::PathBuf) -> Self {
        SignedOutMarks { path }
    }

    /// `<local data dir>/<program>/signed-out` (on Linux `~/.local/share/...`), where
    /// `<program>` is made from the [`keychain_service`](crate::Config::keychain_service) with
    /// anything but letters, digits, `.`, `_` and `-` as `_`: Logto Desktop's is
    /// `logto-desktop/signed-out`.
    pub fn default_path(keychain_service: &str) -> Option<std::path::PathBuf> {
        let folder = crate::config::folder_of(keychain_service);
        dirs::data_local_dir().map(|d| d.join(folder).join("signed-out"))
    }

    fn hash(token: &str) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn read(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn write(&self, lines: &[String]) -> std::io::Result<()> {
        if lines.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        crate::config::write_atomically(&self.path, (lines.join("\n") + "\n").as_bytes())
    }

    /// Marks `token` (a refresh token) as signed out; only its hash is written.
    pub(crate) fn add(&self, token: &str) -> std::io::Result<()> {
        self.put(token, false)
    }

    /// Marks `token` as signed out while its grant is still alive at Logto (the revocation
    /// failed): [`Self::needs_revocation`] says so until Logto has been told.
    pub(crate) fn add_unrevoked(&self, token: &str) -> std::io::Result<()> {
        self.put(token, true)
    }

    fn put(&self, token: &str, unrevoked: bool) -> std::io::Result<()> {
        let hash = Self::hash(token);
        let mut lines = self.lines_without(&hash);
        lines.push(if unrevoked {
            format!("{hash} {UNREVOKED}")
        } else {
            hash
        });
        self.write(&lines)
    }

    /// The marks but the one of `hash`.
    fn lines_without(&self, hash: &str) -> Vec<String> {
        self.read()
            .into_iter()
            .filter(|l| Self::hash_of(l) != hash)
            .collect()
    }

    /// The hash a line marks; a line is the hash, then a word about it (older files: the hash
    /// alone).
    fn hash_of(line: &str) -> &str {
        line.split(' ').next().unwrap_or_default()
    }

    /// Whether `token` was marked. A file that cannot be read counts as no marks.
    pub(crate) fn contains(&self, token: &str) -> bool {
        let hash = Self::hash(token);
        self.read().iter().any(|l| Self::hash_of(l) == hash)
    }

    /// Whether `token` was marked with its grant still alive at Logto.
    pub(crate) fn needs_revocation(&self, token: &str) -> bool {
        let line = format!("{} {UNREVOKED}", Self::hash(token));
        self.read().contains(&line)
    }

    /// Forgets `token`'s mark (once its entry is gone); the file is removed with the last mark.
    pub(crate) fn remove(&self, token: &str) -> std::io::Result<()> {
        self.write(&self.lines_without(&Self::hash(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_marks_file_and_its_folder_are_for_this_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("logto-desktop");
        let marks = SignedOutMarks::new(folder.join("signed-out"));
        marks.add("refresh-1").unwrap();
        let mode = |p: &std::path::Path| {
            std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&folder.join("signed-out")), 0o600);
        assert_eq!(mode(&folder), 0o700);
        assert!(marks.contains("refresh-1"));
        marks.remove("refresh-1").unwrap();
        assert!(
            !folder.join("signed-out").exists(),
            "gone with the last mark"
        );
    }
}
