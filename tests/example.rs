//! The core's terminal example (`crates/logto-native/examples/sign_in.rs`) run as a process, as
//! a person runs it: against the provider, with the real Secret Service as its keychain, Chromium
//! as the browser the person signs in with, and an `xdg-open` shim first on PATH that hands the
//! URL it opens to the test. Its stdout and stderr are pipes, so the countdown is the one it draws
//! when it is not on a terminal.
//!
//! Covered: sign-in with Amazon (the countdown counts down), the user printed, the session in the
//! keychain, a second run that restores without the browser, `--sign-out`; Ctrl-C; a browser that
//! cannot be opened (the link is printed, and signing in through it works); missing settings and
//! an unreachable Logto, with their exit codes; no secret in anything it prints.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logto_desktop::auth::TokenStore;

use crate::app_window::Sandbox;
use crate::support::chrome::Chrome;
use crate::support::idp::Idp;
use crate::support::session::{empty_keychain, redirect_port, session_secrets, stored_session};
use crate::support::{free_port, nothing_listens_on};

/// The example's binary beside the app's (`target/debug/examples/sign_in`), built once per test
/// process: `cargo test --workspace` has built it already (cargo then has nothing to do), a run
/// of this file alone has not. The whole workspace's examples, so that its features are those
/// of `cargo test --workspace` and nothing is compiled twice.
fn example_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--locked",
                    "--workspace",
                    "--examples",
                    "--manifest-path",
                ])
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
                .status()
                .expect("running cargo build for the example");
            assert!(status.success(), "building the sign_in example failed");
            let binary = crate::support::cli_bin()
                .parent()
                .expect("the app binary's folder")
                .join("examples")
                .join("sign_in");
            assert!(binary.is_file(), "no example at {}", binary.display());
            binary
        })
        .clone()
}

/// How the example finds (or does not find) a browser.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Browser {
    /// The shim first on PATH.
    Shim,
    /// A PATH with nothing on it: no `xdg-open`, `gio` or the like.
    None,
}

/// One run of the example, its output collected as it comes.
struct Run {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a finished run printed, and how it ended.
struct Finished {
    status: ExitStatus,
    out: String,
    err: String,
}

impl Finished {
    fn printed(&self) -> String {
        format!("{}{}", self.out, self.err)
    }
}

impl Run {
    /// Starts the example with nothing of the developer's environment but the session bus (the
    /// keychain); `settings` are its LOGTO_* variables.
    fn start(sandbox: &Sandbox, browser: Browser, settings: &[(&str, &str)], args: &[&str]) -> Run {
        let path = match browser {
            Browser::Shim => format!("{}:/usr/bin:/bin", sandbox.path("bin").display()),
            Browser::None => sandbox.path("empty").display().to_string(),
        };
        let mut command = Command::new(example_binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", sandbox.path("home"))
            .env("XDG_CONFIG_HOME", sandbox.path("config"))
            .env("XDG_CACHE_HOME", sandbox.path("cache"))
            .env("XDG_DATA_HOME", sandbox.path("data"))
            .env("XDG_RUNTIME_DIR", sandbox.path("run"))
            .env("LOGTO_TEST_OPENED", sandbox.path("opened.txt"))
            .env("LANG", "C.UTF-8")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Ok(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            command.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
        let mut child = command.spawn().expect("starting the sign_in example");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), out.clone()),
            collect(child.stderr.take().expect("stderr"), err.clone()),
        ];
        Run {
            child,
            out,
            err,
            readers,
        }
    }

    fn out(&self) -> String {
        self.out.lock().expect("stdout buffer").clone()
    }

    fn err(&self) -> String {
        self.err.lock().expect("stderr buffer").clone()
    }

    /// Waits (30 s at most) until `found` holds for what the example printed on one stream.
    async fn wait<T>(&self, what: &str, found: impl Fn(&str, &str) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let (out, err) = (self.out(), self.err());
            if let Some(value) = found(&out, &err) {
                return value;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the example never printed {what}; stdout:\n{out}\nstderr:\n{err}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_out(&self, text: &str) {
        self.wait(text, |out, _| out.contains(text).then_some(()))
            .await;
    }

    /// Waits for a countdown line on stderr showing less time than `below` (seconds), and
    /// returns the time it shows.
    async fn wait_countdown(&self, below: u64) -> u64 {
        self.wait("a countdown line", |_, err| {
            countdown_values(err).into_iter().find(|left| *left < below)
        })
        .await
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    fn interrupt(&self) {
        let status = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("kill -INT {}", self.child.id()))
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -INT failed");
    }

    /// Waits (60 s at most) for the example to exit.
    async fn finish(mut self) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the example") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the example did not exit; stdout:\n{}\nstderr:\n{}",
                    self.out(),
                    self.err()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            out: self.out(),
            err: self.err(),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A failed test leaves no example waiting for a browser.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut text) = into.lock() {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}

/// The times left, in seconds, of the countdown lines in `text` ("…: 4:55 left").
fn countdown_values(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_suffix(" left")?;
            let (_, m_ss) = rest.rsplit_once(' ')?;
            let (m, s) = m_ss.split_once(':')?;
            Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?)
        })
        .collect()
}

