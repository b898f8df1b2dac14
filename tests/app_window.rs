//! The real app binary, each run on an X display of its own (Xvfb), driven through its window
//! with tauri-driver and WebKitWebDriver, against the provider. The browser the app opens is
//! Chromium, reached through an `xdg-open` shim first on PATH that hands each URL to the test; the
//! keychain is the real Secret Service. Every test has its own provider, sandbox (home, config,
//! data folders) and display, so they run side by side.
//!
//! Covered: sign-in through the window, restore in a new process, a second launch, sign-out from
//! the window; cancel (with Open the browser again and Copy link); time-out; a refused sign-in;
//! sign-out from the app menu through its accelerator; the first-run screen, good and bad.
//!
//! Screenshots of each state go to `target/tmp/screens/`, and with `LOGTO_TEST_SCREENSHOTS=<dir>`
//! also to `<dir>/<state>-<lang>.png` (that is how docs/screenshots/ is made).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use logto_desktop::auth::{KeyringStore, StoredSession, TokenStore};
use url::Url;

use crate::support::chrome::{webdriver_client, Chrome};
use crate::support::idp::{Idp, TestUser};
use crate::support::session::{empty_keychain, redirect_port, session_secrets};
use crate::support::xvfb::Xvfb;
use crate::support::{bounded, free_port, nothing_listens_on};

const WINDOW_TITLE: &str = "Logto Desktop";

/// One app process in a WebDriver session, on its own display.
pub(crate) struct App {
    client: Client,
    driver: Child,
    x: Xvfb,
    window: String,
    env: Vec<(String, String)>,
}

/// A home, config, data and cache folder per test, and the `xdg-open` shim.
pub(crate) struct Sandbox {
    root: tempfile::TempDir,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lang {
    En,
    Ja,
}

impl Lang {
    fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }
}

