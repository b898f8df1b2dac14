//! Starts the Logto-faithful provider (`tests/idp/server.js`) on loopback ports it picks, reads
//! the JSON line it prints, and stops it on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct TestUser {
    pub username: String,
    pub password: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmazonUser {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmazonInfo {
    pub origin: String,
    pub users: Vec<AmazonUser>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdpInfo {
    pub endpoint: String,
    pub issuer: String,
    pub app_id: String,
    pub users: Vec<TestUser>,
    pub amazon: AmazonInfo,
}

pub struct Idp {
    pub info: IdpInfo,
    child: Child,
    // Held open: the provider exits when it closes (IDP_EXIT_WITH_STDIN), so a crashed test
    // leaves nothing running.
    _stdin: ChildStdin,
}

impl Idp {
    pub fn start() -> Idp {
        Idp::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Idp {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp");
        assert!(
            dir.join("node_modules").is_dir(),
            "tests/idp/node_modules is missing: run `make test` (or `npm --prefix tests/idp ci`)"
        );
        let mut command = Command::new("node");
        command
            .arg("server.js")
            .current_dir(&dir)
            .env("IDP_EXIT_WITH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("starting node tests/idp/server.js");
        let stdin = child.stdin.take().expect("provider stdin");
        let stdout = child.stdout.take().expect("provider stdout");
        // Read the line on a thread, so a provider that never prints fails the test, not hangs it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the provider printed no JSON line within 30 s");
            }
        };
        let info: IdpInfo = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the provider printed {line:?}, not its JSON line: {e}"));
        Idp {
            info,
            child,
            _stdin: stdin,
        }
    }

    pub fn alice(&self) -> &TestUser {
        &self.info.users[0]
    }

    /// Stops the provider now; its ports then refuse connections.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every secret value of the run the provider handed out or received (codes, `state`,
    /// `nonce`, PKCE verifiers, access, refresh and ID tokens). Needs `IDP_TEST_HOOKS=1`.
    pub async fn secrets(&self) -> Vec<String> {
        #[derive(Deserialize)]
        struct Secrets {
            secrets: Vec<String>,
        }
        let answer: Secrets = crate::support::http()
            .get(format!("{}/test/secrets", self.info.endpoint))
            .send()
            .await
            .expect("the provider's /test/secrets (start it with IDP_TEST_HOOKS=1)")
            .json()
            .await
            .expect("secrets JSON");
        answer.secrets
    }

    /// The requests to `path` in [`Self::requests`], in order.
    pub async fn requests_to(&self, path: &str) -> Vec<serde_json::Value> {
        let mut requests = self.requests().await;
        requests.retain(|r| r["path"] == path);
        requests
    }

    /// What the provider was told, in order: `{method, path, grant_type?, token_type_hint?,
    /// status, token_sha256?}` per request to its token, revocation, end-session, JWKS,
    /// userinfo and sign-in experience endpoints. Needs `IDP_TEST_HOOKS=1`.
    pub async fn requests(&self) -> Vec<serde_json::Value> {
        let answer: serde_json::Value = crate::support::http()
            .get(format!("{}/test/requests", self.info.endpoint))
            .send()
            .await
            .expect("the provider's /test/requests (start it with IDP_TEST_HOOKS=1)")
            .json()
            .await
            .expect("requests JSON");
        answer["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Rotates the signing key as Logto's Console does (`POST /test/rotate-keys`; needs
    /// `IDP_TEST_HOOKS=1`): `keep_previous` keeps the old public key in the JWKS (Logto's grace
    /// period), `alg` (`ES384` or `RS256`) switches the key type. Returns the provider's answer
    /// (`kid`, `previous_kid`, `jwks_kids`, `alg`).
    pub async fn rotate_keys(&self, keep_previous: bool, alg: Option<&str>) -> serde_json::Value {
        let mut form = vec![("keep_previous", if keep_previous { "1" } else { "0" })];
        form.extend(alg.map(|alg| ("alg", alg)));
        crate::support::http()
            .post(format!("{}/test/rotate-keys", self.info.endpoint))
            .form(&form)
            .send()
            .await
            .expect("rotate-keys")
            .json()
            .await
            .expect("rotate-keys JSON")
    }

    /// Holds back the next token answer for `ms` after the provider made it (needs
    /// `IDP_TEST_HOOKS`).
    pub async fn delay_next_token_answer(&self, ms: u64) {
        let status = crate::support::http()
            .post(format!("{}/test/delay-token", self.info.endpoint))
            .form(&[("ms", ms.to_string())])
            .send()
            .await
            .expect("delay-token")
            .status();
        assert_eq!(status, 204, "delay-token");
    }

    /// Waits (up to 10 s) until the provider has made the token answer it was told to hold back
    /// with [`Self::delay_next_token_answer`] and is holding it: `held_before` is its count of
    /// held answers from before. Whether it got there.
    pub async fn holds_a_made_answer(&self, held_before: u64) -> bool {
        for _ in 0..400 {
            let stats = self.stats().await;
            if stats["in_flight"] == 1 && stats["delayed_answers"].as_u64() == Some(held_before + 1)
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        false
    }

    /// The provider's counters (`GET /test/stats`: `in_flight`, `delayed_answers`, ...).
    pub async fn stats(&self) -> serde_json::Value {
        crate::support::http()
            .get(format!("{}/test/stats", self.info.endpoint))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON")
    }

    /// Uses a refresh token at the token endpoint directly, as someone holding a copy would.
    pub async fn refresh_directly(&self, refresh_token: &str) -> reqwest::Response {
        crate::support::http()
            .post(format!("{}/token", self.info.issuer))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", self.info.app_id.as_str()),
            ])
            .send()
            .await
            .expect("token endpoint")
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}
