//! `make bench`, the sign-in core's part (issue 9): callback to signed in against the floor (the
//! same token and userinfo requests made raw, plus a bare keychain write of as many bytes), click
//! to browser, and one refresh against the raw refresh request. Everything runs against the
//! Logto-faithful provider on loopback, and each measure alternates with its baseline in one
//! run, because the machines are shared and noisy: the ratios are the result, the absolute
//! times are printed with the machine they came from. `--smoke` runs each once (for
//! `make test`); `--json PATH` writes the results and `--svg PATH` a chart of the ratios.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logto_desktop::auth::{
    AuthService, Browser, Config, KeyringStore, MemoryStore, SignInMethod, TokenStore,
};
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge};
use serde_json::{json, Value};
use url::Url;

/// The tests' provider launcher, shared as it is (the bench uses only part of it).
#[allow(dead_code)]
#[path = "../tests/support/idp.rs"]
mod idp;

mod support {
    //! What the provider launcher expects of its crate.
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client")
    }
}

use idp::Idp;

/// Starts a script of `tests/idp` that answers each line it reads with one line.
fn node(args: &[&str]) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp");
    let mut child = Command::new("node")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("node tests/idp/{}: {e}", args.join(" ")));
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdin, stdout)
}

/// The provider's own sign-in page, driven by `tests/idp/support/browser-cli.js`: it returns the
/// callback URL the provider redirects to, untimed; the caller requests it, timed.
struct Scripted {
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    _child: Child,
}

impl Scripted {
    fn start() -> Scripted {
        let (child, stdin, stdout) = node(&["support/browser-cli.js"]);
        Scripted {
            io: Mutex::new((stdin, stdout)),
            _child: child,
        }
    }

    /// Signs in at `url` and returns where the provider sends the browser back.
    fn callback_for(&self, url: &str) -> Url {
        let mut io = self.io.lock().expect("browser lock");
        writeln!(io.0, "{url}").expect("to the browser");
        let mut line = String::new();
        io.1.read_line(&mut line).expect("from the browser");
        Url::parse(line.trim()).unwrap_or_else(|_| panic!("the browser said {line:?}"))
    }
}

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

/// The app's browser seam: records when it was asked to open, and (when `deliver`) comes back
/// to the loopback with the code, recording when the callback request left.
struct BenchBrowser {
    scripted: Arc<Scripted>,
    deliver: Mutex<bool>,
    opened_at: Arc<Mutex<Option<Instant>>>,
    callback_sent_at: Arc<Mutex<Option<Instant>>>,
}

