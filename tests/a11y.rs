//! An accessibility audit of the window's page: axe-core (locked in tests/idp's package.json) in
//! Debian's headless Chromium, on every state the shell sends, in English and Japanese, light and
//! dark, against WCAG 2.0, 2.1 and 2.2 A and AA (as far as axe checks them) and axe's best
//! practices.
//!
//! The page is `ui/` as shipped, served from loopback under the app's own CSP (tauri.conf.json),
//! with a stand-in for `window.__TAURI__` whose answers are the shell's own types serialised with
//! serde (`Snapshot`, `CommandError`, `TokenInfo`), so they are what the window receives and
//! cannot drift from it. States reached through the person's actions (a failed set-up check, an
//! access token's details or a refused one) are reached by doing them. One Chromium serves every
//! page load; the colour scheme is switched with CDP's media emulation, and each load checks that
//! the page really is in the scheme it is audited for.
//!
//! Screenshots of each audited screen go to `target/tmp/a11y/<case>-<lang>-<scheme>.png`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use logto_desktop::auth::error::ProviderRefusal;
use logto_desktop::auth::TokenInfo;
use logto_desktop::auth::{AuthError, Language, SignInMethod};
use logto_desktop::shell::commands::CommandError;
use logto_desktop::shell::view::{
    AuthView, Notice, Snapshot, UserView, SIGNED_OUT_ELSEWHERE, SIGN_OUT_INCOMPLETE,
    SIGN_OUT_RETRY_LATER,
};
use serde_json::{json, Value};

use crate::support::bounded;
use crate::support::chrome::Chrome;

