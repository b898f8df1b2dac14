//! `logto-desktop status | token | sign-out | completions`, the app as a credential helper for
//! scripts (issue 11), run as the real binary against the provider and the real keychain: what
//! goes to stdout (the token, and only it) and stderr, the exit codes, the JSON, what Logto is
//! told; and the window and twenty `token` processes refreshing the same sign-in at once, one
//! refresh per rotation of the refresh token, with the grant alive at the end.

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use logto_desktop::auth::StoredSession;
use logto_desktop::auth::{KeyringStore, TokenStore};
use serde_json::{json, Value};

use crate::app_window::{idp_env, App, Lang, Sandbox, SCRUBBED};
use crate::core_flow::{assert_no_secret_of_the_run_in, Harness};
use crate::support::chrome::Chrome;
use crate::support::idp::Idp;
use crate::support::session::{empty_keychain, files_under, sha256_hex, stored_session};

/// The provider's default API resource.
const API: &str = "https://api.example.test";

/// What one run of the binary said.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Ran {
    // Only the exit code and stderr: a failing assertion must not print a token from stdout.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} ({} bytes on stdout), stderr: {}",
            self.code,
            self.stdout.len(),
            self.stderr
        )
    }
}

impl From<Output> for Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self:?}"))
    }
}

/// The binary with `args`, in `sandbox`'s folders (those of the window in the same sandbox: the
/// same config, keychain entry and lock file), nothing of the developer's LOGTO_* settings, and
/// `env` on top (a later value wins).
fn command(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(crate::support::cli_bin());
    for name in SCRUBBED {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(sandbox.env(Lang::En, env))
        .stdin(Stdio::null());
    command
}

fn run(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Ran {
    command(sandbox, args, env)
        .output()
        .expect("running logto-desktop")
        .into()
}

/// The environment of a script of the person signed in against `idp`, logging at `log`.
fn script_env<'a>(idp: &'a Idp, resources: &'a str, log: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = idp_env(idp).to_vec();
    env.extend([("LOGTO_RESOURCES", resources), ("RUST_LOG", log)]);
    env
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

fn refresh_token_of(session: &StoredSession) -> String {
    session
        .refresh_token()
        .expect("a refresh token")
        .to_string()
}

/// The refresh grants the provider answered, in order.
async fn refresh_grants(idp: &Idp) -> Vec<Value> {
    idp.requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/oidc/token" && r["grant_type"] == "refresh_token")
        .collect()
}

/// The provider's signing keys.
async fn jwks(idp: &Idp) -> Vec<Value> {
    let keys: Value = crate::support::http()
        .get(format!("{}/jwks", idp.info.issuer))
        .send()
        .await
        .expect("the provider's JWKS")
        .json()
        .await
        .expect("JWKS JSON");
    keys["keys"].as_array().cloned().unwrap_or_default()
}

fn b64(part: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url")
}

/// The claims of `jwt` once its ES384 signature checks out against one of `keys` (with ring).
fn verified_claims(jwt: &str, keys: &[Value]) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let header: Value = serde_json::from_slice(&b64(parts[0])).expect("a JSON header");
    assert_eq!(header["alg"], "ES384", "{header}");
    let key = keys
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("no key {} in the JWKS", header["kid"]));
    assert_eq!(key["crv"], "P-384");
    let mut point = vec![4u8];
    point.extend(b64(key["x"].as_str().expect("x")));
    point.extend(b64(key["y"].as_str().expect("y")));
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, point)
        .verify(signed.as_bytes(), &b64(parts[2]))
        .expect("the signature verifies with the provider's key");
    serde_json::from_slice(&b64(parts[1])).expect("JSON claims")
}

/// Asserts `jwt` is a valid access token of `idp` for `resource`, with time left.
fn assert_access_token_for(jwt: &str, resource: &str, idp: &Idp, keys: &[Value]) {
    let claims = verified_claims(jwt, keys);
    assert_eq!(claims["aud"], resource, "{claims}");
    assert_eq!(claims["iss"], idp.info.issuer.as_str());
    assert_eq!(claims["client_id"], idp.info.app_id.as_str());
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp > now(), "expired: exp {exp}");
}

/// No secret of the run in `text` (which may be empty).
async fn assert_no_secret_in(text: &str, idp: &Idp, what: &str) {
    let secrets = idp.secrets().await;
    assert!(secrets.len() >= 7, "too few secrets: {}", secrets.len());
    for secret in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(!text.contains(secret.as_str()), "a secret in {what}");
    }
}