impl Browser for BenchBrowser {
    fn open(&self, url: &Url) -> Result<(), String> {
        *self.opened_at.lock().expect("lock") = Some(Instant::now());
        if !url.query_pairs().any(|(k, _)| k == "redirect_uri")
            || !*self.deliver.lock().expect("lock")
        {
            return Ok(());
        }
        let callback = self.scripted.callback_for(url.as_str());
        let sent = self.callback_sent_at.clone();
        std::thread::spawn(move || {
            let host = format!("127.0.0.1:{}", callback.port().unwrap_or(80));
            let target = callback[url::Position::BeforePath..].to_string();
            let mut stream = std::net::TcpStream::connect(&host).expect("the loopback");
            *sent.lock().expect("lock") = Some(Instant::now());
            write!(
                stream,
                "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .expect("the callback");
            let mut page = Vec::new();
            let _ = stream.read_to_end(&mut page);
        });
        Ok(())
    }
}

struct Samples {
    name: &'static str,
    values: Vec<Duration>,
}

impl Samples {
    fn new(name: &'static str) -> Self {
        Samples {
            name,
            values: Vec::new(),
        }
    }
    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.values.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
    fn median(&self) -> Duration {
        self.quantile(0.5)
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "n": self.values.len(),
            "median_ms": ms(self.median()),
            "p10_ms": ms(self.quantile(0.1)),
            "p90_ms": ms(self.quantile(0.9)),
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// One comparison: a measure, its baseline, and the goal for the ratio of their medians.
struct Comparison {
    title: &'static str,
    measure: Samples,
    baseline: Samples,
    /// The most the ratio may be; `None` for a comparison that gives scale only.
    goal: Option<f64>,
}

impl Comparison {
    fn ratio(&self) -> f64 {
        let base = self.baseline.median().as_secs_f64();
        if base == 0.0 {
            return f64::NAN;
        }
        self.measure.median().as_secs_f64() / base
    }
    fn print(&self) {
        println!("\n{}", self.title);
        println!(
            "  {:<44} {:>9} {:>9} {:>9} {:>4}",
            "", "median", "p10", "p90", "n"
        );
        for s in [&self.measure, &self.baseline] {
            println!(
                "  {:<44} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>4}",
                s.name,
                ms(s.median()),
                ms(s.quantile(0.1)),
                ms(s.quantile(0.9)),
                s.values.len()
            );
        }
        let ratio = self.ratio();
        match self.goal {
            Some(goal) => {
                let verdict = if ratio <= goal { "met" } else { "MISSED" };
                println!("  ratio {ratio:.2}x, goal at most {goal:.2}x: {verdict}");
            }
            None => println!("  ratio {ratio:.2}x (for scale)"),
        }
    }
    fn json(&self) -> Value {
        json!({
            "title": self.title,
            "measure": self.measure.json(),
            "baseline": self.baseline.json(),
            "ratio": (self.ratio() * 100.0).round() / 100.0,
            "goal": self.goal,
            "met": self.goal.map(|g| self.ratio() <= g),
        })
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

fn bench_browser(scripted: &Arc<Scripted>) -> Arc<BenchBrowser> {
    Arc::new(BenchBrowser {
        scripted: scripted.clone(),
        deliver: Mutex::new(true),
        opened_at: Arc::new(Mutex::new(None)),
        callback_sent_at: Arc::new(Mutex::new(None)),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned());
    let svg_path = args
        .iter()
        .position(|a| a == "--svg")
        .and_then(|i| args.get(i + 1).cloned());
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
    let in_memory = bench_browser(&scripted);
    let fast = AuthService::new(
        config.clone(),
        Arc::new(MemoryStore::default()),
        in_memory.clone(),
    )
    .expect("service");
    fast.prefetch().await.expect("discovery");
    let with_keychain = bench_browser(&scripted);
    let store = Arc::new(KeyringStore::new(&config.issuer(), &config.app_id));
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
            samples.values.push(done - sent);
            service.sign_out().await.expect("sign-out");
        }
        let (requests, whole) = floor_once(&idp, &http, &scripted, &keychain).await;
        raw.values.push(requests);
        floor.values.push(whole);
        by_sdk.values.push(sdk.once(&idp, &scripted));
    }
    let _ = keychain.delete_credential();
    let _ = store.delete();
    let mut core_memory_again = Samples::new(core_memory.name);
    core_memory_again.values = core_memory.values.clone();
    let sign_in = Comparison {
        title: "1. Callback to signed in, checks included",
        measure: core_memory,
        baseline: raw,
        goal: Some(1.1),
    };
    let sign_in_sdk = Comparison {
        title: "1b. The same, against Logto's SDK",
        measure: core_memory_again,
        baseline: by_sdk,
        goal: None,
    };
    let sign_in_keychain = Comparison {
        title: "1c. With the keychain write",
        measure: core_keychain,
        baseline: floor,
        goal: Some(1.0),
    };

    // 2. Click to browser: discovery fetched ahead (the signed-out screen does it) against a
    // cold start that must fetch it first.
    let mut warm = Samples::new("discovery fetched ahead");
    let mut cold = Samples::new("cold (discovery in front of the browser)");
    for _ in 0..rounds {
        for (ahead, samples) in [(true, &mut warm), (false, &mut cold)] {
            let browser = bench_browser(&scripted);
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
            samples
                .values
                .push(opened.saturating_duration_since(clicked));
            service.cancel_sign_in();
            let _ = task.await;
        }
    }
    let click = Comparison {
        title: "2. Click to browser",
        measure: warm,
        baseline: cold,
        goal: Some(0.5),
    };

    // 6. One refresh through get_access_token against the raw refresh request.
    let browser = bench_browser(&scripted);
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
        core.values.push(started.elapsed());
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
        raw.values.push(started.elapsed());
        raw_rt = answer["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let refresh = Comparison {
        title: "6. One refresh",
        measure: core,
        baseline: raw,
        goal: Some(1.1),
    };

    let machine = machine();
    println!("\nlogto-desktop core benchmarks, {rounds} rounds each, on {machine}");
    for c in [&sign_in, &sign_in_sdk, &sign_in_keychain, &click, &refresh] {
        c.print();
    }
    if let Some(path) = json_path {
        let results = json!({
            "machine": machine,
            "rounds": rounds,
            "comparisons": [
                sign_in.json(),
                sign_in_sdk.json(),
                sign_in_keychain.json(),
                click.json(),
                refresh.json()
            ],
        });
        std::fs::write(&path, serde_json::to_string_pretty(&results).expect("JSON"))
            .expect("writing the results");
    }
    if let Some(path) = svg_path {
        let chart = chart(
            &[&sign_in, &sign_in_sdk, &sign_in_keychain, &click, &refresh],
            &machine,
        );
        std::fs::write(&path, chart).expect("writing the chart");
    }
    if smoke {
        println!("bench smoke: 5 passed, 0 failed");
    }
}

/// A bar per comparison: its ratio, with its goal as a mark, on one scale.
fn chart(comparisons: &[&Comparison], machine: &str) -> String {
    let (width, left, bar, gap) = (720.0, 300.0, 22.0, 18.0);
    let top = 48.0;
    let scale_max = comparisons
        .iter()
        .map(|c| c.ratio().max(c.goal.unwrap_or(0.0)))
        .fold(1.5_f64, f64::max)
        .ceil();
    let x = |ratio: f64| left + (width - left - 40.0) * (ratio / scale_max);
    let height = top + comparisons.len() as f64 * (bar + gap) + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Ratio to the baseline measured in the same run (lower is better; | is the goal)</text>\n\
         <text x=\"12\" y=\"38\" fill=\"#555\">{}</text>\n",
        html_escape(machine)
    );
    for (i, c) in comparisons.iter().enumerate() {
        let y = top + i as f64 * (bar + gap);
        let ratio = c.ratio();
        let color = match c.goal {
            Some(goal) if ratio <= goal => "#2e7d32",
            Some(_) => "#c62828",
            None => "#757575",
        };
        let mark = c.goal.map_or(0.0, |g| g);
        svg.push_str(&format!(
            "<text x=\"12\" y=\"{ty}\">{label}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{color}\"/>\n",
            ty = y + bar * 0.7,
            label = html_escape(c.title),
            w = (x(ratio) - left).max(1.0),
        ));
        if c.goal.is_some() {
            svg.push_str(&format!(
                "<line x1=\"{gx:.1}\" x2=\"{gx:.1}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#000\" stroke-width=\"2\"/>\n",
                gx = x(mark),
                y0 = y - 3.0,
                y1 = y + bar + 3.0,
            ));
        }
        let said = match c.goal {
            Some(goal) => format!("{ratio:.2}x (goal {goal:.2}x)"),
            None => format!("{ratio:.2}x (for scale)"),
        };
        svg.push_str(&format!(
            "<text x=\"{tx:.1}\" y=\"{ty}\">{said}</text>\n",
            tx = x(ratio.max(mark)) + 6.0,
            ty = y + bar * 0.7,
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}