/// What the person does on a screen before it is audited.
enum Step {
    Type(&'static str, &'static str),
    Click(&'static str),
}

/// One screen of the page: the view the shell sends, the answers of the commands it may call,
/// and what is done there before the audit.
struct Case {
    name: &'static str,
    view: AuthView,
    /// Per command, what the shell answers: `Ok` resolves the page's `invoke`, `Err` rejects it.
    answers: Vec<(&'static str, Result<Value, Value>)>,
    steps: Vec<Step>,
    /// After the steps: a command they must have called, and an element that must then show.
    expect: Option<(&'static str, &'static str)>,
}

impl Case {
    fn shown(name: &'static str, view: AuthView) -> Case {
        Case {
            name,
            view,
            answers: Vec::new(),
            steps: Vec::new(),
            expect: None,
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

fn value(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("the shell's types serialise")
}

fn user(picture: Option<String>) -> UserView {
    UserView {
        name: Some("Alice Example".into()),
        username: Some("alice".into()),
        email: Some("alice@example.com".into()),
        picture,
        identities: vec!["amazon".into()],
    }
}

/// A picture as the shell passes it: a `data:` image.
fn picture() -> String {
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8" fill="#3b7"/><circle cx="4" cy="3" r="2" fill="#fff"/></svg>"##;
    format!("data:image/svg+xml,{}", svg.replace('#', "%23"))
}

/// Every state of `AuthView`, each variant with and without its optional parts, and the states
/// the page reaches by itself after a command's answer.
fn cases() -> Vec<Case> {
    let resources = vec![
        "https://api.example.com".to_string(),
        "https://billing.example.com".to_string(),
    ];
    let signed_in_api = || AuthView::SignedIn {
        user: user(Some(picture())),
        resources: resources.clone(),
    };
    let get_token = || vec![Step::Click("call-api")];
    let expires = now() + 3600;
    let token = TokenInfo {
        resource: Some(resources[0].clone()),
        organization_id: None,
        expires_at: Some(expires),
        scope: Some("read:orders write:orders".into()),
        claims: Some(json!({
            "iss": "https://tenant.example/oidc", "sub": "u1", "aud": resources[0],
            "scope": "read:orders write:orders", "exp": expires, "iat": expires - 3600,
        })),
    };
    vec![
        Case::shown("loading", AuthView::Loading),
        Case::shown(
            "setup",
            AuthView::Setup {
                config_path: Some("/home/alice/.config/logto-desktop/config.json".into()),
                problem: None,
            },
        ),
        Case::shown(
            "setup-file-broken",
            AuthView::Setup {
                config_path: Some("/home/alice/.config/logto-desktop/config.json".into()),
                problem: Some(Notice::from_error(&AuthError::Config(
                    "expected value at line 1 column 1".into(),
                ))),
            },
        ),
        Case {
            name: "setup-check-failed",
            view: AuthView::Setup {
                config_path: None,
                problem: None,
            },
            answers: vec![(
                "save_setup",
                Err(value(CommandError::from(&AuthError::Network(
                    "tenant.example: connection refused".into(),
                )))),
            )],
            steps: vec![
                Step::Type("setup-endpoint", "https://tenant.example"),
                Step::Type("setup-app-id", "abc123"),
                Step::Click("setup-save"),
            ],
            expect: Some(("save_setup", "#setup-error-detail")),
        },
        Case::shown(
            "signed-out",
            AuthView::SignedOut {
                notice: None,
                amazon_missing: false,
            },
        ),
        Case::shown(
            "signed-out-notice",
            AuthView::SignedOut {
                notice: Some(Notice {
                    code: SIGN_OUT_INCOMPLETE.to_string(),
                    detail: Some("tenant.example: connection refused".into()),
                }),
                amazon_missing: false,
            },
        ),
        Case::shown(
            "signed-out-retry-later",
            AuthView::SignedOut {
                notice: Some(Notice {
                    code: SIGN_OUT_RETRY_LATER.to_string(),
                    detail: Some(
                        "tenant.example: connection refused; the entry could not be removed".into(),
                    ),
                }),
                amazon_missing: false,
            },
        ),
        Case::shown(
            "signed-out-elsewhere",
            AuthView::SignedOut {
                notice: Some(Notice {
                    code: SIGNED_OUT_ELSEWHERE.to_string(),
                    detail: None,
                }),
                amazon_missing: false,
            },
        ),
        Case::shown(
            "signed-out-grant-ended",
            AuthView::SignedOut {
                notice: Some(Notice::from_error(&AuthError::GrantEnded(Some(
                    "grant request is invalid".into(),
                )))),
                amazon_missing: false,
            },
        ),
        Case::shown(
            "signed-out-no-amazon",
            AuthView::SignedOut {
                notice: None,
                amazon_missing: true,
            },
        ),
        Case::shown(
            "signing-in",
            AuthView::SigningIn {
                method: SignInMethod::Amazon,
                deadline: now() + 300,
                browser_error: None,
            },
        ),
        Case::shown(
            "signing-in-no-browser",
            AuthView::SigningIn {
                method: SignInMethod::Logto,
                deadline: now() + 300,
                browser_error: Some("xdg-open: no method available".into()),
            },
        ),
        Case::shown(
            "signed-in",
            AuthView::SignedIn {
                user: user(None),
                resources: Vec::new(),
            },
        ),
        Case::shown("signed-in-api", signed_in_api()),
        Case {
            name: "signed-in-token",
            view: signed_in_api(),
            answers: vec![("get_access_token", Ok(value(&token)))],
            steps: get_token(),
            expect: Some(("get_access_token", "#api-result")),
        },
        Case {
            name: "signed-in-token-refused",
            view: signed_in_api(),
            answers: vec![(
                "get_access_token",
                Err(value(CommandError::from(&AuthError::Provider(
                    ProviderRefusal {
                        error: "invalid_target".into(),
                        description: Some("resource indicator is missing, or unknown".into()),
                    },
                )))),
            )],
            steps: get_token(),
            expect: Some(("get_access_token", "#api-error")),
        },
        Case::shown(
            "error-provider",
            AuthView::from_error(&AuthError::Provider(ProviderRefusal {
                error: "access_denied".into(),
                description: Some("End-User aborted interaction".into()),
            })),
        ),
        Case::shown(
            "error-config",
            AuthView::from_error(&AuthError::Config(
                "LOGTO_ENDPOINT is not an https URL".into(),
            )),
        ),
        Case::shown(
            "error-timed-out",
            AuthView::from_error(&AuthError::TimedOut),
        ),
        Case::shown(
            "error-keychain",
            AuthView::from_error(&AuthError::Keychain(
                "org.freedesktop.secrets was not provided by any .service files".into(),
            )),
        ),
    ]
}

/// The page's `window.__TAURI__`: `get_state` answers the snapshot, other commands their set
/// answer (or nothing); every call and every uncaught error is kept for the test to read.
const STAND_IN: &str = r#"
window.__standIn = { invoked: [], errors: [] };
addEventListener("error", (e) => window.__standIn.errors.push(String(e.message)));
addEventListener("unhandledrejection", (e) =>
  window.__standIn.errors.push(String(e.reason && e.reason.message || e.reason)));
window.__TAURI__ = {
  core: {
    async invoke(command, args) {
      window.__standIn.invoked.push({ command, args: args ?? null });
      if (command === "get_state") return structuredClone(snapshot);
      const answer = answers[command];
      if (answer === undefined) return null;
      if ("err" in answer) throw structuredClone(answer.err);
      return structuredClone(answer.ok);
    },
  },
  event: { async listen() { return () => {}; } },
};
"#;

fn stand_in_script(snapshot: &Snapshot, answers: &[(&str, Result<Value, Value>)]) -> String {
    let answers: serde_json::Map<String, Value> = answers
        .iter()
        .map(|(command, answer)| {
            let answer = match answer {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "err": e }),
            };
            (command.to_string(), answer)
        })
        .collect();
    format!(
        "(() => {{\nconst snapshot = {};\nconst answers = {};\n{STAND_IN}}})();\n",
        value(snapshot),
        Value::Object(answers)
    )
}

/// Serves `ui/` under `/<case>/`, each case's stand-in as `/<case>/__tauri.js` (loaded by the
/// page before app.js), and axe-core as `/axe.min.js`, all with the app's CSP.
struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    origin: String,
}

impl Server {
    fn start(stand_ins: Vec<String>) -> Server {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let ui = root.join("ui");
        let axe = root.join("tests/idp/node_modules/axe-core/axe.min.js");
        assert!(
            axe.is_file(),
            "{} is missing: run scripts/deps.sh (npm ci in tests/idp)",
            axe.display()
        );
        let index = std::fs::read_to_string(ui.join("index.html")).expect("ui/index.html");
        assert!(
            index.contains(MODULE),
            "ui/index.html loads app.js as a module"
        );
        let csp = app_csp(&root);
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binding 127.0.0.1:0"));
        let origin = format!("http://{}", server.server_addr());
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let (status, content_type, body) = route(request.url(), &ui, &axe, &stand_ins);
                let header = |name: &str, v: &str| {
                    tiny_http::Header::from_bytes(name.as_bytes(), v.as_bytes()).expect("a header")
                };
                let response = tiny_http::Response::from_data(body)
                    .with_status_code(status)
                    .with_header(header("Content-Type", content_type))
                    .with_header(header("Content-Security-Policy", &csp))
                    .with_header(header("Cache-Control", "no-store"));
                let _ = request.respond(response);
            }
        });
        Server {
            server,
            thread: Some(thread),
            origin,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The CSP the window runs under.
fn app_csp(root: &Path) -> String {
    let conf = std::fs::read_to_string(root.join("tauri.conf.json")).expect("tauri.conf.json");
    let conf: Value = serde_json::from_str(&conf).expect("tauri.conf.json is JSON");
    conf["app"]["security"]["csp"]
        .as_str()
        .expect("tauri.conf.json sets app.security.csp")
        .to_string()
}

/// The page's first script; the stand-in goes before it.
const MODULE: &str = r#"<script type="module""#;

fn route(url: &str, ui: &Path, axe: &Path, stand_ins: &[String]) -> (u16, &'static str, Vec<u8>) {
    const JS: &str = "text/javascript; charset=utf-8";
    let not_found = (404, "text/plain", b"not found".to_vec());
    let read = |path: &Path, content_type| match std::fs::read(path) {
        Ok(body) => (200, content_type, body),
        Err(e) => (
            500,
            "text/plain",
            format!("{}: {e}", path.display()).into_bytes(),
        ),
    };
    let path = url.split('?').next().unwrap_or_default();
    if path == "/axe.min.js" {
        return read(axe, JS);
    }
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let case = parts.next().and_then(|c| c.parse::<usize>().ok());
    let (Some(case), Some(file)) = (case, parts.next()) else {
        return not_found;
    };
    let Some(stand_in) = stand_ins.get(case) else {
        return not_found;
    };
    match file {
        "" | "index.html" => {
            let (status, content_type, html) =
                read(&ui.join("index.html"), "text/html; charset=utf-8");
            let html = String::from_utf8_lossy(&html).replacen(
                MODULE,
                &format!("<script src=\"__tauri.js\"></script>\n  {MODULE}"),
                1,
            );
            (status, content_type, html.into_bytes())
        }
        "__tauri.js" => (200, JS, stand_in.clone().into_bytes()),
        // Only the files directly in ui/.
        name if !name.contains('/') && !name.starts_with('.') => {
            let content_type = match name.rsplit('.').next() {
                Some("js") => JS,
                Some("css") => "text/css; charset=utf-8",
                _ => "application/octet-stream",
            };
            if ui.join(name).is_file() {
                read(&ui.join(name), content_type)
            } else {
                not_found
            }
        }
        _ => not_found,
    }
}

/// A DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    method: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({ "cmd": self.method, "params": self.params });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    Light,
    Dark,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Light => "light",
            Scheme::Dark => "dark",
        }
    }
}

