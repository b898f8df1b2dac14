//! A stand-in provider for the core's unit tests: a real HTTP server on `127.0.0.1` (discovery,
//! JWKS, token, userinfo, revocation) whose answers each test scripts, with Ed25519 keys made
//! in the test so every rule of an ID token can be broken on purpose, and a browser that answers
//! the loopback redirect with a code the way Logto would. It records every request, so a test
//! can assert what the core asked for after a step failed.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use url::Url;

use crate::browser::Browser;
use crate::config::Config;
use crate::discovery::tests::logto_document;
use crate::exchange::unix_now;
use crate::service::AuthService;
use crate::store::MemoryStore;

pub const APP: &str = "app1";
pub const SUB: &str = "u1";

/// A signing key with its `kid`.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub signing: SigningKey,
}

impl Key {
    pub fn new(seed: u8, kid: &str) -> Key {
        Key {
            kid: kid.into(),
            signing: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes()),
        })
    }

    /// A compact JWS over `claims` with `header` (alg EdDSA and this kid unless overridden).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut h = json!({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), header.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    h.remove(k);
                } else {
                    h.insert(k.clone(), v.clone());
                }
            }
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// An answer: status and body.
pub type Answer = (u16, Vec<u8>);

/// What the token endpoint was asked, and what it may need to answer.
pub struct TokenCall<'a> {
    pub form: Vec<(String, String)>,
    pub stand: &'a StandState,
}