fn settings(idp: &Idp) -> [(&str, &str); 2] {
    [
        ("LOGTO_ENDPOINT", idp.info.endpoint.as_str()),
        ("LOGTO_APP_ID", idp.info.app_id.as_str()),
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn the_example_signs_in_from_a_terminal_then_restores_and_signs_out() {
    let idp = Idp::start_with(&[("IDP_TEST_HOOKS", "1")]);
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let amazon = idp.info.amazon.users[0].clone();

    let run = Run::start(&sandbox, Browser::Shim, &settings(&idp), &["--amazon"]);
    run.wait_out("Opening your browser…").await;
    let url = sandbox.wait_opened(1).await;
    assert!(
        url.starts_with(&format!("{}/auth?", idp.info.issuer)),
        "{url}"
    );
    assert!(url.contains("direct_sign_in=social%3Aamazon"), "{url}");
    // The countdown shows the time left, and counts down (a line every 5 s into a pipe).
    let first = run.wait_countdown(u64::MAX).await;
    assert!(
        (290..=300).contains(&first),
        "the first countdown line shows {first} s of the default 300"
    );
    let later = run.wait_countdown(first).await;
    assert!(later < first);

    chrome
        .sign_in_with_amazon(
            &url,
            &idp.info.amazon.origin,
            &amazon.email,
            &amazon.password,
        )
        .await;
    // Shown only if the test fails (libtest keeps a passing test's output to itself).
    eprintln!("the example so far:\n{}\n{}", run.out(), run.err());
    chrome.landed_on("ok").await;
    let first_run = run.finish().await;
    assert_eq!(
        first_run.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        first_run.out,
        first_run.err
    );
    assert!(first_run.out.contains("Signed in."), "{}", first_run.out);
    assert!(
        first_run
            .out
            .contains(&format!("name:     {}", amazon.name)),
        "{}",
        first_run.out
    );
    assert!(
        first_run
            .out
            .contains(&format!("email:    {}", amazon.email)),
        "{}",
        first_run.out
    );
    assert!(
        first_run.out.contains("through:  amazon"),
        "{}",
        first_run.out
    );
    let session = stored_session(&store, &idp).expect("the session is in the keychain");
    assert_eq!(session.user().email.as_deref(), Some(amazon.email.as_str()));

    // A second run shows the saved user and opens no browser.
    let second_run = Run::start(&sandbox, Browser::Shim, &settings(&idp), &[])
        .finish()
        .await;
    assert_eq!(
        second_run.status.code(),
        Some(0),
        "{}",
        second_run.printed()
    );
    assert!(
        second_run.out.contains("Already signed in"),
        "{}",
        second_run.out
    );
    assert!(
        second_run
            .out
            .contains(&format!("name:     {}", amazon.name)),
        "{}",
        second_run.out
    );
    assert!(
        !second_run.out.contains("Opening your browser"),
        "{}",
        second_run.out
    );
    assert!(countdown_values(&second_run.err).is_empty());
    assert_eq!(sandbox.opened().len(), 1, "restoring opened no browser");
    assert!(stored_session(&store, &idp).is_some());

    // --sign-out revokes, removes the entry and opens Logto's end-session page.
    let third_run = Run::start(&sandbox, Browser::Shim, &settings(&idp), &["--sign-out"])
        .finish()
        .await;
    assert_eq!(third_run.status.code(), Some(0), "{}", third_run.printed());
    assert!(third_run.out.contains("Signed out."), "{}", third_run.out);
    assert!(
        stored_session(&store, &idp).is_none(),
        "the keychain entry is gone"
    );
    let end_session = sandbox.wait_opened(2).await;
    assert!(
        end_session.starts_with(&format!("{}/session/end?", idp.info.issuer)),
        "{end_session}"
    );
    chrome.stop().await;

    // Nothing secret in anything it printed: not the session's tokens, nor any value the
    // provider handed out or received in the run (codes, state, nonce, the PKCE verifier, the
    // tokens of the revocation).
    let mut secrets = session_secrets(&session);
    let run_secrets = idp.secrets().await;
    assert!(
        run_secrets.len() >= 7,
        "too few secrets to prove anything: {}",
        run_secrets.len()
    );
    secrets.extend(run_secrets.into_iter().filter(|s| s.len() >= 16));
    let printed = [&first_run, &second_run, &third_run]
        .iter()
        .map(|run| run.printed())
        .collect::<String>();
    for secret in secrets {
        assert!(
            !printed.contains(&secret),
            "a secret reached the example's output"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ctrl_c_cancels_the_examples_sign_in_and_closes_its_listener() {
    let idp = Idp::start();
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();

    let run = Run::start(&sandbox, Browser::Shim, &settings(&idp), &[]);
    let url = sandbox.wait_opened(1).await;
    assert!(!url.contains("direct_sign_in"), "Logto's own page: {url}");
    let port = redirect_port(&url);
    run.wait_countdown(u64::MAX).await;
    run.interrupt();
    let finished = run.finish().await;
    assert_eq!(finished.status.code(), Some(130), "{}", finished.printed());
    assert!(
        finished.err.contains("The sign-in was cancelled."),
        "{}",
        finished.err
    );
    assert!(
        nothing_listens_on(port).await,
        "the loopback port {port} still accepts connections"
    );
    assert!(store.load().expect("the keychain answers").is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_browser_the_example_prints_the_link_and_signing_in_through_it_works() {
    let idp = Idp::start();
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let alice = idp.alice().clone();

    let run = Run::start(&sandbox, Browser::None, &settings(&idp), &[]);
    let link = run
        .wait("the sign-in link", |out, _| {
            out.lines()
                .find(|line| line.starts_with(&format!("{}/auth?", idp.info.issuer)))
                .map(str::to_string)
        })
        .await;
    assert!(
        run.out().contains("Your browser could not be opened"),
        "{}",
        run.out()
    );
    assert!(sandbox.opened().is_empty());
    run.wait_countdown(u64::MAX).await;

    chrome
        .sign_in_with_password(&link, &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    let finished = run.finish().await;
    chrome.stop().await;
    assert_eq!(finished.status.code(), Some(0), "{}", finished.printed());
    assert!(
        finished.out.contains(&format!("name:     {}", alice.name)),
        "{}",
        finished.out
    );
    assert!(
        finished.out.contains(&format!("email:    {}", alice.email)),
        "{}",
        finished.out
    );
    // The link carries `state` and `nonce` on purpose; the tokens appear nowhere.
    let session = stored_session(&store, &idp).expect("the session is in the keychain");
    let printed = finished.printed();
    for secret in session_secrets(&session)
        .into_iter()
        .filter(|s| !link.contains(s.as_str()))
    {
        assert!(
            !printed.contains(&secret),
            "a token reached the example's output"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_example_says_what_is_missing_or_wrong_and_exits_non_zero() {
    let sandbox = Sandbox::new();

    let unset = Run::start(&sandbox, Browser::Shim, &[], &[]).finish().await;
    assert_eq!(unset.status.code(), Some(2), "{}", unset.printed());
    assert!(
        unset.err.contains("LOGTO_ENDPOINT") && unset.err.contains("LOGTO_APP_ID"),
        "{}",
        unset.err
    );

    let wrong = Run::start(&sandbox, Browser::Shim, &[], &["--what"])
        .finish()
        .await;
    assert_eq!(wrong.status.code(), Some(2), "{}", wrong.printed());
    assert!(wrong.err.contains("Usage:"), "{}", wrong.err);

    // Nothing listens on the endpoint: AuthError's sentence, exit 1, no browser.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let unreachable = Run::start(
        &sandbox,
        Browser::Shim,
        &[
            ("LOGTO_ENDPOINT", endpoint.as_str()),
            ("LOGTO_APP_ID", "unreachable-app"),
        ],
        &[],
    )
    .finish()
    .await;
    assert_eq!(
        unreachable.status.code(),
        Some(1),
        "{}",
        unreachable.printed()
    );
    assert!(
        unreachable.err.contains("Logto could not be reached"),
        "{}",
        unreachable.err
    );
    assert!(sandbox.opened().is_empty());
}