async fn cdp(client: &Client, method: &'static str, params: Value) {
    bounded(method, client.issue_cmd(Cdp { method, params }))
        .await
        .unwrap_or_else(|e| panic!("{method} through chromedriver: {e}"));
}

/// Sets `prefers-color-scheme` for the pages loaded from now on (each load checks it took).
async fn emulate(client: &Client, scheme: Scheme) {
    let feature = json!({ "name": "prefers-color-scheme", "value": scheme.name() });
    cdp(
        client,
        "Emulation.setEmulatedMedia",
        json!({ "features": [feature] }),
    )
    .await;
}

async fn run_js(client: &Client, script: &str) -> Value {
    bounded(
        "running a script in Chromium",
        client.execute(script, Vec::new()),
    )
    .await
    .unwrap_or_else(|e| panic!("running {script}: {e}"))
}

async fn wait_css(client: &Client, selector: &str, what: &str) -> fantoccini::elements::Element {
    let wait = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector));
    match bounded("waiting in Chromium", wait).await {
        Ok(element) => element,
        Err(e) => {
            let source = client.source().await.unwrap_or_default();
            let errors = run_js(client, "return window.__standIn && window.__standIn.errors").await;
            panic!("{what}: {selector} did not appear ({e}); page errors {errors}:\n{source}");
        }
    }
}