impl TokenCall<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type TokenScript = Box<dyn Fn(&TokenCall<'_>) -> Answer + Send + Sync>;

pub struct StandState {
    pub issuer: String,
    /// The key that signs; the JWKS publishes `published`.
    pub signer: Mutex<Key>,
    pub published: Mutex<Vec<Key>>,
    /// The nonce of the last authorization request the browser saw.
    pub nonce: Mutex<Option<String>>,
    /// `METHOD /path` of every request, in order.
    pub log: Mutex<Vec<String>>,
    /// Tokens sent to the revocation endpoint.
    pub revoked: Mutex<Vec<String>>,
    /// What the browser's tab was last shown by the loopback listener (the whole answer).
    pub tab: Mutex<Option<String>>,
    /// How long the tab waited for that answer, from sending the callback to the answer's end.
    pub tab_waited: Mutex<Option<Duration>>,
    /// Every URL the browser was asked to open.
    pub opened: Mutex<Vec<String>>,
    /// The access tokens of the token answers made so far, in order (`AT-1`, `AT-2`, ...).
    pub access_tokens: Mutex<Vec<String>>,
    token: Mutex<VecDeque<TokenScript>>,
    pub userinfo: Mutex<Answer>,
    pub jwks_status: Mutex<u16>,
    /// The revocation endpoint's status; a token is recorded as revoked only with a 200.
    pub revocation_status: Mutex<u16>,
    /// What discovery lists in `id_token_signing_alg_values_supported` (Logto lists the
    /// algorithms of the keys it holds).
    pub algs: Mutex<Value>,
    /// Other paths served as they are: path -> (content type, body).
    files: Mutex<std::collections::HashMap<String, (String, Vec<u8>)>>,
    /// Answers that replace the usual one: `METHOD /path` -> (status, body, `Location`).
    overrides: Mutex<std::collections::HashMap<String, Override>>,
}

/// An answer set by [`Stand::answer_with`]: status, body, and a `Location` header if any.
type Override = (u16, Vec<u8>, Option<String>);

impl StandState {
    pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The claims Logto puts in an ID token, for `nonce`.
    pub fn claims(&self, nonce: Option<&str>) -> Value {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer, "sub": SUB, "aud": APP, "exp": now + 3600, "iat": now,
            "name": "Alice Example", "email": "alice@example.com",
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    pub fn signer(&self) -> Key {
        Self::lock(&self.signer).clone()
    }

    pub fn last_nonce(&self) -> Option<String> {
        Self::lock(&self.nonce).clone()
    }

    /// A good token answer around `id_token`, with a new access token (each answer's is its
    /// own, so a test can tell which answer a token came from).
    pub fn answer(&self, id_token: Option<String>, refresh_token: &str) -> Answer {
        let access_token = {
            let mut issued = Self::lock(&self.access_tokens);
            let next = format!("AT-{}", issued.len() + 1);
            issued.push(next.clone());
            next
        };
        let mut body = json!({
            "access_token": access_token, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": refresh_token, "scope": "openid offline_access profile",
        });
        if let Some(token) = id_token {
            body["id_token"] = json!(token);
        }
        (200, body.to_string().into_bytes())
    }

    /// A good answer with an ID token for the last nonce, its claims changed by `tweak`.
    pub fn signed_answer(&self, tweak: impl FnOnce(&mut Value), refresh_token: &str) -> Answer {
        let mut claims = self.claims(self.last_nonce().as_deref());
        tweak(&mut claims);
        let token = self.signer().sign(json!({}), &claims);
        self.answer(Some(token), refresh_token)
    }
}

/// Runs one sign-in on `service` to its end (the stand's browser comes back at once), failing
/// the test rather than hanging it.
pub async fn sign_in(service: &AuthService) -> Result<crate::User, crate::AuthError> {
    tokio::time::timeout(
        Duration::from_secs(30),
        service.sign_in(crate::SignInMethod::Logto, |_| {}),
    )
    .await
    .unwrap_or_else(|_| panic!("the sign-in did not end within 30 s"))
}

/// The running stand-in. Dropping it stops the server.
pub struct Stand {
    pub state: Arc<StandState>,
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Stand {
    pub fn start() -> Stand {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("binding the stand-in");
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .expect("a port");
        let key = Key::new(7, "k1");
        let state = Arc::new(StandState {
            issuer: format!("http://127.0.0.1:{port}/oidc"),
            signer: Mutex::new(key.clone()),
            published: Mutex::new(vec![key]),
            nonce: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            revoked: Mutex::new(Vec::new()),
            tab: Mutex::new(None),
            tab_waited: Mutex::new(None),
            opened: Mutex::new(Vec::new()),
            access_tokens: Mutex::new(Vec::new()),
            token: Mutex::new(VecDeque::new()),
            userinfo: Mutex::new((
                200,
                json!({"sub": SUB, "name": "Alice Example", "identities": {}})
                    .to_string()
                    .into_bytes(),
            )),
            jwks_status: Mutex::new(200),
            revocation_status: Mutex::new(200),
            algs: Mutex::new(json!(["EdDSA"])),
            files: Mutex::new(std::collections::HashMap::new()),
            overrides: Mutex::new(std::collections::HashMap::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || serve(server, s, st));
        Stand { state, port, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.endpoint(), APP).expect("config");
        config.sign_in_timeout = Duration::from_secs(20);
        config
    }

    /// Queues the token endpoint's next answer.
    pub fn on_token(&self, script: impl Fn(&TokenCall<'_>) -> Answer + Send + Sync + 'static) {
        StandState::lock(&self.state.token).push_back(Box::new(script));
    }

    /// From now on answers `request` (`"GET /oidc/jwks"`) with `status` and `body`, and a
    /// `Location` header when `location` is given (a redirect).
    pub fn answer_with(&self, request: &str, status: u16, body: Vec<u8>, location: Option<&str>) {
        StandState::lock(&self.state.overrides).insert(
            request.to_string(),
            (status, body, location.map(str::to_string)),
        );
    }

    /// Serves `body` at `path` with `content_type`.
    pub fn serve_file(&self, path: &str, content_type: &str, body: Vec<u8>) {
        StandState::lock(&self.state.files).insert(path.into(), (content_type.into(), body));
    }

    /// Drops the scripted token answers not used yet.
    pub fn clear_token(&self) {
        StandState::lock(&self.state.token).clear();
    }

    pub fn set_userinfo(&self, status: u16, body: Value) {
        *StandState::lock(&self.state.userinfo) = (status, body.to_string().into_bytes());
    }

    /// Signs with `key` from now on, publishing `published`.
    pub fn rotate(&self, key: Key, published: Vec<Key>) {
        *StandState::lock(&self.state.signer) = key;
        *StandState::lock(&self.state.published) = published;
    }

    pub fn requests(&self) -> Vec<String> {
        StandState::lock(&self.state.log).clone()
    }

    pub fn count(&self, request: &str) -> usize {
        self.requests().iter().filter(|r| *r == request).count()
    }

    /// Every URL the browser was asked to open.
    pub fn opened(&self) -> Vec<String> {
        StandState::lock(&self.state.opened).clone()
    }

    /// The access token of the last token answer made.
    pub fn last_access_token(&self) -> Option<String> {
        StandState::lock(&self.state.access_tokens).last().cloned()
    }

    /// The page the browser's tab got from the loopback listener, once it has it.
    pub fn tab(&self) -> Option<String> {
        StandState::lock(&self.state.tab).clone()
    }

    pub fn revoked(&self) -> Vec<String> {
        StandState::lock(&self.state.revoked).clone()
    }

    /// A service on this stand with an in-memory keychain and a browser that comes back with a
    /// code at once.
    pub fn service(&self) -> (Arc<AuthService>, Arc<MemoryStore>) {
        self.service_on(Arc::new(MemoryStore::default()), None)
    }

    /// A service on this stand with `store`, finished by `finish` (a lock, a clock).
    pub fn service_with(
        &self,
        store: Arc<MemoryStore>,
        finish: impl FnOnce(AuthService) -> AuthService,
    ) -> Arc<AuthService> {
        let browser = Arc::new(CodeBrowser {
            state: self.state.clone(),
        });
        let service = AuthService::new(self.config(), store, browser).expect("service");
        Arc::new(finish(service))
    }

    /// A service on this stand with `store`, remembering signed-out sessions at `marks`.
    pub fn service_on(
        &self,
        store: Arc<MemoryStore>,
        marks: Option<std::path::PathBuf>,
    ) -> (Arc<AuthService>, Arc<MemoryStore>) {
        let browser = Arc::new(CodeBrowser {
            state: self.state.clone(),
        });
        let mut service = AuthService::new(self.config(), store.clone(), browser).expect("service");
        if let Some(path) = marks {
            service = service.with_signed_out_marks(crate::store::SignedOutMarks::new(path));
        }
        (Arc::new(service), store)
    }
}

impl Drop for Stand {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(server: tiny_http::Server, state: Arc<StandState>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let method = request.method().to_string();
        StandState::lock(&state.log).push(format!("{method} {path}"));
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let set = StandState::lock(&state.overrides)
            .get(&format!("{method} {path}"))
            .cloned();
        let file = match method.as_str() {
            "GET" => StandState::lock(&state.files).get(&path).cloned(),
            _ => None,
        };
        let (content_type, (status, bytes, location)) = match (set, file) {
            (Some(answer), _) => ("application/json".to_string(), answer),
            (None, Some((content_type, body))) => (content_type, (200, body, None)),
            (None, None) => {
                let (status, bytes) = usual_answer(&state, &method, &path, form);
                ("application/json".to_string(), (status, bytes, None))
            }
        };
        let header = tiny_http::Header::from_bytes("Content-Type", content_type.as_bytes())
            .unwrap_or_else(|_| unreachable!("a test's content type"));
        let mut response = tiny_http::Response::from_data(bytes)
            .with_status_code(status)
            .with_header(header);
        if let Some(location) = location {
            if let Ok(h) = tiny_http::Header::from_bytes("Location", location.as_bytes()) {
                response.add_header(h);
            }
        }
        let _ = request.respond(response);
    }
}

/// The stand's own answer to `method` `path`.
fn usual_answer(
    state: &StandState,
    method: &str,
    path: &str,
    form: Vec<(String, String)>,
) -> Answer {
    match (method, path) {
        ("GET", "/oidc/.well-known/openid-configuration") => {
            let mut doc = logto_document(&state.issuer);
            doc["id_token_signing_alg_values_supported"] = StandState::lock(&state.algs).clone();
            (200, doc.to_string().into_bytes())
        }
        ("GET", "/oidc/jwks") => {
            let keys: Vec<Value> = StandState::lock(&state.published)
                .iter()
                .map(Key::jwk)
                .collect();
            let status = *StandState::lock(&state.jwks_status);
            (status, json!({ "keys": keys }).to_string().into_bytes())
        }
        ("POST", "/oidc/token") => {
            let script = StandState::lock(&state.token).pop_front();
            match script {
                Some(script) => script(&TokenCall { form, stand: state }),
                None => (500, b"no answer scripted".to_vec()),
            }
        }
        ("GET", "/oidc/me") => StandState::lock(&state.userinfo).clone(),
        ("POST", "/oidc/token/revocation") => {
            let status = *StandState::lock(&state.revocation_status);
            if let (200, Some((_, token))) = (status, form.iter().find(|(k, _)| k == "token")) {
                StandState::lock(&state.revoked).push(token.clone());
            }
            (status, Vec::new())
        }
        _ => (404, Vec::new()),
    }
}

/// A browser that reads the authorization URL (remembering its nonce for the stand's ID tokens)
/// and calls the loopback redirect with a code, `state` and `iss`, as Logto's redirect would.
struct CodeBrowser {
    state: Arc<StandState>,
}

impl Browser for CodeBrowser {
    fn open(&self, url: &Url) -> Result<(), String> {
        let get = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        StandState::lock(&self.state.opened).push(url.to_string());
        let (Some(state), Some(redirect)) = (get("state"), get("redirect_uri")) else {
            // Not an authorization request (the end-session page): nothing comes back.
            return Ok(());
        };
        *StandState::lock(&self.state.nonce) = get("nonce");
        let mut callback = Url::parse(&redirect).map_err(|e| e.to_string())?;
        callback
            .query_pairs_mut()
            .append_pair("code", "code-1")
            .append_pair("state", &state)
            .append_pair("iss", &self.state.issuer);
        let stand = self.state.clone();
        std::thread::spawn(move || {
            let host = format!("127.0.0.1:{}", callback.port().unwrap_or(80));
            if let Ok(mut stream) = std::net::TcpStream::connect(&host) {
                let target = &callback[url::Position::BeforePath..];
                let _ = write!(
                    stream,
                    "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                );
                let sent = std::time::Instant::now();
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut page = Vec::new();
                let _ = stream.read_to_end(&mut page);
                *StandState::lock(&stand.tab_waited) = Some(sent.elapsed());
                *StandState::lock(&stand.tab) = Some(String::from_utf8_lossy(&page).into_owned());
            }
        });
        Ok(())
    }
}
