//! The sign-in core against the Logto-faithful provider, with Chromium as the system browser and
//! GNOME Keyring's Secret Service as the keychain, over real loopback sockets.

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use logto_desktop::auth::{
    AuthError, AuthService, Config, EntryLock, KeyringStore, SignInMethod, StoredSession,
    TokenStore, User,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use url::Url;

use crate::support::chrome::{channel_browser, Chrome};
use crate::support::idp::Idp;
use crate::support::session::{files_under, redirect_port, sha256_hex};
use crate::support::{logs, nothing_listens_on, port_is_free};

pub(crate) struct Harness {
    pub(crate) idp: Idp,
    pub(crate) service: Arc<AuthService>,
    pub(crate) store: Arc<KeyringStore>,
    pub(crate) urls: UnboundedReceiver<Url>,
}

impl Harness {
    pub(crate) fn new(idp: Idp) -> Harness {
        Harness::with_config(idp, |_| {})
    }

    pub(crate) fn with_config(idp: Idp, tweak: impl FnOnce(&mut Config)) -> Harness {
        let mut config = Config::new(&idp.info.endpoint, &idp.info.app_id).expect("config");
        // The window's entry, lock and change notice: a program beside the app.
        config.keychain_service = KEYCHAIN_SERVICE.to_string();
        tweak(&mut config);
        let store = Arc::new(KeyringStore::for_config(&config));
        // Each provider has its own port, so its own keychain entry; start from nothing anyway.
        store
            .delete()
            .expect("the Secret Service must be running (run the tests with `make test`)");
        let (browser, urls) = channel_browser();
        // The entry's lock, where every program on this system takes it: the window and the
        // command line in the same run share it (and hear this program's changes through it).
        let lock =
            EntryLock::default_path(&config.keychain_service, &config.issuer(), &config.app_id)
                .expect("the lock folder is this user's")
                .map(EntryLock::new);
        let mut service =
            AuthService::new(config, store.clone(), Arc::new(browser)).expect("service");
        if let Some(lock) = lock {
            service = service.with_entry_lock(lock);
        }
        let service = Arc::new(service);
        Harness {
            idp,
            service,
            store,
            urls,
        }
    }

    pub(crate) fn start(&self, method: SignInMethod) -> JoinHandle<Result<User, AuthError>> {
        let service = self.service.clone();
        tokio::spawn(async move { service.sign_in(method, |_| {}).await })
    }

    pub(crate) async fn next_url(&mut self) -> Url {
        tokio::time::timeout(Duration::from_secs(20), self.urls.recv())
            .await
            .expect("the core did not open the browser in time")
            .expect("the browser channel closed")
    }

    /// Signs alice in on the provider's own page, through Chromium.
    pub(crate) async fn sign_in_alice(&mut self, chrome: &Chrome) -> User {
        let alice = self.idp.alice().clone();
        self.sign_in_as(chrome, &alice.username, &alice.password)
            .await
    }

    /// Signs a user of the provider in on its own page, through Chromium.
    pub(crate) async fn sign_in_as(
        &mut self,
        chrome: &Chrome,
        username: &str,
        password: &str,
    ) -> User {
        let task = self.start(SignInMethod::Logto);
        let url = self.next_url().await;
        chrome
            .sign_in_with_password(url.as_str(), username, password)
            .await;
        chrome.landed_on("ok").await;
        finish(task).await.expect("sign-in succeeds")
    }

    pub(crate) fn stored(&self) -> Option<StoredSession> {
        self.store
            .load()
            .expect("reading the keychain")
            .map(|text| {
                StoredSession::decode(&text, &self.idp.info.issuer, &self.idp.info.app_id)
                    .expect("decodable session")
            })
    }
}

pub(crate) async fn finish(task: JoinHandle<Result<User, AuthError>>) -> Result<User, AuthError> {
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the sign-in did not end in time")
        .expect("the sign-in task panicked")
}

/// No secret of the run (every code, `state`, `nonce`, verifier and token the provider handed
/// out or received) may appear in `text`. The provider must run with `IDP_TEST_HOOKS=1`.
pub(crate) async fn assert_no_secret_of_the_run_in(text: &str, idp: &Idp) {
    let secrets = idp.secrets().await;
    assert!(
        secrets.len() >= 7,
        "the provider listed too few secrets to prove anything: {}",
        secrets.len()
    );
    assert!(
        !text.is_empty(),
        "nothing was logged, so the check would prove nothing"
    );
    for secret in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(
            !text.contains(secret.as_str()),
            "a secret of the run reached the logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_sign_in_validates_and_stores_the_session_in_the_keychain() {
    let captured = logs::capture();
    let mut h = Harness::new(Idp::start_with(&[("IDP_TEST_HOOKS", "1")]));
    let chrome = Chrome::start().await;
    let task = h.start(SignInMethod::Logto);
    let url = h.next_url().await;
    assert!(url
        .as_str()
        .starts_with(&format!("{}/auth?", h.idp.info.issuer)));
    assert!(!url.query_pairs().any(|(k, _)| k == "direct_sign_in"));
    let alice = h.idp.alice().clone();
    chrome
        .sign_in_with_password(url.as_str(), &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    let user = finish(task).await.expect("sign-in succeeds");
    assert_eq!(user.name.as_deref(), Some(alice.name.as_str()));
    assert_eq!(user.email.as_deref(), Some(alice.email.as_str()));
    assert!(
        user.identities.is_empty(),
        "a password user has no social identity"
    );

    let session = h.stored().expect("the session is in the keychain");
    assert_eq!(session.user(), &user);
    assert!(
        session.refresh_token().is_some(),
        "offline_access was granted (prompt=consent)"
    );
    assert!(session.access_token().is_some());
    let stored = h.store.load().expect("keychain").expect("stored");
    eprintln!("keychain entry: {} bytes", stored.len());
    assert!(
        // README and SECURITY.md: one entry of at most 2,560 bytes (Windows' limit).
        stored.len() <= 2560,
        "a real Logto-shaped session ({} bytes) fits the smallest keychain",
        stored.len()
    );
    assert_eq!(h.service.current_user().await, Some(user));
    chrome.stop().await;
    let log = captured.text();
    // The capture reaches what the check needs: other threads (the sign-in runs on a worker),
    // and crates that log through `log` rather than `tracing` (reqwest).
    assert!(log.contains("loopback wait ended"), "the core's debug log");
    assert!(log.contains("reqwest"), "the log crate's records");
    assert_no_secret_of_the_run_in(&log, &h.idp).await;
}

#[tokio::test(flavor = "current_thread")]
async fn amazon_sign_in_goes_through_the_stand_in_and_shows_the_identity() {
    let mut h = Harness::new(Idp::start());
    let chrome = Chrome::start().await;
    let task = h.start(SignInMethod::Amazon);
    let url = h.next_url().await;
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "direct_sign_in" && v == "social:amazon"));
    let amazon = h.idp.info.amazon.users[0].clone();
    chrome
        .sign_in_with_amazon(
            url.as_str(),
            &h.idp.info.amazon.origin,
            &amazon.email,
            &amazon.password,
        )
        .await;
    chrome.landed_on("ok").await;
    let user = finish(task).await.expect("sign-in through Amazon succeeds");
    assert_eq!(user.identities, ["amazon"]);
    assert_eq!(user.name.as_deref(), Some(amazon.name.as_str()));
    assert_eq!(user.email.as_deref(), Some(amazon.email.as_str()));
    assert!(h.stored().is_some());
    chrome.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_older_rs256_tenant_works_too() {
    let mut h = Harness::new(Idp::start_with(&[("IDP_ID_TOKEN_ALG", "RS256")]));
    let chrome = Chrome::start().await;
    let user = h.sign_in_alice(&chrome).await;
    assert_eq!(
        user.email.as_deref(),
        Some(h.idp.alice().email.as_str()),
        "RS256 ID tokens are accepted"
    );
    chrome.stop().await;
}

/// `logto-desktop --status` in a new process: what the app restores at start-up.
fn status(endpoint: &str, app_id: &str) -> (bool, String, String) {
    let out = Command::new(crate::support::cli_bin())
        .arg("--status")
        .env("LOGTO_ENDPOINT", endpoint)
        .env("LOGTO_APP_ID", app_id)
        .output()
        .expect("running logto-desktop --status");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stdout, stderr)
}

async fn signed_in_as_alice() -> (Harness, Chrome) {
    let mut h = Harness::new(Idp::start_with(&[("IDP_TEST_HOOKS", "1")]));
    let chrome = Chrome::start().await;
    h.sign_in_alice(&chrome).await;
    (h, chrome)
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_process_restores_the_user_from_the_keychain_with_the_provider_down() {
    let (mut h, chrome) = signed_in_as_alice().await;
    chrome.stop().await;
    let session = h.stored().expect("stored");
    h.idp.stop();
    assert!(
        nothing_listens_on(port_of(&h.idp.info.endpoint)).await,
        "the provider is down"
    );

    let (ok, stdout, stderr) = status(&h.idp.info.endpoint, &h.idp.info.app_id);
    assert!(ok, "--status failed: {stdout} {stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("--status prints JSON");
    assert_eq!(shown["state"], "signed-in");
    assert_eq!(shown["user"]["email"], h.idp.alice().email.as_str());
    assert_eq!(shown["user"]["name"], h.idp.alice().name.as_str());
    let (access, _) = session.access_token().expect("an access token");
    let id_token = session.id_token().expect("alice's ID token fits");
    for secret in [access, id_token] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    h.store.delete().expect("cleaning up the keychain");
}

#[tokio::test(flavor = "current_thread")]
async fn sign_out_revokes_the_grant_clears_the_keychain_and_ends_the_browser_session() {
    let captured = logs::capture();
    let (mut h, chrome) = signed_in_as_alice().await;
    let session = h.stored().expect("stored");
    let old_refresh = session
        .refresh_token()
        .expect("a refresh token")
        .to_string();

    let report = h.service.sign_out().await.expect("sign-out");
    assert!(report.revoked, "{report:?}");
    assert!(report.warning.is_none(), "{report:?}");
    assert!(h.stored().is_none(), "the keychain entry is removed");
    assert_eq!(h.service.current_user().await, None);
    let end_session = h.next_url().await;
    assert!(end_session
        .as_str()
        .starts_with(&format!("{}/session/end?", h.idp.info.issuer)));
    let id_token = session.id_token().expect("alice's ID token");
    assert!(!end_session.as_str().contains(id_token));
    chrome.goto(end_session.as_str()).await;
    chrome.wait_for("signed-out").await;

    // The provider now refuses the old refresh token: the grant is gone.
    let refused = h.idp.refresh_directly(&old_refresh).await;
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("JSON error");
    assert_eq!(body["error"], "invalid_grant");

    let (ok, stdout, _) = status(&h.idp.info.endpoint, &h.idp.info.app_id);
    assert!(ok);
    assert_eq!(stdout.trim(), r#"{"state":"signed-out"}"#);
    chrome.stop().await;
    let log = captured.text();
    assert_no_secret_of_the_run_in(&log, &h.idp).await;
}

fn port_of(endpoint: &str) -> u16 {
    Url::parse(endpoint)
        .ok()
        .and_then(|u| u.port())
        .expect("the endpoint has a port")
}

#[tokio::test(flavor = "current_thread")]
async fn sign_out_while_the_provider_is_down_still_clears_local_state_and_says_so() {
    let mut h = Harness::new(Idp::start());
    let chrome = Chrome::start().await;
    let task = h.start(SignInMethod::Logto);
    let url = h.next_url().await;
    let alice = h.idp.alice().clone();
    chrome
        .sign_in_with_password(url.as_str(), &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    finish(task).await.expect("sign-in succeeds");
    chrome.stop().await;

    let Harness {
        idp,
        service,
        store,
        ..
    } = h;
    drop(idp);
    let report = service
        .sign_out()
        .await
        .expect("sign-out clears local state");
    assert!(!report.revoked);
    assert!(
        report
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("could not")),
        "{report:?}"
    );
    assert_eq!(store.load().expect("keychain"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn cancel_ends_the_wait_and_frees_the_port() {
    let mut h = Harness::new(Idp::start());
    let task = h.start(SignInMethod::Amazon);
    let url = h.next_url().await;
    let port = redirect_port(&url);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the listener is up while waiting"
    );
    assert!(h.service.cancel_sign_in());
    assert!(matches!(finish(task).await, Err(AuthError::Cancelled)));
    assert!(
        nothing_listens_on(port).await,
        "the listener is closed after cancel"
    );
    assert!(port_is_free(port).await, "the port is free after cancel");
    assert!(h.stored().is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn a_sign_in_with_no_answer_times_out_and_frees_the_port() {
    let mut h = Harness::with_config(Idp::start(), |c| c.sign_in_timeout = Duration::from_secs(2));
    let task = h.start(SignInMethod::Logto);
    let url = h.next_url().await;
    let port = redirect_port(&url);
    let result = finish(task).await;
    assert!(matches!(result, Err(AuthError::TimedOut)), "{result:?}");
    assert!(nothing_listens_on(port).await);
    assert!(port_is_free(port).await);
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_sign_in_cancels_the_one_in_progress() {
    let mut h = Harness::new(Idp::start());
    let chrome = Chrome::start().await;
    let first = h.start(SignInMethod::Logto);
    let first_url = h.next_url().await;
    let second = h.start(SignInMethod::Logto);
    let second_url = h.next_url().await;
    assert!(matches!(finish(first).await, Err(AuthError::Cancelled)));
    assert!(nothing_listens_on(redirect_port(&first_url)).await);
    let alice = h.idp.alice().clone();
    chrome
        .sign_in_with_password(second_url.as_str(), &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    finish(second).await.expect("the second sign-in succeeds");
    chrome.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn forged_and_stray_requests_are_refused_and_the_real_sign_in_still_succeeds() {
    let mut h = Harness::new(Idp::start());
    let chrome = Chrome::start().await;
    let task = h.start(SignInMethod::Logto);
    let url = h.next_url().await;
    let port = redirect_port(&url);
    let base = format!("http://127.0.0.1:{port}");
    let iss =
        url::form_urlencoded::byte_serialize(h.idp.info.issuer.as_bytes()).collect::<String>();
    let http = crate::support::http();

    let forged = http
        .get(format!(
            "{base}/callback?code=forged-code&state=forged-state&iss={iss}"
        ))
        .send()
        .await
        .expect("the listener answers");
    assert_eq!(forged.status(), 400);
    assert_eq!(forged.headers()["cache-control"], "no-store");
    assert_eq!(forged.headers()["referrer-policy"], "no-referrer");
    let page = forged.text().await.unwrap_or_default();
    assert!(!page.contains("<script"));
    assert!(page.contains("id=\"unrelated\""));

    let no_state = http
        .get(format!("{base}/callback?error=access_denied&iss={iss}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(no_state.status(), 400);
    let favicon = http
        .get(format!("{base}/favicon.ico"))
        .send()
        .await
        .expect("answer");
    assert_eq!(favicon.status(), 404);
    let post = http
        .post(format!("{base}/callback"))
        .send()
        .await
        .expect("answer");
    assert_eq!(post.status(), 405);
    let rebound = http
        .get(format!("{base}/callback?code=x&state=y"))
        .header("Host", "evil.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(rebound.status(), 400);
    assert!(!task.is_finished(), "none of that ended the sign-in");

    let alice = h.idp.alice().clone();
    chrome
        .sign_in_with_password(url.as_str(), &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    finish(task).await.expect("the real sign-in succeeds");
    assert!(h.stored().is_some());
    chrome.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_refusal_by_the_provider_is_reported_and_nothing_is_stored() {
    let mut h = Harness::new(Idp::start());
    let chrome = Chrome::start().await;
    let task = h.start(SignInMethod::Logto);
    let url = h.next_url().await;
    chrome.goto(url.as_str()).await;
    chrome.click("deny").await;
    chrome.landed_on("refused").await;
    match finish(task).await {
        Err(e @ AuthError::Provider(_)) => {
            assert_eq!(e.code(), "provider.refused");
            assert!(e.to_string().contains("access_denied"), "{e}");
        }
        other => panic!("expected a provider refusal, got {other:?}"),
    }
    assert!(h.stored().is_none());
    chrome.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_corrupt_keychain_entry_is_removed_and_reported() {
    let h = Harness::new(Idp::start());
    h.store
        .save("{\"v\":1,\"garbage\":true}")
        .expect("writing the keychain");
    assert!(matches!(
        h.service.restore().await,
        Err(AuthError::CorruptSession)
    ));
    assert_eq!(h.store.load().expect("keychain"), None);
    assert_eq!(h.service.restore().await.expect("nothing stored now"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_secret_service_the_app_says_so_and_writes_nothing_elsewhere() {
    let home = tempfile::tempdir().expect("a home folder");
    let out = Command::new(crate::support::cli_bin())
        .arg("--status")
        .env("LOGTO_ENDPOINT", "http://127.0.0.1:9")
        .env("LOGTO_APP_ID", "no-keychain-app")
        // No session bus at all: no Secret Service can answer.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .output()
        .expect("running logto-desktop --status");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("--status prints JSON");
    assert_eq!(shown["code"], "keychain.unavailable", "{stdout}");
    assert!(
        shown["message"]
            .as_str()
            .is_some_and(|m| m.contains("keychain")),
        "{stdout}"
    );
    let written: Vec<_> = files_under(home.path());
    assert!(written.is_empty(), "no file fallback: {written:?}");
}

/// Issue 8: a second sign-in never replaces a live one, an entry from a newer version is left
/// alone by `--status` and by a start, and sign-out tells Logto about the very token it held;
/// checked against the real keychain and the provider's own request log.
#[tokio::test(flavor = "current_thread")]
async fn no_grant_is_left_behind_and_no_entry_deleted_that_is_not_ours() {
    let (mut h, chrome) = signed_in_as_alice().await;
    let stored = h.stored().expect("stored");
    let before = h.idp.requests().await;

    // Signing in while signed in is refused before anything reaches Logto.
    let err = h
        .service
        .sign_in(SignInMethod::Logto, |_| {})
        .await
        .expect_err("already signed in");
    assert_eq!(err.code(), "sign_in.already_signed_in");
    assert_eq!(
        h.idp.requests().await.len(),
        before.len(),
        "Logto was told nothing"
    );
    assert!(h.urls.try_recv().is_err(), "no browser was opened");
    assert_eq!(
        h.stored()
            .and_then(|s| s.refresh_token().map(str::to_string)),
        stored.refresh_token().map(str::to_string)
    );

    // Sign-out revokes exactly the refresh token the keychain held.
    let rt = stored.refresh_token().expect("a refresh token").to_string();
    h.service.sign_out().await.expect("sign-out");
    let revocations = h.idp.requests_to("/oidc/token/revocation").await;
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0]["token_sha256"], sha256_hex(&rt).as_str());
    assert_eq!(revocations[0]["status"], 200);
    chrome.stop().await;

    // An entry a newer version wrote: --status and a start leave it as it is.
    let newer = r#"{"v":9,"something":"new"}"#;
    h.store.save(newer).expect("writing the keychain");
    let (ok, stdout, _) = status(&h.idp.info.endpoint, &h.idp.info.app_id);
    assert!(!ok);
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(shown["code"], "keychain.newer_version", "{stdout}");
    let restarted = AuthService::new(
        h.service.config().clone(),
        h.store.clone(),
        std::sync::Arc::new(crate::support::chrome::channel_browser().0),
    )
    .expect("service");
    let err = restarted.restore().await.expect_err("newer");
    assert_eq!(err.code(), "keychain.newer_version");
    assert_eq!(
        h.store.load().expect("reading").as_deref(),
        Some(newer),
        "left alone"
    );

    // Garbage: --status reports it and keeps it; a start removes it, with a notice.
    h.store.save("{not an entry").expect("writing the keychain");
    let (_, stdout, _) = status(&h.idp.info.endpoint, &h.idp.info.app_id);
    assert!(stdout.contains("keychain.unreadable"), "{stdout}");
    assert_eq!(
        h.store.load().expect("reading").as_deref(),
        Some("{not an entry")
    );
    assert_eq!(
        restarted.restore().await.expect_err("corrupt").code(),
        "keychain.corrupt"
    );
    assert_eq!(h.store.load().expect("reading"), None);
}
