//! Test support: the provider ([`idp`]), the system browser stand-in driven through chromedriver
//! ([`chrome`]), an X display per app window ([`xvfb`]), what a sign-in left behind
//! ([`session`]), and helpers shared by the flows.

pub mod chrome;
pub mod idp;
pub mod logs;
pub mod session;
pub mod xvfb;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

/// A port that was free a moment ago, for servers that cannot be told to pick their own.
pub fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 for a free port")
}

/// Waits until `port` on 127.0.0.1 can be bound again (the listener released it), or gives up.
pub async fn port_is_free(port: u16) -> bool {
    for _ in 0..40 {
        if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Waits until nothing accepts connections on `port` any more.
pub async fn nothing_listens_on(port: u16) -> bool {
    for _ in 0..40 {
        if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The longest any one request to a server of the tests (the provider, a WebDriver, the app) may
/// take before the test fails.
pub const STEP_BOUND: Duration = Duration::from_secs(60);

/// Awaits `step` for at most [`STEP_BOUND`]: a server that stops answering fails the test, naming
/// `what`, instead of hanging the suite.
pub async fn bounded<T>(what: &str, step: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_BOUND, step).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {} s", STEP_BOUND.as_secs()),
    }
}

/// An HTTP client for the tests' own requests to the provider, with a deadline.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A field of a JWT's header (`kid`, `alg`), read without checking anything.
pub fn jwt_header_field(jwt: &str, field: &str) -> Option<String> {
    jwt_part(jwt, 0)?[field].as_str().map(str::to_string)
}

/// The claims of a JWT (its payload, unverified: the tests read what the app was given).
pub fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    jwt_part(jwt, 1)
}

fn jwt_part(jwt: &str, index: usize) -> Option<serde_json::Value> {
    use base64::Engine;
    let part = jwt.split('.').nth(index)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The command line, `logto-desktop` (a package of its own, src-tauri/cli): beside the window
/// program this build made, where `cargo test --workspace` puts it (its own test needs it built).
pub fn cli_bin() -> std::path::PathBuf {
    let cli = std::path::Path::new(env!("CARGO_BIN_EXE_logto-desktop-window"))
        .with_file_name(format!("logto-desktop{}", std::env::consts::EXE_SUFFIX));
    assert!(
        cli.is_file(),
        "no command line at {}: run the tests with `cargo test --workspace` (or `make test`)",
        cli.display()
    );
    cli
}
