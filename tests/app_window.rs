//! The real app binary under Xvfb, driven through its window with tauri-driver and
//! WebKitWebDriver, against the provider. The browser the app opens is Chromium, reached through
//! an `xdg-open` shim first on PATH that hands each URL to the test; the keychain is the real
//! Secret Service. Sign in through the window, restore in a new process, sign out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use logto_desktop::auth::session::Session;
use logto_desktop::auth::{KeyringStore, TokenStore};

use crate::support::chrome::{webdriver_client, Chrome};
use crate::support::free_port;
use crate::support::idp::Idp;

/// One app process in a WebDriver session, with its own home, config and data folders.
struct App {
    client: Client,
    driver: Child,
}

struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("a sandbox folder");
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).expect("shim folder");
        let shim = bin.join("xdg-open");
        // What the app asks the desktop to open lands in a file the test reads.
        std::fs::write(
            &shim,
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"$LOGTO_TEST_OPENED\"\n",
        )
        .expect("writing the xdg-open shim");
        make_executable(&shim);
        Sandbox { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("opened.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    async fn wait_opened(&self, count: usize) -> String {
        let start = Instant::now();
        loop {
            let opened = self.opened();
            if opened.len() >= count {
                return opened[count - 1].clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the app did not open the browser"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("app.log")).unwrap_or_default()
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)
        .expect("shim metadata")
        .permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod the shim");
}

impl App {
    async fn launch(sandbox: &Sandbox, idp: &Idp) -> App {
        let port = free_port();
        let native_port = free_port();
        let path = format!(
            "{}:{}",
            sandbox.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.path("app.log"))
            .expect("the app's log file");
        let log_err = log.try_clone().expect("log handle");
        for dir in ["home", "config", "data", "cache"] {
            std::fs::create_dir_all(sandbox.path(dir)).expect("sandbox dirs");
        }
        let driver = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .env("PATH", path)
            .env("LOGTO_TEST_OPENED", sandbox.path("opened.txt"))
            .env("LOGTO_ENDPOINT", &idp.info.endpoint)
            .env("LOGTO_APP_ID", &idp.info.app_id)
            .env("HOME", sandbox.path("home"))
            .env("XDG_CONFIG_HOME", sandbox.path("config"))
            .env("XDG_CACHE_HOME", sandbox.path("cache"))
            .env("LANGUAGE", "en")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("starting tauri-driver (cargo install tauri-driver --locked)");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": env!("CARGO_BIN_EXE_logto-desktop") }),
        );
        let mut last_error = String::new();
        for _ in 0..100 {
            match webdriver_client(port, caps.clone()).await {
                Ok(client) => return App { client, driver },
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("could not open the app through tauri-driver: {last_error}");
    }

    async fn state(&self) -> String {
        match self
            .client
            .execute("return document.body.dataset.state", vec![])
            .await
        {
            Ok(serde_json::Value::String(s)) => s,
            _ => String::new(),
        }
    }

    async fn wait_state(&self, want: &str) {
        let start = Instant::now();
        loop {
            let state = self.state().await;
            if state == want {
                return;
            }
            if start.elapsed() > Duration::from_secs(40) {
                let message = self.text("error-message").await;
                panic!("the window stayed in {state:?}, not {want:?} (error: {message:?})");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id} in the window: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
    }

    async fn text(&self, id: &str) -> String {
        match self.client.find(Locator::Id(id)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Ends the session (the app exits) and the driver.
    async fn quit(mut self) {
        // The connection sometimes drops while the app exits under D-Bus; that is fine here.
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The whole X screen, as a person would see it.
fn screenshot(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screens");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.png"));
    let _ = Command::new("import")
        .args(["-window", "root"])
        .arg(&path)
        .status();
    path
}

#[tokio::test(flavor = "current_thread")]
async fn sign_in_through_the_window_restore_in_a_new_process_and_sign_out() {
    let idp = Idp::start();
    let store = KeyringStore::new(&idp.info.issuer, &idp.info.app_id);
    store
        .delete()
        .expect("the Secret Service must be running (run the tests with `make test`)");
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;

    let app = App::launch(&sandbox, &idp).await;
    app.wait_state("signed-out").await;
    screenshot("signed-out");
    app.click("sign-in-amazon").await;
    let url = sandbox.wait_opened(1).await;
    app.wait_state("signing-in").await;
    screenshot("signing-in");
    assert!(url.contains("direct_sign_in=social%3Aamazon"), "{url}");

    let amazon = idp.info.amazon.users[0].clone();
    chrome
        .sign_in_with_amazon(
            &url,
            &idp.info.amazon.origin,
            &amazon.email,
            &amazon.password,
        )
        .await;
    chrome.landed_on("ok").await;
    let callback = chrome.client.current_url().await.expect("the callback URL");
    let mut callback_secrets: Vec<String> = callback
        .query_pairs()
        .filter(|(k, _)| k == "code" || k == "state")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(
        callback_secrets.len(),
        2,
        "code and state in {}",
        callback.path()
    );
    app.wait_state("signed-in").await;
    assert_eq!(app.text("user-name").await, amazon.name);
    assert_eq!(app.text("user-email").await, amazon.email);
    assert!(app.text("user-via").await.contains("Amazon"));
    screenshot("signed-in");

    let stored = store
        .load()
        .expect("keychain")
        .expect("the session is in the keychain");
    let session = Session::decode(&stored, &idp.info.issuer, &idp.info.app_id).expect("decodes");
    assert_eq!(session.user.email.as_deref(), Some(amazon.email.as_str()));
    app.quit().await;

    // A new app process shows the stored user at once.
    let app = App::launch(&sandbox, &idp).await;
    app.wait_state("signed-in").await;
    assert_eq!(app.text("user-name").await, amazon.name);
    assert_eq!(sandbox.opened().len(), 1, "restoring opened no browser");

    app.click("sign-out").await;
    app.wait_state("signed-out").await;
    assert_eq!(
        store.load().expect("keychain"),
        None,
        "sign-out removed the keychain entry"
    );
    let end_session = sandbox.wait_opened(2).await;
    assert!(
        end_session.starts_with(&format!("{}/session/end?", idp.info.issuer)),
        "{end_session}"
    );
    app.quit().await;
    chrome.stop().await;

    // The app logged at debug level the whole time; no secret may be in it.
    let log = sandbox.log();
    assert!(
        log.contains("sign-in completed"),
        "the app's log was not captured:\n{log}"
    );
    let mut secrets = vec![session.tokens.id_token.secret().to_string()];
    secrets.extend(session.default_access_token().map(|t| t.secret().to_string()));
    secrets.extend(
        session
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.secret().to_string()),
    );
    secrets.extend(session.nonce.as_ref().map(|n| n.secret().to_string()));
    secrets.append(&mut callback_secrets);
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret reached the app's log");
    }
}