/// Runs axe-core (loaded from the test's server, as the CSP allows) and returns one line per
/// violation.
async fn audit(client: &Client) -> Vec<String> {
    const AXE: &str = r#"
const done = arguments[arguments.length - 1];
const run = () => axe.run(document, {
  runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
  resultTypes: ["violations"],
}).then(
  (r) => done({ violations: r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    // Each element, with why it fails (for contrast: the colours and the ratio).
    targets: v.nodes.map((n) => [n.target.join(" "),
      ...[...n.any, ...n.all, ...n.none].map((c) => c.message)].join(": ")),
  })) }),
  (e) => done({ error: String(e) }));
if (window.axe) { run(); } else {
  const s = document.createElement("script");
  s.src = "/axe.min.js";
  s.onload = run;
  s.onerror = () => done({ error: "axe.min.js did not load" });
  document.head.append(s);
}
"#;
    let result = bounded("running axe-core", client.execute_async(AXE, Vec::new()))
        .await
        .expect("running axe-core");
    if let Some(error) = result.get("error") {
        panic!("axe-core failed: {error}");
    }
    result["violations"]
        .as_array()
        .expect("axe-core's violations")
        .iter()
        .map(|v| {
            format!(
                "{} ({}): {} [{}] {}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or("no impact"),
                v["help"].as_str().unwrap_or_default(),
                v["targets"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default(),
                v["helpUrl"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

/// Loads one case, checks the page drew it in the language and scheme asked for, does its
/// steps, saves a screenshot and returns axe's violations. Returns the page's background colour.
async fn check(
    client: &Client,
    origin: &str,
    index: usize,
    case: &Case,
    lang: Language,
    scheme: Scheme,
    violations: &mut Vec<String>,
) -> String {
    let label = format!("{} {} {}", case.name, lang.tag(), scheme.name());
    bounded(
        "loading the page",
        client.goto(&format!("{origin}/{index}/")),
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: loading the page: {e}"));
    wait_css(client, "html[data-ready]", &label).await;
    let page = run_js(
        client,
        "return { state: document.body.dataset.state, lang: document.documentElement.lang,
                  dark: matchMedia('(prefers-color-scheme: dark)').matches,
                  background: getComputedStyle(document.body).backgroundColor };",
    )
    .await;
    let state = value(&case.view)["state"].clone();
    assert_eq!(page["state"], state, "{label}: the state drawn");
    assert_eq!(page["lang"], lang.tag(), "{label}: the page's language");
    assert_eq!(
        page["dark"],
        scheme == Scheme::Dark,
        "{label}: the page sees the colour scheme it is audited in"
    );
    for step in &case.steps {
        let (id, keys) = match step {
            Step::Type(id, text) => (*id, Some(*text)),
            Step::Click(id) => (*id, None),
        };
        let element = wait_css(client, &format!("#{id}"), &label).await;
        let done = match keys {
            Some(text) => bounded("typing", element.send_keys(text)).await,
            None => bounded("clicking", element.click()).await,
        };
        done.unwrap_or_else(|e| panic!("{label}: #{id}: {e}"));
    }
    if let Some((command, shows)) = case.expect {
        wait_css(client, &format!("{shows}:not([hidden])"), &label).await;
        let invoked = run_js(
            client,
            "return window.__standIn.invoked.map((c) => c.command);",
        )
        .await;
        assert!(
            invoked
                .as_array()
                .is_some_and(|c| c.contains(&json!(command))),
            "{label}: the page called {command} ({invoked})"
        );
    }
    let errors = run_js(client, "return window.__standIn.errors;").await;
    assert_eq!(errors, json!([]), "{label}: errors on the page");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("a11y");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = client.screenshot().await {
        let name = format!("{}-{}-{}.png", case.name, lang.tag(), scheme.name());
        let _ = std::fs::write(dir.join(name), png);
    }

    for violation in audit(client).await {
        violations.push(format!("{label}: {violation}"));
    }
    page["background"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn every_screen_passes_axe_in_both_languages_light_and_dark() {
    let cases = cases();
    let langs = [Language::En, Language::Ja];
    // One page per case and language: /<case * 2 + lang>/.
    let mut stand_ins = Vec::new();
    for case in &cases {
        for lang in langs {
            let snapshot = Snapshot {
                version: 1,
                language: lang.tag(),
                view: case.view.clone(),
            };
            stand_ins.push(stand_in_script(&snapshot, &case.answers));
        }
    }
    let server = Server::start(stand_ins);
    let chrome = Chrome::start().await;
    let client = &chrome.client;
    // The page gets the window's inner size (tauri.conf.json), as in the app.
    cdp(
        client,
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 480, "height": 640, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await;

    let mut violations = Vec::new();
    let mut backgrounds = [BTreeSet::new(), BTreeSet::new()];
    for (s, scheme) in [Scheme::Light, Scheme::Dark].into_iter().enumerate() {
        emulate(client, scheme).await;
        for (c, case) in cases.iter().enumerate() {
            for (l, lang) in langs.into_iter().enumerate() {
                let background = check(
                    client,
                    &server.origin,
                    c * langs.len() + l,
                    case,
                    lang,
                    scheme,
                    &mut violations,
                )
                .await;
                backgrounds[s].insert(background);
            }
        }
    }
    chrome.stop().await;
    // The dark run drew in its own colours, not the light ones.
    assert!(
        backgrounds[0].is_disjoint(&backgrounds[1]),
        "the light and dark pages share a background: {backgrounds:?}"
    );
    assert!(
        violations.is_empty(),
        "axe-core found {} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}
