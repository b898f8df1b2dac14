//! `make bench`, the sign-in core's part (issue 9): callback to signed in against the floor (the
//! same token and userinfo requests made raw, plus a bare keychain write of as many bytes), click
//! to browser, and one refresh against the raw refresh request. Everything runs against the
//! Logto-faithful provider on loopback, and each measure alternates with its baseline in one
//! run, because the machines are shared and noisy: the ratios are the result, the absolute
//! times are printed with the machine they came from. `--smoke` runs each once (for
//! `make test`); `--json PATH` writes the results and `--svg PATH` a chart of the ratios, with
//! those of the other benchmarks' `--json` files named by `--with PATH` (once for each).

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logto_desktop::auth::{
    AuthService, Config, KeyringStore, MemoryStore, SignInMethod, TokenStore,
};
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge};
use serde_json::{json, Value};
use url::Url;

mod common;
// The provider launcher calls `crate::support::http()`.
use common::support;

use common::idp::Idp;
use common::{arg, chart, machine, node, BenchBrowser, Comparison, Goal, Samples, Scripted};

/// Logto's JavaScript SDK (`tests/idp/support/sdk-baseline.js`): given a code, it exchanges it,
/// checks the ID token and reads userinfo, and says how long that took.
struct Sdk {
    io: (ChildStdin, BufReader<ChildStdout>),
    _child: Child,
}

impl Sdk {
    fn start(idp: &Idp) -> Sdk {
        let (child, stdin, stdout) = node(&[
            "support/sdk-baseline.js",
            &idp.info.issuer,
            &idp.info.app_id,
        ]);
        Sdk {
            io: (stdin, stdout),
            _child: child,
        }
    }

    /// One sign-in's exchange, checks and userinfo through the SDK; its own timing.
    fn once(&mut self, idp: &Idp, scripted: &Scripted) -> Duration {
        let (url, verifier) = raw_authorization(idp, &[]);
        let code = code_of(&scripted.callback_for(&url));
        writeln!(self.io.0, "{code} {verifier} {REDIRECT}").expect("to the SDK");
        let mut line = String::new();
        self.io.1.read_line(&mut line).expect("from the SDK");
        let ms: f64 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the SDK said {line:?}"));
        Duration::from_secs_f64(ms / 1000.0)
    }
}

const REDIRECT: &str = "http://127.0.0.1:53123/callback";
const SCOPES: &str = "openid profile offline_access email identities";

/// An authorization request made by hand, as a baseline client would: PKCE S256, state, nonce.
fn raw_authorization(idp: &Idp, resources: &[String]) -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut url = Url::parse(&format!("{}/auth", idp.info.issuer)).expect("auth URL");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &idp.info.app_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", SCOPES)
            .append_pair("state", CsrfToken::new_random().secret())
            .append_pair("nonce", Nonce::new_random().secret())
            .append_pair("prompt", "consent")
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        for r in resources {
            q.append_pair("resource", r);
        }
    }
    (url.to_string(), verifier.secret().clone())
}

fn code_of(callback: &Url) -> String {
    callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code in the callback")
}