impl Sandbox {
    pub(crate) fn new() -> Sandbox {
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
        // `run` is a runtime folder and `empty` a PATH with nothing on it, for those who need them.
        for dir in ["home", "config", "data", "cache", "run", "empty"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("sandbox dirs");
        }
        Sandbox { root }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Where the app's first-run screen saves (`$XDG_CONFIG_HOME/logto-desktop/config.json`).
    fn config_file(&self) -> PathBuf {
        self.path("config")
            .join("logto-desktop")
            .join("config.json")
    }

    pub(crate) fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("opened.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub(crate) async fn wait_opened(&self, count: usize) -> String {
        let start = Instant::now();
        loop {
            let opened = self.opened();
            if opened.len() >= count {
                return opened[count - 1].clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the app did not open the browser (opened: {opened:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path("app.log")).unwrap_or_default()
    }

    /// Waits (10 s at most) for `text` in the app's log.
    async fn wait_log(&self, text: &str) {
        let start = std::time::Instant::now();
        while !self.log().contains(text) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the app never logged {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The environment of an app process in this sandbox: its folders, the shim, the language,
    /// and nothing of the developer's own LOGTO_* or locale settings.
    pub(crate) fn env(&self, lang: Lang, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let (language, lang_var) = match lang {
            Lang::En => ("en", "en_US.UTF-8"),
            Lang::Ja => ("ja", "ja_JP.UTF-8"),
        };
        let mut env: Vec<(String, String)> = [
            ("PATH", path),
            (
                "LOGTO_TEST_OPENED",
                self.path("opened.txt").display().to_string(),
            ),
            ("HOME", self.path("home").display().to_string()),
            ("XDG_CONFIG_HOME", self.path("config").display().to_string()),
            ("XDG_CACHE_HOME", self.path("cache").display().to_string()),
            ("LANGUAGE", language.to_string()),
            ("LANG", lang_var.to_string()),
            // The most verbose level, every crate: whatever any of them logs is grepped.
            ("RUST_LOG", "trace".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }
}

pub(crate) fn idp_env(idp: &Idp) -> [(&str, &str); 2] {
    [
        ("LOGTO_ENDPOINT", idp.info.endpoint.as_str()),
        ("LOGTO_APP_ID", idp.info.app_id.as_str()),
    ]
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)
        .expect("shim metadata")
        .permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod the shim");
}

/// What a process inherits that would make a run depend on the developer's own settings.
pub(crate) const SCRUBBED: [&str; 12] = [
    "LOGTO_ENDPOINT",
    "LOGTO_APP_ID",
    "LOGTO_SCOPES",
    "LOGTO_RESOURCES",
    "LOGTO_POST_LOGOUT_REDIRECT_URI",
    "LOGTO_END_BROWSER_SESSION",
    "LOGTO_SIGN_IN_TIMEOUT_SECS",
    "LC_ALL",
    "LC_MESSAGES",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "BROWSER",
];

impl App {
    pub(crate) async fn launch(sandbox: &Sandbox, lang: Lang, extra: &[(&str, &str)]) -> App {
        let x = Xvfb::start();
        let env = sandbox.env(lang, extra);
        let port = free_port();
        let native_port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.path("app.log"))
            .expect("the app's log file");
        let log_err = log.try_clone().expect("log handle");
        let mut command = Command::new("tauri-driver");
        command
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"]);
        for name in SCRUBBED {
            command.env_remove(name);
        }
        let driver = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("DISPLAY", &x.display)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("starting tauri-driver (cargo install tauri-driver --locked)");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": crate::support::cli_bin() }),
        );
        let mut last_error = String::new();
        for _ in 0..100 {
            match webdriver_client(port, caps.clone()).await {
                Ok(client) => {
                    let window = x.window(WINDOW_TITLE).await;
                    return App {
                        client,
                        driver,
                        x,
                        window,
                        env,
                    };
                }
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("could not open the app through tauri-driver: {last_error}");
    }

    pub(crate) async fn eval(&self, script: &str) -> serde_json::Value {
        bounded(
            "a script in the window",
            self.client.execute(script, vec![]),
        )
        .await
        .unwrap_or(serde_json::Value::Null)
    }

    /// Runs `script` as an async WebDriver script: it calls `arguments[arguments.length - 1]`
    /// with its answer.
    async fn eval_async(&self, script: &str) -> serde_json::Value {
        bounded(
            "an async script in the window",
            self.client.execute_async(script, vec![]),
        )
        .await
        .unwrap_or(serde_json::Value::Null)
    }

    /// From now on, records every IPC answer and event payload the page receives: both arrive
    /// through the callbacks Tauri keeps in `__TAURI_INTERNALS__.callbacks`, which the recorder
    /// wraps (those already registered, such as the page's state listener, and every new one).
    async fn record_ipc(&self) {
        let installed = self
            .eval(
                "const cbs = window.__TAURI_INTERNALS__.callbacks;
                 const log = (window.__ipcLog = []);
                 const wrap = (fn) => (data) => {
                   try { log.push(JSON.stringify(data)); } catch (e) { log.push(String(data)); }
                   return fn(data);
                 };
                 for (const [id, fn] of Array.from(cbs.entries())) cbs.set(id, wrap(fn));
                 const set = cbs.set.bind(cbs);
                 cbs.set = (id, fn) => set(id, wrap(fn));
                 return cbs.size;",
            )
            .await;
        assert!(
            installed.as_u64().is_some_and(|n| n > 0),
            "the page's listener was not found: {installed}"
        );
    }

    /// Everything the page received since [`Self::record_ipc`], one JSON text per message.
    async fn ipc_log(&self) -> Vec<String> {
        match self.eval("return window.__ipcLog || []").await {
            serde_json::Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Calls a Tauri command from the page, as the page would: `{ok: true, value}` or
    /// `{ok: false, error}`.
    pub(crate) async fn invoke(&self, command: &str, args: serde_json::Value) -> serde_json::Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             window.__TAURI__.core.invoke({}, {})
               .then((value) => done({{ ok: true, value }}), (error) => done({{ ok: false, error: String(error) }}));",
            serde_json::Value::String(command.into()),
            args
        );
        self.eval_async(&script).await
    }

    pub(crate) async fn state(&self) -> String {
        match self.eval("return document.body.dataset.state").await {
            serde_json::Value::String(s) => s,
            _ => String::new(),
        }
    }

    pub(crate) async fn wait_state(&self, want: &str) {
        let start = Instant::now();
        loop {
            let state = self.state().await;
            if state == want {
                // Let the page finish drawing before anyone looks.
                tokio::time::sleep(Duration::from_millis(150)).await;
                return;
            }
            if start.elapsed() > Duration::from_secs(40) {
                let message = self.text("error-message").await;
                panic!("the window stayed in {state:?}, not {want:?} (error: {message:?})");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn element(&self, id: &str) -> fantoccini::elements::Element {
        bounded("finding in the window", self.client.find(Locator::Id(id)))
            .await
            .unwrap_or_else(|e| panic!("#{id} in the window: {e}"))
    }

    pub(crate) async fn click(&self, id: &str) {
        let element = self.element(id).await;
        bounded("clicking in the window", element.click())
            .await
            .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
    }

    async fn type_into(&self, id: &str, text: &str) {
        let element = self.element(id).await;
        bounded("clearing in the window", element.clear())
            .await
            .unwrap_or_else(|e| panic!("clearing #{id}: {e}"));
        bounded("typing in the window", element.send_keys(text))
            .await
            .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
    }

    /// The element's visible text ("" when it is missing or hidden).
    async fn text(&self, id: &str) -> String {
        match bounded("finding in the window", self.client.find(Locator::Id(id))).await {
            Ok(element) => bounded("reading the window", element.text())
                .await
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn attr(&self, id: &str, name: &str) -> Option<String> {
        let element = self.element(id).await;
        bounded("reading the window", element.attr(name))
            .await
            .ok()
            .flatten()
    }

    async fn wait_text(&self, id: &str, want: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.text(id).await;
            if want(&text) {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "#{id} never showed what was expected; it says {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Presses keys on the app's display with the window focused, as a person would.
    fn key(&self, keys: &str) {
        self.x.key(&self.window, keys);
    }

    /// Resizes the window as a window manager would.
    fn resize(&self, width: u32, height: u32) {
        let out = self.x.run(
            "xdotool",
            &[
                "windowsize",
                "--sync",
                &self.window,
                &width.to_string(),
                &height.to_string(),
            ],
        );
        assert!(out.status.success(), "xdotool windowsize: {out:?}");
    }

    /// The window's size on the screen.
    fn size(&self) -> (u32, u32) {
        let out = self
            .x
            .run("xdotool", &["getwindowgeometry", "--shell", &self.window]);
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in {text:?}"))
        };
        (value("WIDTH"), value("HEIGHT"))
    }

    /// A screenshot of the window (see the module's note on where it goes).
    fn screenshot(&self, state: &str, lang: Lang) {
        let name = format!("{state}-{}.png", lang.tag());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screens");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(&name);
        self.x.screenshot(&self.window, &path);
        if let Some(docs) = std::env::var_os("LOGTO_TEST_SCREENSHOTS") {
            let docs = PathBuf::from(docs);
            let _ = std::fs::create_dir_all(&docs);
            std::fs::copy(&path, docs.join(&name)).expect("copying the screenshot");
        }
    }

    /// Starts the same binary again, with the same environment and display, outside WebDriver.
    /// Returns whether it exited by itself, successfully, within the time given.
    /// The text on the X clipboard (the CLIPBOARD selection), as another program would paste it.
    fn clipboard(&self) -> Option<String> {
        let out = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &self.x.display)
            .output()
            .expect("xclip (scripts/deps.sh test installs it)");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn launch_again(&self, within: Duration) -> bool {
        let mut command = Command::new(crate::support::cli_bin());
        for name in SCRUBBED {
            command.env_remove(name);
        }
        let mut child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DISPLAY", &self.x.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("a second app process");
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Ends the session (the app exits) and the driver; the display goes last.
    pub(crate) async fn quit(mut self) {
        // The connection sometimes drops while the app exits under D-Bus; that is fine here.
        let _ = tokio::time::timeout(Duration::from_secs(20), self.client.clone().close()).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub(crate) fn stored(store: &KeyringStore) -> Option<String> {
    store.load().expect("the keychain answers")
}

fn query_value(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "current_thread")]
async fn sign_in_through_the_window_restore_in_a_new_process_and_sign_out() {
    let idp = Idp::start_with(&[("IDP_TEST_HOOKS", "1")]);
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;

    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    sandbox.wait_log("first screen drawn: signed-out").await;
    app.screenshot("signed-out", Lang::En);
    app.click("sign-in-amazon").await;
    let url = sandbox.wait_opened(1).await;
    app.wait_state("signing-in").await;
    app.screenshot("signing-in", Lang::En);
    assert!(url.contains("direct_sign_in=social%3Aamazon"), "{url}");
    assert_eq!(query_value(&url, "ui_locales").as_deref(), Some("en"));

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
    assert_eq!(app.text("user-via").await, "Signed in with Amazon");
    app.screenshot("signed-in", Lang::En);

    let stored_text = stored(&store).expect("the session is in the keychain");
    let session =
        StoredSession::decode(&stored_text, &idp.info.issuer, &idp.info.app_id).expect("decodes");
    assert_eq!(session.user().email.as_deref(), Some(amazon.email.as_str()));
    app.quit().await;

    // A new app process shows the stored user at once: the first screen it draws is the
    // signed-in one, with no loading or signed-out screen before it.
    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-in").await;
    sandbox.wait_log("first screen drawn: signed-in").await;
    let drawn: Vec<String> = sandbox
        .log()
        .lines()
        .filter_map(|l| l.split_once("first screen drawn: "))
        .map(|(_, screen)| {
            screen
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .collect();
    assert_eq!(
        drawn,
        ["signed-out", "signed-in"],
        "one first screen per launch"
    );
    assert_eq!(app.text("user-name").await, amazon.name);
    assert_eq!(sandbox.opened().len(), 1, "restoring opened no browser");

    // A second launch hands over to the running window and exits, starting nothing.
    assert!(
        app.launch_again(Duration::from_secs(20)),
        "the second launch did not hand over and exit"
    );
    assert!(
        sandbox
            .log()
            .contains("a second launch asked for the window"),
        "the running app was not told"
    );
    assert_eq!(app.state().await, "signed-in");

    app.click("sign-out").await;
    app.wait_state("signed-out").await;
    assert_eq!(stored(&store), None, "sign-out removed the keychain entry");
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
    let mut secrets = session_secrets(&session);
    secrets.append(&mut callback_secrets);
    // And every secret the provider handed out or received in the run (the PKCE verifier, the
    // tokens of every refresh and of the revocation, not only what the keychain held last).
    let run = idp.secrets().await;
    assert!(
        run.len() >= 7,
        "too few secrets to prove anything: {}",
        run.len()
    );
    secrets.extend(run.into_iter().filter(|s| s.len() >= 16));
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret reached the app's log");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cancel_returns_to_signed_out_and_closes_the_loopback_port() {
    let idp = Idp::start();
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    app.click("sign-in-amazon").await;
    let url = sandbox.wait_opened(1).await;
    let port = redirect_port(&url);
    app.wait_state("signing-in").await;
    let countdown = app.text("countdown").await;
    assert!(
        countdown.starts_with("4:5") || countdown == "5:00",
        "a five-minute countdown: {countdown:?}"
    );

    // Open the browser again: the same sign-in, the same URL.
    app.click("open-again").await;
    assert_eq!(sandbox.wait_opened(2).await, url);
    // Copy link: the URL goes to the clipboard from Rust (another program pastes it from
    // there); the page only hears that it worked.
    app.click("copy-link").await;
    app.wait_text("signing-in-feedback", |t| t.starts_with("Link copied"))
        .await;
    let pasted = app.clipboard();
    assert!(
        pasted.as_deref() == Some(url.as_str()),
        "the clipboard holds the sign-in link ({} bytes there)",
        pasted.map_or(0, |p| p.len())
    );

    app.click("cancel").await;
    app.wait_state("signed-out").await;
    assert!(
        nothing_listens_on(port).await,
        "the loopback port {port} is closed"
    );
    assert_eq!(stored(&store), None, "nothing in the keychain");
    app.quit().await;

    // The link holds state and nonce: neither the page's state nor the log ever carried it.
    let log = sandbox.log();
    for name in ["state", "nonce", "code_challenge"] {
        let value = query_value(&url, name).expect("the URL carries it");
        assert!(!log.contains(&value), "{name} reached the app's log");
    }
    assert!(log.contains("copied the sign-in link"), "copy was logged");
}

#[tokio::test(flavor = "current_thread")]
async fn a_sign_in_that_gets_no_answer_times_out_with_an_error_screen() {
    let idp = Idp::start();
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let mut env = idp_env(&idp).to_vec();
    env.push(("LOGTO_SIGN_IN_TIMEOUT_SECS", "3"));
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;
    app.click("sign-in-amazon").await;
    let url = sandbox.wait_opened(1).await;
    let port = redirect_port(&url);
    app.wait_state("error").await;
    assert_eq!(
        app.attr("error-message", "data-code").await.as_deref(),
        Some("sign_in.timed_out")
    );
    assert_eq!(app.text("error-title").await, "The sign-in timed out");
    assert!(app
        .text("error-message")
        .await
        .contains("No answer came back"));
    app.screenshot("error", Lang::En);
    assert!(
        nothing_listens_on(port).await,
        "the loopback port is closed"
    );
    assert_eq!(stored(&store), None, "nothing in the keychain");

    // Try again starts a new sign-in the same way.
    app.click("try-again").await;
    let again = sandbox.wait_opened(2).await;
    assert!(again.contains("direct_sign_in=social%3Aamazon"), "{again}");
    app.wait_state("signing-in").await;
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_sign_in_shows_the_providers_reason_in_the_error_screen() {
    let idp = Idp::start();
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let app = App::launch(&sandbox, Lang::Ja, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    assert_eq!(app.text("sign-in").await, "サインイン");
    app.click("sign-in").await;
    let url = sandbox.wait_opened(1).await;
    // The language the window speaks is the one Logto and the loopback page are asked for.
    assert_eq!(query_value(&url, "ui_locales").as_deref(), Some("ja"));
    chrome.goto(&url).await;
    chrome.click("deny").await;
    chrome.landed_on("refused").await;
    let page = chrome.client.source().await.expect("the loopback page");
    assert!(
        page.contains("サインインは完了しませんでした"),
        "the loopback page speaks Japanese:\n{page}"
    );

    app.wait_state("error").await;
    assert_eq!(
        app.attr("error-message", "data-code").await.as_deref(),
        Some("provider.refused")
    );
    let message = app.text("error-message").await;
    assert!(message.contains("access_denied"), "{message}");
    assert_eq!(
        app.text("error-title").await,
        "サインインは完了しませんでした"
    );
    app.screenshot("error", Lang::Ja);
    assert_eq!(stored(&store), None, "nothing in the keychain");
    app.quit().await;
    chrome.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn sign_out_from_the_app_menu_through_its_accelerator() {
    let idp = Idp::start();
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let app = App::launch(&sandbox, Lang::Ja, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    app.screenshot("signed-out", Lang::Ja);

    // The menu's own accelerator starts a sign-in (Account > Sign in with Amazon).
    app.key("ctrl+shift+a");
    let url = sandbox.wait_opened(1).await;
    assert!(url.contains("direct_sign_in=social%3Aamazon"), "{url}");
    app.wait_state("signing-in").await;
    app.screenshot("signing-in", Lang::Ja);

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
    app.wait_state("signed-in").await;
    assert_eq!(app.text("user-via").await, "Amazon でサインイン済み");
    app.screenshot("signed-in", Lang::Ja);
    assert!(stored(&store).is_some(), "the session is in the keychain");

    // Signed in, "Sign in with Amazon" is disabled: its accelerator does nothing. Keys are
    // handled in the order pressed, so once the next one, Account > Sign out, has acted, the
    // first has had its turn, and it must have opened nothing.
    app.key("ctrl+shift+a");
    app.key("ctrl+shift+o");
    app.wait_state("signed-out").await;
    assert_eq!(stored(&store), None, "the keychain entry is gone");
    let end_session = sandbox.wait_opened(2).await;
    assert!(
        end_session.starts_with(&format!("{}/session/end?", idp.info.issuer)),
        "{end_session}"
    );
    assert_eq!(sandbox.opened().len(), 2, "no second sign-in started");
    assert!(sandbox.log().contains("sign-out from the app menu"));
    chrome.stop().await;

    // Account > Quit (Ctrl+Q) ends the app the way people do, which saves the window's size.
    app.resize(520, 700);
    app.key("ctrl+q");
    let state_file = sandbox
        .path("config")
        .join("io.logto.desktop-sample")
        .join(".window-state.json");
    let start = Instant::now();
    while !state_file.exists() && start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(state_file.exists(), "quitting saved the window state");
    app.quit().await;

    // The next launch opens the window at the size it had.
    let app = App::launch(&sandbox, Lang::Ja, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    let (width, height) = app.size();
    assert_eq!(width, 520, "the remembered width");
    assert!(
        (660..=740).contains(&height),
        "the remembered height: {height}"
    );
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_run_screen_checks_and_saves_the_configuration() {
    let idp = Idp::start();
    empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let app = App::launch(&sandbox, Lang::En, &[]).await;
    app.wait_state("setup").await;
    app.screenshot("setup", Lang::En);

    // Help opens in the system browser; the window stays where it is.
    app.click("help-native-app").await;
    let help = sandbox.wait_opened(1).await;
    assert!(help.starts_with("https://docs.logto.io/"), "{help}");
    assert_eq!(app.state().await, "setup");

    app.type_into("setup-endpoint", &idp.info.endpoint).await;
    app.type_into("setup-app-id", &idp.info.app_id).await;
    app.click("setup-save").await;
    app.wait_state("signed-out").await;
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.config_file()).expect("the config file was written"),
    )
    .expect("the config file is JSON");
    assert_eq!(saved["endpoint"], idp.info.endpoint.as_str());
    assert_eq!(saved["app_id"], idp.info.app_id.as_str());
    // The check found Amazon in the tenant's sign-in experience: its button, no notice.
    assert_eq!(
        app.eval("return document.getElementById('amazon-missing').hidden")
            .await,
        true
    );
    // The new configuration is live: signing in works at once.
    app.click("sign-in-amazon").await;
    let url = sandbox.wait_opened(2).await;
    assert!(
        url.starts_with(&format!("{}/auth?", idp.info.issuer)),
        "{url}"
    );
    app.wait_state("signing-in").await;
    app.quit().await;

    // The next launch reads the file: no first-run screen.
    let app = App::launch(&sandbox, Lang::En, &[]).await;
    app.wait_state("signed-out").await;
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_run_screen_refuses_a_bad_endpoint_and_saves_nothing() {
    let sandbox = Sandbox::new();
    let app = App::launch(&sandbox, Lang::Ja, &[]).await;
    app.wait_state("setup").await;
    assert_eq!(app.text("setup-title").await, "Logto に接続");
    app.screenshot("setup", Lang::Ja);

    // Nothing listens there: the check fails before anything is saved.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    app.type_into("setup-endpoint", &nowhere).await;
    app.type_into("setup-app-id", "desktop-demo-app").await;
    app.click("setup-save").await;
    let error = app
        .wait_text("setup-error", |t| t.contains("応答がありません"))
        .await;
    assert!(
        error.contains("127.0.0.1"),
        "the detail names the host: {error}"
    );
    assert_eq!(app.state().await, "setup");

    // Not https (and not this machine): refused without a request.
    app.type_into("setup-endpoint", "http://tenant.example.com")
        .await;
    app.click("setup-save").await;
    app.wait_text("setup-error", |t| t.contains("https")).await;
    app.screenshot("setup-error", Lang::Ja);
    assert_eq!(app.state().await, "setup");
    assert!(
        !sandbox.config_file().exists() && !sandbox.path("config").join("logto-desktop").exists(),
        "nothing was saved"
    );
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_broken_environment_shows_where_to_read_how_to_fix_it() {
    let sandbox = Sandbox::new();
    let app = App::launch(
        &sandbox,
        Lang::En,
        &[
            ("LOGTO_ENDPOINT", "http://tenant.example.com"),
            ("LOGTO_APP_ID", "desktop-demo-app"),
        ],
    )
    .await;
    app.wait_state("error").await;
    assert_eq!(
        app.attr("error-message", "data-code").await.as_deref(),
        Some("config.invalid")
    );
    // Nothing to retry; something to read, and focusable.
    assert_eq!(
        app.eval("return document.getElementById('try-again').hidden")
            .await,
        true
    );
    assert_eq!(
        app.eval("return document.getElementById('error-help').hidden")
            .await,
        false
    );
    assert_eq!(
        app.eval("const a = document.getElementById('error-help'); a.focus(); return document.activeElement === a")
            .await,
        true
    );
    app.click("error-help").await;
    let opened = sandbox.wait_opened(1).await;
    assert!(opened.starts_with("https://docs.logto.io/"), "{opened}");
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_call_api_panel_shows_a_tokens_claims_and_never_the_token() {
    let idp = Idp::start_with(&[("IDP_TEST_HOOKS", "1")]);
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let resource = "https://api.example.test";
    let mut env = idp_env(&idp).to_vec();
    env.push(("LOGTO_RESOURCES", resource));
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;
    app.record_ipc().await;
    app.click("sign-in").await;
    let url = sandbox.wait_opened(1).await;
    assert_eq!(query_value(&url, "resource").as_deref(), Some(resource));
    let alice = idp.alice().clone();
    chrome
        .sign_in_with_password(&url, &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    app.wait_state("signed-in").await;

    app.click("call-api").await;
    let audience = app.wait_text("api-audience", |t| !t.is_empty()).await;
    assert_eq!(audience, resource, "a JWT access token for the API");
    assert!(
        !app.text("api-expires").await.is_empty(),
        "its expiry is shown"
    );
    app.screenshot("signed-in-api", Lang::En);

    // Whatever the page holds or was sent (every IPC answer and event, the Call an API answer
    // included), no secret of the run is in it: every code, state, nonce, verifier and token the
    // provider handed out or received.
    let page = app
        .eval("return document.documentElement.outerHTML")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    let received = app.ipc_log().await;
    assert!(
        received.iter().any(|m| m.contains("signed-in"))
            && received.iter().any(|m| m.contains(resource)),
        "the recorder saw the state event and the token answer: {received:?}"
    );
    let secrets = idp.secrets().await;
    assert!(
        secrets.len() >= 8,
        "too few secrets to prove anything: {}",
        secrets.len()
    );
    let received = received.join("\n");
    for secret in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(!page.contains(secret.as_str()), "a secret reached the page");
        assert!(
            !received.contains(secret.as_str()),
            "a secret reached the page over IPC"
        );
    }
    assert!(stored(&store).is_some(), "the session is in the keychain");
    app.quit().await;
    chrome.stop().await;
}

/// The page gets the app's own commands and event listening, nothing of Tauri's core; its CSP
/// lets it load no remote image; the picture it shows is one the app fetched after the sign-in.
#[tokio::test(flavor = "current_thread")]
async fn the_window_reaches_only_what_it_needs() {
    let idp = Idp::start();
    let _store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;

    let own = app.invoke("get_state", serde_json::json!({})).await;
    assert_eq!(own["ok"], true, "the app's own command: {own}");
    for (command, args) in [
        (
            "plugin:menu|new",
            serde_json::json!({"kind": "Menu", "options": {}}),
        ),
        (
            "plugin:window|set_title",
            serde_json::json!({"label": "main", "value": "pwned"}),
        ),
        ("plugin:app|version", serde_json::json!({})),
        (
            "plugin:path|resolve_directory",
            serde_json::json!({"directory": 8}),
        ),
        (
            "plugin:event|emit",
            serde_json::json!({"event": "auth-state", "payload": {}}),
        ),
    ] {
        let answer = app.invoke(command, args).await;
        assert_eq!(answer["ok"], false, "{command} was allowed: {answer}");
        let error = answer["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(error.contains("not allowed"), "{command}: {answer}");
    }

    // The CSP refuses a remote image (the webview must not call third parties by itself).
    let violated = app
        .eval_async(
            "const done = arguments[arguments.length - 1];
             document.addEventListener('securitypolicyviolation', (e) => done(e.effectiveDirective || e.violatedDirective), { once: true });
             const img = new Image();
             img.src = 'https://avatars.example.com/a.png';
             document.body.appendChild(img);
             setTimeout(() => done('no violation'), 5000);",
        )
        .await;
    assert_eq!(violated.as_str(), Some("img-src"), "{violated}");

    // Bob's picture is on the provider: the app fetches it and the page shows a data: URL.
    app.click("sign-in").await;
    let url = sandbox.wait_opened(1).await;
    let bob = idp.info.users[1].clone();
    assert_eq!(bob.username, "bob");
    chrome
        .sign_in_with_password(&url, &bob.username, &bob.password)
        .await;
    chrome.landed_on("ok").await;
    app.wait_state("signed-in").await;
    let start = Instant::now();
    let src = loop {
        let src = app
            .eval("const i = document.getElementById('avatar-img'); return i && !i.hidden && i.complete && i.naturalWidth > 0 ? i.src : null")
            .await;
        if let Some(src) = src.as_str() {
            break src.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the picture never showed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        src.starts_with("data:image/svg+xml;base64,"),
        "{}",
        &src[..src.len().min(60)]
    );
    app.screenshot("signed-in-picture", Lang::En);
    chrome.stop().await;
    app.quit().await;
}

/// Issue 9: a signed-out window has discovery and the keys ready before the click, so no round
/// trip stands between "Sign in" and the browser; a signed-in start makes no request at all.
#[tokio::test(flavor = "current_thread")]
async fn a_signed_out_start_fetches_discovery_ahead_and_a_signed_in_one_asks_nothing() {
    let idp = Idp::start_with(&[("IDP_TEST_HOOKS", "1")]);
    let _store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    let start = Instant::now();
    // The keys, and the tenant check beside them.
    let ahead = |requests: &[serde_json::Value]| {
        ["/oidc/jwks", "/api/.well-known/sign-in-exp"]
            .iter()
            .all(|path| requests.iter().any(|r| r["path"] == *path))
    };
    while !ahead(&idp.requests().await) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the keys and the sign-in experience were not fetched ahead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The click goes to the browser with nothing fetched in between.
    let before = idp.requests().await.len();
    app.click("sign-in").await;
    let url = sandbox.wait_opened(1).await;
    assert_eq!(
        idp.requests().await.len(),
        before,
        "a request before the browser opened"
    );
    let alice = idp.alice().clone();
    chrome
        .sign_in_with_password(&url, &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    app.wait_state("signed-in").await;
    app.quit().await;
    chrome.stop().await;

    // Restarted signed in: the user is shown, and Logto hears nothing (discovery included)
    // until the person acts. The sign-out is that act: once its revocation has arrived, every
    // request since the start must have come after the click.
    let before = idp.requests().await.len();
    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-in").await;
    let clicked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    app.click("sign-out").await;
    app.wait_state("signed-out").await;
    let since: Vec<serde_json::Value> = idp.requests().await[before..].to_vec();
    assert!(
        since.iter().any(|r| r["path"] == "/oidc/token/revocation"),
        "the sign-out reached Logto: {since:?}"
    );
    let early: Vec<&serde_json::Value> = since
        .iter()
        .filter(|r| r["at"].as_i64().is_none_or(|at| at < clicked_at))
        .collect();
    assert!(early.is_empty(), "a signed-in start asked Logto: {early:?}");
    app.quit().await;
}

/// Issue 10's tenant check: where the tenant's sign-in experience has no Amazon connector,
/// "Continue with Amazon" (which would land on Logto's own first screen) is not offered; the
/// screen says how to add one, and the answer is kept for the next start, even offline. Where
/// nothing is known, the button stays.
#[tokio::test(flavor = "current_thread")]
async fn a_tenant_without_amazon_offers_plain_sign_in_and_says_how_to_add_amazon() {
    let mut idp = Idp::start_with(&[("IDP_AMAZON_CONNECTOR", "off"), ("IDP_TEST_HOOKS", "1")]);
    let _store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let hidden = |id: &str| format!("return document.getElementById('{id}').hidden");
    let app = App::launch(&sandbox, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    let start = Instant::now();
    while app.eval(&hidden("amazon-missing")).await != false {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the notice never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.eval(&hidden("sign-in-amazon")).await, true);
    assert!(
        app.text("amazon-missing").await.contains("Connectors"),
        "the notice says where to add it"
    );
    // Plain sign-in is the main button now.
    assert_eq!(
        app.eval("return document.getElementById('sign-in').classList.contains('secondary')")
            .await,
        false
    );
    assert!(
        idp.requests()
            .await
            .iter()
            .any(|r| r["path"] == "/api/.well-known/sign-in-exp"),
        "the app read the sign-in experience"
    );
    app.screenshot("signed-out-no-amazon", Lang::En);
    app.click("help-amazon").await;
    let help = sandbox.wait_opened(1).await;
    assert_eq!(help, "https://docs.logto.io/integrations/amazon");
    assert_eq!(app.state().await, "signed-out");
    // The menu's "Sign in with Amazon" is off too: its accelerator starts nothing, while plain
    // "Sign in"'s does (so the keys do reach the menu).
    // Pressed one after the other: once plain "Sign in" has opened the browser, the Amazon key
    // before it must have opened nothing.
    app.key("ctrl+shift+a");
    app.key("ctrl+shift+i");
    let url = sandbox.wait_opened(2).await;
    assert!(!url.contains("direct_sign_in"), "{url}");
    assert_eq!(sandbox.opened().len(), 2, "the Amazon key opened nothing");
    app.wait_state("signing-in").await;
    app.click("cancel").await;
    app.wait_state("signed-out").await;
    assert_eq!(app.eval(&hidden("amazon-missing")).await, false);
    app.quit().await;

    // Offline at the next start: the kept answer draws the first screen.
    idp.stop();
    let app = App::launch(&sandbox, Lang::Ja, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    assert_eq!(app.eval(&hidden("amazon-missing")).await, false);
    assert_eq!(app.eval(&hidden("sign-in-amazon")).await, true);
    app.screenshot("signed-out-no-amazon", Lang::Ja);
    app.quit().await;

    // Nothing known (another computer, the same dead endpoint): every button stays.
    let fresh = Sandbox::new();
    let app = App::launch(&fresh, Lang::En, &idp_env(&idp)).await;
    app.wait_state("signed-out").await;
    // Once the check has failed (what it does against a dead endpoint), nothing hides a button.
    let start = Instant::now();
    while !fresh
        .log()
        .contains("the tenant's sign-in experience was not read")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the tenant check did not end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.eval(&hidden("sign-in-amazon")).await, false);
    assert_eq!(app.eval(&hidden("amazon-missing")).await, true);
    app.quit().await;
}

/// Switches the provider's signing key to a new one of `alg` (RS256: RSA, ES384: EC), as Logto's
/// Console or `POST /api/configs/oidc/private-keys/rotate` does, keeping the previous key or not.
async fn switch_keys(idp: &Idp, alg: &str, keep_previous: bool) {
    let answer = idp.rotate_keys(keep_previous, Some(alg)).await;
    assert_eq!(answer["alg"], alg, "{answer}");
}

/// Clicks Sign in, signs in as `user` with a password in the browser tab the app opened, and
/// waits for the signed-in screen.
pub(crate) async fn sign_in_as(app: &App, sandbox: &Sandbox, chrome: &Chrome, user: &TestUser) {
    let opened = sandbox.opened().len();
    app.click("sign-in").await;
    let url = sandbox.wait_opened(opened + 1).await;
    chrome
        .sign_in_with_password(&url, &user.username, &user.password)
        .await;
    chrome.landed_on("ok").await;
    app.wait_state("signed-in").await;
}

/// The algorithm of the ID token the keychain entry holds.
fn stored_id_token_alg(store: &KeyringStore, idp: &Idp) -> Option<String> {
    let session = crate::support::session::stored_session(store, idp)?;
    crate::support::jwt_header_field(session.id_token()?, "alg")
}

/// Issue 16: a tenant whose signing key switches between EC and RSA. Logto's discovery lists only
/// the algorithms of the keys it holds, so a window that fetched it before the switch holds a
/// list without the new algorithm, and keys without the new key. Neither is proof of a forged
/// token: a refresh after the switch keeps the session (and takes the new tokens), and a sign-in
/// after the switch, in a window that fetched discovery before it, succeeds.
async fn a_key_type_switch_is_followed(from: &str, to: &str) {
    const API: &str = "https://api.example.test";
    let idp = Idp::start_with(&[
        ("IDP_TEST_HOOKS", "1"),
        ("IDP_ID_TOKEN_ALG", from),
        // 4 s access tokens are fresh for 3 s: a call later than that refreshes.
        ("IDP_ACCESS_TOKEN_TTL", "4"),
    ]);
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let mut env = idp_env(&idp).to_vec();
    env.push(("LOGTO_RESOURCES", API));
    let alice = idp.alice().clone();

    // A window signed in under the first key type, with discovery and the keys fetched then.
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;
    sign_in_as(&app, &sandbox, &chrome, &alice).await;
    assert_eq!(stored_id_token_alg(&store, &idp).as_deref(), Some(from));
    let answer = app
        .invoke("get_access_token", serde_json::json!({ "resource": API }))
        .await;
    assert_eq!(answer["ok"], true, "{answer}");

    // The switch, then a refresh: the session stays, with the new key type's tokens.
    switch_keys(&idp, to, true).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let answer = app
        .invoke("get_access_token", serde_json::json!({ "resource": API }))
        .await;
    assert_eq!(answer["ok"], true, "a refresh after the switch: {answer}");
    assert_eq!(app.state().await, "signed-in");
    assert_eq!(
        stored_id_token_alg(&store, &idp).as_deref(),
        Some(to),
        "the refreshed ID token is kept"
    );
    assert!(
        idp.requests_to("/oidc/token/revocation").await.is_empty(),
        "nothing was revoked"
    );
    assert!(!sandbox.log().contains("does not belong to this session"));
    app.click("sign-out").await;
    app.wait_state("signed-out").await;
    app.quit().await;
    // A browser with no Logto session of its own, as after the end-session page.
    chrome.stop().await;
    let chrome = Chrome::start().await;

    // A window that fetched discovery while only the first key type was held, then the switch,
    // then a sign-in.
    switch_keys(&idp, from, false).await;
    let keys_fetched = idp.requests_to("/oidc/jwks").await.len();
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;
    let start = Instant::now();
    while idp.requests_to("/oidc/jwks").await.len() == keys_fetched {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the keys were not fetched ahead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    switch_keys(&idp, to, true).await;
    // The sign-out above revoked its grant; nothing more may be.
    let revoked = idp.requests_to("/oidc/token/revocation").await.len();
    sign_in_as(&app, &sandbox, &chrome, &alice).await;
    assert_eq!(stored_id_token_alg(&store, &idp).as_deref(), Some(to));
    assert_eq!(
        idp.requests_to("/oidc/token/revocation").await.len(),
        revoked,
        "the new sign-in's grant is alive"
    );
    assert!(!sandbox.log().contains("sign-in ended without success"));
    app.quit().await;
    chrome.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn issue_16_a_switch_from_ec_to_rsa_keys_keeps_the_session_and_the_sign_in() {
    a_key_type_switch_is_followed("ES384", "RS256").await;
}

#[tokio::test(flavor = "current_thread")]
async fn issue_16_a_switch_from_rsa_to_ec_keys_keeps_the_session_and_the_sign_in() {
    a_key_type_switch_is_followed("RS256", "ES384").await;
}