/// One line of text, no more: the sentence a person reads.
fn one_sentence(stderr: &str) -> &str {
    let line = stderr.trim_end();
    assert!(
        !line.is_empty() && !line.contains('\n'),
        "one line on stderr: {stderr:?}"
    );
    line
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_sign_in_scripts_get_exit_code_3_a_sentence_and_nothing_on_stdout() {
    let sandbox = Sandbox::new();
    // No network is needed to know nobody is signed in: nothing listens at this endpoint.
    let app_id = format!("cli-signed-out-{}", std::process::id());
    let endpoint = "http://127.0.0.1:9";
    let config = [
        ("LOGTO_ENDPOINT", endpoint),
        ("LOGTO_APP_ID", app_id.as_str()),
        ("RUST_LOG", "warn"),
    ];
    KeyringStore::new(KEYCHAIN_SERVICE, &format!("{endpoint}/oidc"), &app_id)
        .delete()
        .expect("the Secret Service must be running (run the tests with `make test`)");

    let token = run(&sandbox, &["token", "--resource", API], &config);
    assert_eq!(token.code, 3, "{token:?}");
    assert!(token.stdout.is_empty(), "nothing on stdout");
    let sentence = one_sentence(&token.stderr);
    assert!(
        sentence.contains("not signed in") && sentence.contains("`logto-desktop`"),
        "what happened and what to do: {sentence}"
    );

    let as_json = run(&sandbox, &["token", "--json"], &config);
    assert_eq!(as_json.code, 3, "{as_json:?}");
    assert_eq!(as_json.json()["error"]["code"], "session.none");

    let status = run(&sandbox, &["status", "--json"], &config);
    assert_eq!(status.code, 3, "{status:?}");
    assert_eq!(status.json(), json!({ "state": "signed-out" }));
    let human = run(&sandbox, &["status"], &config);
    assert_eq!(human.code, 3, "{human:?}");
    assert!(human.stdout.starts_with("Not signed in."), "{human:?}");
    // The older spelling prints the same JSON and exits 0, as it always has.
    let legacy = run(&sandbox, &["--status"], &config);
    assert_eq!(legacy.code, 0, "{legacy:?}");
    assert_eq!(legacy.json(), json!({ "state": "signed-out" }));

    let sign_out = run(&sandbox, &["sign-out"], &config);
    assert_eq!(sign_out.code, 3, "{sign_out:?}");
    assert!(sign_out.stdout.is_empty());

    // Not set up at all (no environment, no config file): not signed in either, and it says how.
    let bare = run(&sandbox, &["token"], &[("RUST_LOG", "warn")]);
    assert_eq!(bare.code, 3, "{bare:?}");
    assert!(
        one_sentence(&bare.stderr).contains("not set up"),
        "{bare:?}"
    );

    // No keychain at all (no session bus): 1, and the keychain's own sentence.
    let mut no_bus = config.to_vec();
    no_bus.push(("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"));
    let token = run(&sandbox, &["token"], &no_bus);
    assert_eq!(token.code, 1, "{token:?}");
    assert!(token.stdout.is_empty());
    assert!(
        one_sentence(&token.stderr).contains("keychain"),
        "{token:?}"
    );
    let status = run(&sandbox, &["status", "--json"], &no_bus);
    assert_eq!(status.code, 1, "{status:?}");
    let shown = status.json();
    assert_eq!(shown["state"], "error");
    assert_eq!(shown["code"], "keychain.unavailable");

    // Usage mistakes are clap's 2.
    for args in [
        &["tokn"][..],
        &["token", "--resource"],
        &["token", "--nope"],
    ] {
        let wrong = run(&sandbox, args, &config);
        assert_eq!(wrong.code, 2, "{args:?}: {wrong:?}");
        assert!(wrong.stdout.is_empty(), "{args:?}");
    }
    assert!(
        !sandbox.path("opened.txt").exists(),
        "no browser was opened"
    );
}

/// Issue 17: output that never aborts. A reader that has gone away (`... | head -c0`, a closed
/// pipe) makes a command exit 1, never abort (134 with `panic = "abort"`) or die of a signal.
#[test]
fn a_closed_pipe_makes_status_and_completions_exit_1_not_abort() {
    use std::os::unix::process::ExitStatusExt;
    let sandbox = Sandbox::new();
    // Configured (signed out; --status reads the keychain and makes no request).
    let env = [
        ("LOGTO_ENDPOINT", "http://127.0.0.1:9"),
        ("LOGTO_APP_ID", "closed-pipe-test"),
    ];
    for args in [&["--status"][..], &["completions", "bash"][..]] {
        let read = run(&sandbox, args, &env);
        assert_eq!(read.code, 0, "{args:?} with a reader: {read:?}");
        assert!(!read.stdout.is_empty());
        let mut child = command(&sandbox, args, &env)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running logto-desktop");
        // The reading end closes before the program has even started writing.
        drop(child.stdout.take());
        let status = child.wait().expect("its exit");
        assert_eq!(status.signal(), None, "{args:?}: {status:?}");
        assert_eq!(status.code(), Some(1), "{args:?}: {status:?}");
    }
}

#[test]
fn help_lists_the_commands_and_exit_codes_and_completions_know_the_commands() {
    let sandbox = Sandbox::new();
    let help = run(&sandbox, &["--help"], &[]);
    assert_eq!(help.code, 0, "{help:?}");
    for text in [
        "status",
        "token",
        "sign-out",
        "completions",
        "Exit codes:",
        "0  done",
        "2  the command line was not understood",
        "3  not signed in",
        "4  Logto refused",
    ] {
        assert!(
            help.stdout.contains(text),
            "{text:?} in --help:\n{}",
            help.stdout
        );
    }
    let token = run(&sandbox, &["token", "--help"], &[]);
    for text in [
        "--resource <URL>",
        "--organization <ID>",
        "--json",
        "3  not signed in",
    ] {
        assert!(
            token.stdout.contains(text),
            "{text:?} in token --help:\n{}",
            token.stdout
        );
    }

    let bash = run(&sandbox, &["completions", "bash"], &[]);
    assert_eq!(bash.code, 0, "{bash:?}");
    for word in [
        "status",
        "token",
        "sign-out",
        "completions",
        "--resource",
        "--organization",
    ] {
        assert!(bash.stdout.contains(word), "{word} in the bash completions");
    }
    // bash loads it and registers the completion.
    let script = sandbox.path("completions.bash");
    std::fs::write(&script, &bash.stdout).expect("writing the script");
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p logto-desktop",
            script.display()
        ))
        .output()
        .expect("bash");
    assert!(
        loaded.status.success()
            && String::from_utf8_lossy(&loaded.stdout).contains("logto-desktop"),
        "{loaded:?}"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = run(&sandbox, &["completions", shell], &[]);
        assert!(
            out.code == 0 && out.stdout.contains("sign-out"),
            "{shell}: {out:?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_script_gets_the_token_alone_on_stdout_and_exit_codes_that_say_what_happened() {
    let mut h = Harness::with_config(Idp::start_with(&[("IDP_TEST_HOOKS", "1")]), |c| {
        c.resources = vec![API.into()];
        c.scopes = vec!["urn:logto:scope:organizations".into()];
    });
    let chrome = Chrome::start().await;
    h.sign_in_alice(&chrome).await;
    chrome.stop().await;
    let idp = &h.idp;
    let keys = jwks(idp).await;
    let sandbox = Sandbox::new();
    let quiet = script_env(idp, API, "warn");
    let traced = script_env(idp, API, "trace");
    let mut all_stderr = String::new();

    let status = run(&sandbox, &["status", "--json"], &quiet);
    assert_eq!(status.code, 0, "{status:?}");
    let shown = status.json();
    assert_eq!(shown["state"], "signed-in");
    assert_eq!(shown["user"]["email"], idp.alice().email.as_str());
    assert_no_secret_in(&status.stdout, idp, "status --json's stdout").await;
    let human = run(&sandbox, &["status"], &quiet);
    assert_eq!(
        human.stdout.trim_end(),
        format!("Signed in as {} <{}>.", idp.alice().name, idp.alice().email)
    );

    // The default token is fresh in the keychain: printed at once, and Logto hears nothing.
    let before = idp.requests().await.len();
    let default = run(&sandbox, &["token"], &traced);
    assert_eq!(default.code, 0, "{default:?}");
    let session = stored_session(&h.store, idp).expect("signed in");
    let (cached, _) = session.access_token().expect("a default token");
    // (Compared without assert_eq!, which would print the tokens.)
    assert!(
        default.stdout == format!("{cached}\n"),
        "the stored default token, alone on stdout"
    );
    assert_eq!(
        idp.requests().await.len(),
        before,
        "no request for a fresh token"
    );
    all_stderr.push_str(&default.stderr);

    // An API's token: one refresh, the rotated refresh token kept, a verified JWT for the API.
    let rt_before = refresh_token_of(&session);
    let api = run(&sandbox, &["token", "--resource", API], &traced);
    assert_eq!(api.code, 0, "{api:?}");
    assert!(api.stdout.ends_with('\n') && api.stdout.lines().count() == 1);
    assert_access_token_for(api.stdout.trim_end(), API, idp, &keys);
    let grants = refresh_grants(idp).await;
    assert_eq!(grants.len(), 1, "one refresh");
    assert_eq!(grants[0]["token_sha256"], sha256_hex(&rt_before).as_str());
    let rotated = refresh_token_of(&stored_session(&h.store, idp).expect("still signed in"));
    assert_ne!(
        rotated, rt_before,
        "the rotated refresh token is in the keychain"
    );
    all_stderr.push_str(&api.stderr);

    // --json: what the token is for and until when, never a token.
    let described = run(&sandbox, &["token", "--resource", API, "--json"], &traced);
    assert_eq!(described.code, 0, "{described:?}");
    let info = described.json();
    assert_eq!(info["resource"], API);
    assert!(
        info["expires_at"].as_u64().is_some_and(|at| at > now()),
        "{info}"
    );
    assert_eq!(info["claims"]["aud"], API);
    assert_eq!(info["claims"]["sub"], session.user().sub.as_str());
    assert_no_secret_in(&described.stdout, idp, "token --json's stdout").await;
    all_stderr.push_str(&described.stderr);

    // The default token is opaque: --json has no claims for it.
    let opaque = run(&sandbox, &["token", "--json"], &quiet);
    assert_eq!(opaque.code, 0, "{opaque:?}");
    assert_eq!(opaque.json()["claims"], Value::Null);
    assert_no_secret_in(&opaque.stdout, idp, "token --json's stdout").await;

    // An organization token (alice is in org-acme).
    let org = run(&sandbox, &["token", "--organization", "org-acme"], &traced);
    assert_eq!(org.code, 0, "{org:?}");
    assert_access_token_for(
        org.stdout.trim_end(),
        "urn:logto:organization:org-acme",
        idp,
        &keys,
    );
    all_stderr.push_str(&org.stderr);

    // Logto says no to this token (not a member of the organization): 4, the session is kept.
    let refused = run(
        &sandbox,
        &["token", "--organization", "org-nowhere"],
        &quiet,
    );
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stdout.is_empty());
    assert!(
        one_sentence(&refused.stderr).contains("Logto refused"),
        "{refused:?}"
    );
    assert!(
        stored_session(&h.store, idp).is_some(),
        "the sign-in is kept"
    );

    // The grant is revoked elsewhere (another device, an administrator): 4, then 3.
    let current = refresh_token_of(&stored_session(&h.store, idp).expect("signed in"));
    let revoked = crate::support::http()
        .post(format!("{}/token/revocation", idp.info.issuer))
        .form(&[
            ("token", current.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", idp.info.app_id.as_str()),
        ])
        .send()
        .await
        .expect("the revocation endpoint");
    assert!(revoked.status().is_success());
    let ended = run(&sandbox, &["token", "--resource", API], &quiet);
    assert_eq!(ended.code, 4, "{ended:?}");
    assert!(ended.stdout.is_empty());
    assert!(
        one_sentence(&ended.stderr).contains("Your sign-in has ended"),
        "{ended:?}"
    );
    assert!(
        h.store.load().expect("keychain").is_none(),
        "the ended sign-in is removed"
    );
    let after = run(&sandbox, &["token", "--resource", API], &quiet);
    assert_eq!(after.code, 3, "{after:?}");

    // Nothing but the lock file (empty) was written outside the keychain.
    let written: Vec<PathBuf> = ["home", "config", "data", "cache"]
        .iter()
        .flat_map(|dir| files_under(&sandbox.path(dir)))
        .collect();
    for file in &written {
        assert!(
            file.extension().is_some_and(|e| e == "lock")
                && std::fs::metadata(file).map(|m| m.len()).ok() == Some(0),
            "a file was written: {}",
            file.display()
        );
    }
    assert_no_secret_of_the_run_in(&all_stderr, idp).await;
}

#[tokio::test(flavor = "current_thread")]
async fn sign_out_from_a_script_revokes_the_grant_and_empties_the_keychain() {
    let mut h = Harness::new(Idp::start_with(&[("IDP_TEST_HOOKS", "1")]));
    let chrome = Chrome::start().await;
    h.sign_in_alice(&chrome).await;
    chrome.stop().await;
    let idp = &h.idp;
    let rt = refresh_token_of(&stored_session(&h.store, idp).expect("signed in"));
    let sandbox = Sandbox::new();
    let env = script_env(idp, "", "trace");

    let out = run(&sandbox, &["sign-out"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(out.stderr.contains("Signed out."), "{out:?}");
    assert!(
        h.store.load().expect("keychain").is_none(),
        "the keychain is empty"
    );
    let revocations = idp.requests_to("/oidc/token/revocation").await;
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0]["token_sha256"], sha256_hex(&rt).as_str());
    assert_eq!(revocations[0]["status"], 200);
    let refused = idp.refresh_directly(&rt).await;
    assert_eq!(refused.status(), 400, "the grant is gone at Logto");
    let body: Value = refused.json().await.expect("an OAuth error");
    assert_eq!(body["error"], "invalid_grant");
    // As the window's Sign out: Logto's end-session page in the browser.
    let opened = sandbox.opened();
    assert!(
        opened.len() == 1 && opened[0].starts_with(&format!("{}/session/end?", idp.info.issuer)),
        "{opened:?}"
    );
    assert_no_secret_of_the_run_in(&out.stderr, idp).await;

    let again = run(&sandbox, &["sign-out"], &env);
    assert_eq!(again.code, 3, "{again:?}");
    let status = run(&sandbox, &["status", "--json"], &env);
    assert_eq!(
        (status.code, status.json()["state"].clone()),
        (3, json!("signed-out"))
    );
}

/// Issue 11: the window signed in and refreshing, and twenty `token` processes started at once
/// for APIs whose tokens expire in seconds. They share one refresh token that Logto rotates on
/// every use (and would revoke the whole grant for if a used one came back late), so the
/// refreshes must run one at a time, each with the token the previous one returned.
#[tokio::test(flavor = "current_thread")]
async fn twenty_token_processes_and_the_window_refresh_one_at_a_time_and_keep_the_grant() {
    const PROCESSES: usize = 20;
    let resources: Vec<String> = (1..=4)
        .map(|i| format!("https://api{i}.example.test"))
        .collect();
    let idp = Idp::start_with(&[
        ("IDP_TEST_HOOKS", "1"),
        ("IDP_RESOURCES", &resources.join(",")),
        // Fresh for 6 s less a quarter: the window's tokens expire during the run.
        ("IDP_ACCESS_TOKEN_TTL", "6"),
    ]);
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let listed = resources.join(" ");
    let env = script_env(&idp, &listed, "trace");
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;
    app.click("sign-in").await;
    let url = sandbox.wait_opened(1).await;
    let alice = idp.alice().clone();
    chrome
        .sign_in_with_password(&url, &alice.username, &alice.password)
        .await;
    chrome.landed_on("ok").await;
    app.wait_state("signed-in").await;
    chrome.stop().await;
    let keys = jwks(&idp).await;
    assert!(refresh_grants(&idp).await.is_empty(), "no refresh yet");

    // All twenty start together (a barrier), each for one of the APIs.
    let start = Arc::new(Barrier::new(PROCESSES));
    let processes: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let resource = resources[i % resources.len()].clone();
            let mut command = command(&sandbox, &["token", "--resource", &resource], &env);
            let start = start.clone();
            let handle = std::thread::spawn(move || {
                start.wait();
                let out = command.output().expect("running logto-desktop token");
                (Ran::from(out), SystemTime::now())
            });
            (resource, handle)
        })
        .collect();

    // Meanwhile the window asks for tokens for the same APIs, again and again, as its Call an
    // API panel does: each it has not got, or that has expired, is a refresh of its own.
    let mut held: HashMap<String, u64> = HashMap::new();
    let mut window_refreshes = Vec::new();
    while processes.iter().any(|(_, h)| !h.is_finished()) {
        for resource in &resources {
            let answer = app
                .invoke("get_access_token", json!({ "resource": resource }))
                .await;
            assert_eq!(answer["ok"], true, "the window's token: {answer}");
            let expires = answer["value"]["expires_at"].as_u64().expect("expires_at");
            if held.insert(resource.clone(), expires) != Some(expires) {
                window_refreshes.push(SystemTime::now());
            }
        }
    }
    let mut cli_stderr = String::new();
    let mut last_exit = UNIX_EPOCH;
    for (resource, handle) in processes {
        let (ran, ended) = handle.join().expect("the process thread");
        assert_eq!(ran.code, 0, "token --resource {resource}: {ran:?}");
        assert_eq!(ran.stdout.lines().count(), 1, "one line: the token");
        assert_access_token_for(ran.stdout.trim_end(), &resource, &idp, &keys);
        cli_stderr.push_str(&ran.stderr);
        last_exit = last_exit.max(ended);
    }
    assert!(
        window_refreshes.first().is_some_and(|t| *t < last_exit),
        "the window refreshed while the processes ran ({} refreshes)",
        window_refreshes.len()
    );

    // Exactly one refresh per token handed out, each with a refresh token never used before.
    let grants = refresh_grants(&idp).await;
    assert_eq!(
        grants.len(),
        PROCESSES + window_refreshes.len(),
        "one refresh for each process and for each new token of the window"
    );
    assert!(grants.iter().all(|g| g["status"] == 200), "{grants:?}");
    let used: Vec<String> = grants
        .iter()
        .map(|g| {
            g["token_sha256"]
                .as_str()
                .expect("token_sha256")
                .to_string()
        })
        .collect();
    assert_eq!(
        used.iter().collect::<HashSet<_>>().len(),
        used.len(),
        "a refresh token was used twice"
    );
    let stats: Value = crate::support::http()
        .get(format!("{}/test/stats", idp.info.endpoint))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON");
    assert_eq!(
        stats["max_in_flight"], 1,
        "token requests overlapped: {stats}"
    );
    // Each grant used the refresh token the one before it returned: refresh tokens are first
    // seen by the provider when it issues them, so the tokens used are in the order issued, and
    // the keychain holds the one issued last, used by none.
    let secrets = idp.secrets().await;
    let issued: HashMap<String, usize> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| (sha256_hex(s), i))
        .rev()
        .collect();
    let order: Vec<usize> = used
        .iter()
        .map(|sha| *issued.get(sha).expect("a token the provider issued"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let last = refresh_token_of(&stored_session(&store, &idp).expect("still signed in"));
    let last_sha = sha256_hex(&last);
    assert!(
        !used.contains(&last_sha),
        "the keychain holds a used refresh token"
    );
    assert!(issued[&last_sha] > order[order.len() - 1]);

    // The grant is alive: one more process refreshes with exactly that token, and so does the
    // window once one of its tokens is due, and it is still signed in.
    let one_more = run(&sandbox, &["token", "--resource", &resources[0]], &env);
    assert_eq!(one_more.code, 0, "{one_more:?}");
    assert_access_token_for(one_more.stdout.trim_end(), &resources[0], &idp, &keys);
    cli_stderr.push_str(&one_more.stderr);
    let grants = refresh_grants(&idp).await;
    assert_eq!(grants.len(), used.len() + 1);
    assert_eq!(grants[used.len()]["token_sha256"], last_sha.as_str());
    assert_eq!(grants[used.len()]["status"], 200);
    let (due, expires) = held
        .iter()
        .min_by_key(|(_, at)| **at)
        .map(|(r, at)| (r.clone(), *at))
        .expect("the window holds tokens");
    // Its refresh margin is a quarter of the 6 s, rounded down.
    while now() + 1 < expires {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let window = app
        .invoke("get_access_token", json!({ "resource": due }))
        .await;
    assert_eq!(window["ok"], true, "{window}");
    assert_ne!(window["value"]["expires_at"], expires, "a new token");
    let grants = refresh_grants(&idp).await;
    assert_eq!(grants.len(), used.len() + 2, "the window refreshed");
    assert!(grants.iter().all(|g| g["status"] == 200));
    assert_eq!(app.state().await, "signed-in");
    app.quit().await;

    assert_no_secret_of_the_run_in(&cli_stderr, &idp).await;
    assert_no_secret_of_the_run_in(&sandbox.log(), &idp).await;
}

/// Issue 17: `timeout` (SIGTERM), Ctrl-C (SIGINT) or a closed terminal (SIGHUP) while a `token`
/// refresh is at Logto: Logto has rotated the refresh token, so the process keeps the new one
/// before it ends (with 128 + the signal's number), and the sign-in lives on.
#[tokio::test(flavor = "current_thread")]
async fn issue_17_a_stop_signal_during_a_refresh_keeps_what_logto_sent() {
    const HELD: u64 = 2500;
    let resources: Vec<String> = (1..=4)
        .map(|i| format!("https://api{i}.example.test"))
        .collect();
    let listed = resources.join(" ");
    let mut h = Harness::with_config(
        Idp::start_with(&[
            ("IDP_TEST_HOOKS", "1"),
            ("IDP_RESOURCES", &resources.join(",")),
        ]),
        |c| c.resources = resources.clone(),
    );
    let chrome = Chrome::start().await;
    h.sign_in_alice(&chrome).await;
    chrome.stop().await;
    let idp = &h.idp;
    let sandbox = Sandbox::new();
    let env = script_env(idp, &listed, "info");

    let signals = [("TERM", 143), ("INT", 130), ("HUP", 129)];
    for (round, (name, code)) in signals.iter().enumerate() {
        let rt_before = refresh_token_of(&stored_session(&h.store, idp).expect("signed in"));
        let delayed = idp.stats().await["delayed_answers"].as_u64().unwrap_or(0);
        idp.delay_next_token_answer(HELD).await;
        // A resource whose token the keychain does not hold yet, so `token` must refresh.
        let child = command(&sandbox, &["token", "--resource", &resources[round]], &env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("token");
        // The positive signal: the provider has made its answer (the refresh token is rotated at
        // Logto) and is holding it back.
        assert!(
            idp.holds_a_made_answer(delayed).await,
            "SIG{name}: the refresh never reached the provider"
        );
        let sent = std::time::Instant::now();
        let killed = Command::new("kill")
            .args([format!("-{name}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let out: Ran = child.wait_with_output().expect("token ends").into();
        assert_eq!(out.code, *code, "SIG{name}: {out:?}");
        assert!(
            sent.elapsed() >= std::time::Duration::from_millis(HELD / 2),
            "SIG{name}: the process ended before Logto's answer arrived"
        );
        assert!(
            out.stdout.is_empty(),
            "SIG{name}: no token printed once stopped"
        );
        let rt_after = refresh_token_of(&stored_session(&h.store, idp).expect("still signed in"));
        assert_ne!(
            sha256_hex(&rt_after),
            sha256_hex(&rt_before),
            "SIG{name}: the rotated refresh token is in the keychain"
        );
    }
    // The grant lives: the next round's refresh used what the last one kept, and so does this
    // one (a lost rotated token would have come back used, and Logto would have revoked it all).
    let rt = refresh_token_of(&stored_session(&h.store, idp).expect("signed in"));
    assert_eq!(
        idp.refresh_directly(&rt).await.status(),
        200,
        "the grant is alive"
    );
}

/// Milliseconds since the Unix epoch, the clock the page's `Date.now()` reads.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Installs a watch in the page: the time its state first becomes `state` from now on.
async fn stamp_when(app: &App, state: &str) {
    app.eval(&format!(
        "window.__at = null;
         new MutationObserver(() => {{
           if (window.__at === null && document.body.dataset.state === {state:?}) window.__at = Date.now();
         }}).observe(document.body, {{ attributes: true }});
         return true;"
    ))
    .await;
}

/// Waits for the page to show `state` (watched with [`stamp_when`]), then returns how many
/// milliseconds after `since` (Unix milliseconds) it first did, on the page's own clock.
async fn ms_until_shown(app: &App, state: &str, since: i64) -> i64 {
    app.wait_state(state).await;
    let at = app
        .eval("return window.__at")
        .await
        .as_i64()
        .expect("a time");
    at - since
}

/// Issue 17: one session, seen the same by every process. With the window open and signed in,
/// a script's `logto-desktop sign-out` turns the window to the signed-out screen within a second
/// (the promise, measured on the page's own clock against the script's end), saying it happened
/// elsewhere; a sign-in made by another program shows its user, also within a second. The
/// window asks Logto nothing for either.
#[tokio::test(flavor = "current_thread")]
async fn issue_17_the_window_shows_a_scripts_sign_out_and_another_programs_sign_in_within_a_second()
{
    const WITHIN_MS: i64 = 1000;
    let mut h = Harness::new(Idp::start_with(&[("IDP_TEST_HOOKS", "1")]));
    let sandbox = Sandbox::new();
    // Owned, so that the harness can sign in while the window's environment is in use.
    let owned: Vec<(String, String)> = script_env(&h.idp, "", "logto_native=debug,info")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;

    // Another program signs in (the core, as the example or a second app would).
    let chrome = Chrome::start().await;
    stamp_when(&app, "signed-in").await;
    h.sign_in_alice(&chrome).await;
    let stored_at = now_ms();
    chrome.stop().await;
    let late = ms_until_shown(&app, "signed-in", stored_at).await;
    assert!(
        late <= WITHIN_MS,
        "the window showed the sign-in {late} ms after it was stored"
    );
    let shown = app.invoke("get_state", json!({})).await;
    assert_eq!(
        shown["value"]["user"]["email"],
        h.idp.alice().email.as_str(),
        "{shown}"
    );

    // A script signs out.
    let before = h.idp.requests().await.len();
    stamp_when(&app, "signed-out").await;
    let out = run(&sandbox, &["sign-out"], &env);
    let ended_at = now_ms();
    assert_eq!(out.code, 0, "{out:?}");
    let late = ms_until_shown(&app, "signed-out", ended_at).await;
    assert!(
        late <= WITHIN_MS,
        "the window showed the sign-out {late} ms after the script ended"
    );
    let shown = app.invoke("get_state", json!({})).await;
    assert_eq!(
        shown["value"]["notice"]["code"], "session.signed_out_elsewhere",
        "{shown}"
    );
    // Logto heard the script's revocation, once, and no token request from the window.
    let since: Vec<Value> = h.idp.requests().await[before..].to_vec();
    let to = |path: &str| since.iter().filter(|r| r["path"] == path).count();
    assert_eq!(to("/oidc/token/revocation"), 1, "{since:?}");
    assert_eq!(to("/oidc/token"), 0, "{since:?}");
    app.quit().await;
}

/// The window process of `sandbox` (the one whose environment names the sandbox's folders).
fn window_pid(sandbox: &Sandbox) -> Option<u32> {
    let marker = sandbox.path("config");
    let marker = marker.to_string_lossy();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(entry.path().join("exe")).ok()?;
            if !exe.to_string_lossy().ends_with("logto-desktop-window") {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            String::from_utf8_lossy(&environ)
                .contains(marker.as_ref())
                .then_some(pid)
        })
}

/// What the window logged about quitting.
fn quitting_lines(sandbox: &Sandbox) -> String {
    std::fs::read_to_string(sandbox.path("app.log"))
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("quit") || line.contains("kept") || line.contains("SIG"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Issue 17: the window asked to stop (SIGTERM: a logout, `systemctl stop`) while its refresh is
/// at Logto keeps the rotated refresh token before it exits, so the sign-in lives on.
#[tokio::test(flavor = "current_thread")]
async fn issue_17_the_window_stopped_during_a_refresh_keeps_what_logto_sent() {
    const HELD: u64 = 2500;
    let idp = Idp::start_with(&[("IDP_TEST_HOOKS", "1")]);
    let store = empty_keychain(&idp);
    let sandbox = Sandbox::new();
    let chrome = Chrome::start().await;
    let env = script_env(&idp, API, "info");
    let app = App::launch(&sandbox, Lang::En, &env).await;
    app.wait_state("signed-out").await;
    crate::app_window::sign_in_as(&app, &sandbox, &chrome, idp.alice()).await;
    chrome.stop().await;
    let rt_before = refresh_token_of(&stored_session(&store, &idp).expect("signed in"));
    let pid = window_pid(&sandbox).unwrap_or_else(|| {
        let exes: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path().join("exe")).ok())
            .map(|p| p.display().to_string())
            .filter(|p| p.contains("logto"))
            .collect();
        panic!("no window process among {exes:?}")
    });

    // The page asks for the API's token (never kept in the keychain: a refresh), and Logto holds
    // its made answer back.
    let delayed = idp.stats().await["delayed_answers"].as_u64().unwrap_or(0);
    idp.delay_next_token_answer(HELD).await;
    app.eval(&format!(
        "window.__TAURI__.core.invoke('get_access_token', {{ resource: {API:?} }}); return true;"
    ))
    .await;
    assert!(
        idp.holds_a_made_answer(delayed).await,
        "the window's refresh never reached the provider"
    );
    let sent = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Gone, or a zombie its parent (the WebDriver) has not reaped yet: no thread of it left (a
    // main thread that has ended makes the process look like a zombie while others still run).
    let running = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks.flatten().any(|task| {
                    std::fs::read_to_string(task.path().join("stat"))
                        .ok()
                        .and_then(|stat| {
                            stat.rsplit_once(") ")
                                .map(|(_, rest)| !rest.starts_with('Z'))
                        })
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    };
    while running() {
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(30),
            "the window did not quit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        sent.elapsed() >= std::time::Duration::from_millis(HELD / 2),
        "the window ended before Logto's answer arrived; it logged:\n{}",
        quitting_lines(&sandbox)
    );
    let rt_after = refresh_token_of(&stored_session(&store, &idp).expect("still signed in"));
    assert_ne!(
        sha256_hex(&rt_after),
        sha256_hex(&rt_before),
        "the rotated refresh token is in the keychain"
    );
    assert_eq!(
        idp.refresh_directly(&rt_after).await.status(),
        200,
        "the grant is alive"
    );
    app.quit().await;
}