async fn post_form(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Value {
    let response = http
        .post(url)
        .form(form)
        .send()
        .await
        .expect("token endpoint");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("JSON")
}

/// The code exchange, raw: a form POST, the JSON back, no checks.
async fn exchange_raw(idp: &Idp, http: &reqwest::Client, code: &str, verifier: &str) -> Value {
    post_form(
        http,
        &format!("{}/token", idp.info.issuer),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", &idp.info.app_id),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The floor of callback to signed in: the token and userinfo requests raw, on a keep-alive
/// client, with no checks, then a bare keychain write of the same size as the app's entry.
/// Returns the time of the requests alone, and of the whole.
async fn floor_once(
    idp: &Idp,
    http: &reqwest::Client,
    scripted: &Scripted,
    keychain: &keyring::Entry,
) -> (Duration, Duration) {
    let (url, verifier) = raw_authorization(idp, &[]);
    let code = code_of(&scripted.callback_for(&url));
    let started = Instant::now();
    let tokens = exchange_raw(idp, http, &code, &verifier).await;
    let at = tokens["access_token"].as_str().unwrap_or_default();
    let user: Value = http
        .get(format!("{}/me", idp.info.issuer))
        .bearer_auth(at)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("userinfo JSON");
    let requests = started.elapsed();
    let entry = json!({"v": 1, "rt": tokens["refresh_token"], "idt": tokens["id_token"], "at": at, "user": user});
    let bytes = serde_json::to_vec(&entry).expect("bytes");
    tokio::task::block_in_place(|| keychain.set_secret(&bytes)).expect("the keychain");
    (requests, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let json_path = arg(&args, "--json");
    let svg_path = arg(&args, "--svg");
    // The other benchmarks' results (the window's, the command line's), drawn on the same
    // chart: `--with PATH`, once for each.
    let others: Vec<Value> = args
        .windows(2)
        .filter(|pair| pair[0] == "--with")
        .filter_map(|pair| std::fs::read_to_string(&pair[1]).ok())
        .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
        .filter_map(|v| v["comparisons"].as_array().cloned())
        .flatten()
        .collect();
    let rounds = if smoke { 1 } else { 30 };

    let resources: Vec<String> = (0..rounds)
        .map(|i| format!("https://r{i}.bench.test"))
        .collect();
    let idp = Idp::start_with(&[("IDP_RESOURCES", &resources.join(","))]);
    let scripted = Arc::new(Scripted::start());
    let http = reqwest::Client::new();

    // 1. Callback to signed in. With an in-memory store against the same requests made raw and
    // against Logto's SDK; with the real keychain against the raw requests plus a bare write.
    let mut config = Config::new(&idp.info.endpoint, &idp.info.app_id).expect("config");
    config.end_browser_session = false;
    let in_memory = BenchBrowser::new(&scripted);
    let fast = AuthService::new(
        config.clone(),
        Arc::new(MemoryStore::default()),
        in_memory.clone(),
    )
    .expect("service");
    fast.prefetch().await.expect("discovery");
    let with_keychain = BenchBrowser::new(&scripted);
    let store = Arc::new(KeyringStore::new(
        KEYCHAIN_SERVICE,
        &config.issuer(),
        &config.app_id,
    ));
    let service =
        AuthService::new(config.clone(), store.clone(), with_keychain.clone()).expect("service");
    service.prefetch().await.expect("discovery");
    let keychain = keyring::Entry::new("logto-desktop-bench", "floor").expect("keychain entry");
    let mut sdk = Sdk::start(&idp);
    sdk.once(&idp, &scripted); // fetches the SDK's key set, untimed

    let mut core_memory = Samples::new("the core (exchange, checks, userinfo)");
    let mut raw = Samples::new("the same requests, raw, no checks");
    let mut by_sdk = Samples::new("Logto's JS SDK (exchange, checks, userinfo)");
    let mut core_keychain = Samples::new("the core, with the keychain write");
    let mut floor = Samples::new("raw requests + a bare keychain write");
    for _ in 0..rounds {
        for (service, browser, samples) in [
            (&fast, &in_memory, &mut core_memory),
            (&service, &with_keychain, &mut core_keychain),
        ] {
            let user = service.sign_in(SignInMethod::Logto, |_| {}).await;
            let done = Instant::now();
            user.expect("a sign-in");
            let sent = browser
                .callback_sent_at
                .lock()
                .expect("lock")
                .take()
                .expect("sent");
            samples.push(done - sent);
            service.sign_out().await.expect("sign-out");
        }
        let (requests, whole) = floor_once(&idp, &http, &scripted, &keychain).await;
        raw.push(requests);
        floor.push(whole);
        by_sdk.push(sdk.once(&idp, &scripted));
    }
    let _ = keychain.delete_credential();
    let _ = store.delete();
    let mut core_memory_again = Samples::new(core_memory.name);
    core_memory_again.values = core_memory.values.clone();
    let sign_in = Comparison {
        title: "1. Callback to signed in, checks included",
        measure: core_memory,
        baseline: raw,
        goal: Goal::Ratio(1.1),
    };
    let sign_in_sdk = Comparison {
        title: "1b. The same, against Logto's SDK",
        measure: core_memory_again,
        baseline: by_sdk,
        goal: Goal::None,
    };
    let sign_in_keychain = Comparison {
        title: "1c. With the keychain write",
        measure: core_keychain,
        baseline: floor,
        goal: Goal::Ratio(1.0),
    };

    // 2. Click to browser: discovery fetched ahead (the signed-out screen does it) against a
    // cold start that must fetch it first.
    let mut warm = Samples::new("discovery fetched ahead");
    let mut cold = Samples::new("cold (discovery in front of the browser)");
    for _ in 0..rounds {
        for (ahead, samples) in [(true, &mut warm), (false, &mut cold)] {
            let browser = BenchBrowser::new(&scripted);
            *browser.deliver.lock().expect("lock") = false;
            let service = Arc::new(
                AuthService::new(
                    config.clone(),
                    Arc::new(MemoryStore::default()),
                    browser.clone(),
                )
                .expect("service"),
            );
            if ahead {
                service.prefetch().await.expect("discovery");
            }
            let task = {
                let service = service.clone();
                tokio::spawn(async move { service.sign_in(SignInMethod::Logto, |_| {}).await })
            };
            let clicked = Instant::now();
            let opened = loop {
                if let Some(at) = *browser.opened_at.lock().expect("lock") {
                    break at;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            samples.push(opened.saturating_duration_since(clicked));
            service.cancel_sign_in();
            let _ = task.await;
        }
    }
    let click = Comparison {
        title: "2. Click to browser",
        measure: warm,
        baseline: cold,
        goal: Goal::Ratio(0.5),
    };

    // 6. One refresh through get_access_token against the raw refresh request.
    let browser = BenchBrowser::new(&scripted);
    let mut config6 = config.clone();
    config6.resources = resources.clone();
    let service =
        AuthService::new(config6, Arc::new(MemoryStore::default()), browser).expect("service");
    service.prefetch().await.expect("discovery");
    service
        .sign_in(SignInMethod::Logto, |_| {})
        .await
        .expect("signed in");
    let (url, verifier) = raw_authorization(&idp, &resources);
    let code = code_of(&scripted.callback_for(&url));
    let token_url = format!("{}/token", idp.info.issuer);
    let tokens = exchange_raw(&idp, &http, &code, &verifier).await;
    let mut raw_rt = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut core = Samples::new("get_access_token (refresh, checks, store)");
    let mut raw = Samples::new("raw refresh request");
    for resource in &resources {
        let started = Instant::now();
        service
            .get_access_token(Some(resource), None)
            .await
            .expect("a refreshed token");
        core.push(started.elapsed());
        let started = Instant::now();
        let answer = post_form(
            &http,
            &token_url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &raw_rt),
                ("client_id", &idp.info.app_id),
                ("resource", resource),
            ],
        )
        .await;
        raw.push(started.elapsed());
        raw_rt = answer["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let refresh = Comparison {
        title: "6. One refresh",
        measure: core,
        baseline: raw,
        goal: Goal::Ratio(1.1),
    };

    // Where the extra time of 1 and 6 goes: the ID token's ES384 signature check alone (the
    // raw baselines skip it), on a token the provider issued, through openidconnect's key.
    let (es384, es384_ring) = es384_check(&idp, &http, &scripted, rounds).await;

    let machine = machine();
    println!("\nlogto-desktop core benchmarks, {rounds} rounds each, on {machine}");
    for c in [&sign_in, &sign_in_sdk, &sign_in_keychain, &click, &refresh] {
        c.print();
    }
    let over = |c: &Comparison| c.measure.median() - c.baseline.median();
    println!(
        "\nWhere the time goes: one ES384 signature check takes {:.2} ms (median; p10 {:.2}, p90 {:.2}), \
         of the {:+.2} ms of 1 and the {:+.2} ms of 6",
        es384.median(),
        es384.quantile(0.1),
        es384.quantile(0.9),
        over(&sign_in),
        over(&refresh)
    );
    println!(
        "  the same check with ring (the TLS stack's crypto, already in the binary): {:.2} ms",
        es384_ring.median()
    );
    let mut comparisons: Vec<Value> = [&sign_in, &sign_in_sdk, &sign_in_keychain, &click, &refresh]
        .iter()
        .map(|c| c.json())
        .collect();
    // In the issues' order, by the number each title starts with: 1, 1b, 1c, 2, the window's 3,
    // 4, 5, then 6, then the command line's 9 and 10 (a stable sort keeps 1, 1b, 1c as they are).
    comparisons.extend(others);
    comparisons.sort_by_key(|c| {
        let title = c["title"].as_str().unwrap_or_default();
        let digits: String = title.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().unwrap_or(u32::MAX)
    });
    if let Some(path) = json_path {
        let results = json!({
            "machine": machine,
            "rounds": rounds,
            "comparisons": comparisons,
            "es384_check_ms": es384.median(),
            "es384_check_ring_ms": es384_ring.median(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&results).expect("JSON"))
            .expect("writing the results");
    }
    if let Some(path) = svg_path {
        let chart = chart(&comparisons, &machine);
        std::fs::write(&path, chart).expect("writing the chart");
    }
    if smoke {
        println!("bench smoke: 5 passed, 0 failed");
    }
}

/// One ES384 signature check, `rounds` times, on an ID token from a raw sign-in: through
/// openidconnect (RustCrypto's p384, as the core does it), and through ring.
async fn es384_check(
    idp: &Idp,
    http: &reqwest::Client,
    scripted: &Scripted,
    rounds: usize,
) -> (Samples, Samples) {
    use base64::Engine;
    use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
    use openidconnect::JsonWebKey;

    let (url, verifier) = raw_authorization(idp, &[]);
    let code = code_of(&scripted.callback_for(&url));
    let tokens = exchange_raw(idp, http, &code, &verifier).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let (signed, signature) = id_token.rsplit_once('.').expect("a JWS");
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url");
    let jwks: Value = http
        .get(format!("{}/jwks", idp.info.issuer))
        .send()
        .await
        .expect("the key set")
        .json()
        .await
        .expect("JWKS");
    let keys: CoreJsonWebKeySet = serde_json::from_value(jwks.clone()).expect("a key set");
    let key = keys
        .keys()
        .iter()
        .find(|k| {
            k.verify_signature(
                &CoreJwsSigningAlgorithm::EcdsaP384Sha384,
                signed.as_bytes(),
                &signature,
            )
            .is_ok()
        })
        .expect("a key that verifies the ID token");
    let mut samples = Samples::new("one ES384 signature check");
    for _ in 0..rounds {
        let started = Instant::now();
        key.verify_signature(
            &CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            signed.as_bytes(),
            &signature,
        )
        .expect("the signature verifies");
        samples.push(started.elapsed());
    }
    // ring takes the uncompressed point: 0x04, x, y.
    let point = |k: &Value| -> Option<Vec<u8>> {
        let coordinate = |name: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(k[name].as_str()?)
                .ok()
        };
        let mut point = vec![4u8];
        point.extend(coordinate("x")?);
        point.extend(coordinate("y")?);
        Some(point)
    };
    let verify = |public: &[u8]| {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, public)
            .verify(signed.as_bytes(), &signature)
    };
    let public = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(point)
        .find(|p| verify(p).is_ok())
        .expect("a P-384 key ring verifies the ID token with");
    let mut with_ring = Samples::new("one ES384 signature check, ring");
    for _ in 0..rounds {
        let started = Instant::now();
        verify(&public).expect("the signature verifies");
        with_ring.push(started.elapsed());
    }
    (samples, with_ring)
}
