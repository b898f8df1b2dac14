//! The one-time loopback redirect listener (RFC 8252 section 7.3). It binds `127.0.0.1` on a port
//! the OS picks, only for the length of one sign-in, answers the browser with a static page, and
//! closes. Requests that cannot belong to the sign-in (favicon, other paths and methods, a wrong
//! or missing `state`, a foreign `Host`) get a page of their own and leave the wait running, so a
//! stray or forged request can never end the real sign-in.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};
use url::Url;

use super::callback::{parse_callback, Callback, ExpectedCallback};
use super::error::{AuthError, CallbackError};
use super::pages::{self, Page};

pub const CALLBACK_PATH: &str = "/callback";

/// A bound listener, not yet waiting.
pub struct Loopback {
    server: Arc<Server>,
    port: u16,
}

/// Stops the listener thread when the wait ends for any reason (result, cancel, timeout, drop).
struct StopOnDrop {
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
    }
}

/// What the listener needs to judge a request.
pub struct Expectation {
    pub state: openidconnect::CsrfToken,
    pub issuer: String,
    pub requires_iss: bool,
    pub language: pages::Language,
}

impl Loopback {
    /// Binds `127.0.0.1:0`. Never `0.0.0.0`: nothing off this machine may reach it.
    pub fn bind() -> Result<Self, AuthError> {
        let server = Server::http(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| AuthError::Listener(e.to_string()))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| AuthError::Listener("no port was assigned".into()))?;
        Ok(Loopback {
            server: Arc::new(server),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/callback`: an IP literal, as RFC 8252 8.3 recommends, and the
    /// only loopback form Logto accepts without registering the port.
    pub fn redirect_uri(&self) -> Url {
        let text = format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port);
        // The string is built from a number and constants; it always parses.
        Url::parse(&text).unwrap_or_else(|_| unreachable!("loopback redirect URI {text}"))
    }

    /// Waits for the callback that belongs to this sign-in. Dropping the future (cancel, timeout)
    /// stops the listener thread, which then closes the socket.
    pub async fn wait(self, expect: Expectation) -> Result<Callback, AuthError> {
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop {
            server: self.server.clone(),
            stop: stop.clone(),
        };
        let server = self.server;
        let port = self.port;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("loopback".into())
            .spawn(move || {
                let result = serve(&server, port, &expect, &stop);
                // The receiver is gone only when the wait was dropped; nothing to report then.
                let _ = tx.send(result);
            })
            .map_err(|e| AuthError::Listener(e.to_string()))?;
        match rx.await {
            Ok(Some(result)) => result,
            Ok(None) | Err(_) => Err(AuthError::Cancelled),
        }
    }
}

/// The listener loop. Returns `None` when told to stop.
fn serve(
    server: &Server,
    port: u16,
    expect: &Expectation,
    stop: &AtomicBool,
) -> Option<Result<Callback, AuthError>> {
    let host = format!("127.0.0.1:{port}");
    while !stop.load(Ordering::SeqCst) {
        let request = match server.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(_) => continue,
        };
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match judge(&request, &host, expect) {
            Verdict::Stray(page) => respond(request, page),
            Verdict::Done(page, result) => {
                respond(request, page);
                return Some(result);
            }
        }
    }
    None
}

enum Verdict {
    Stray(Page),
    Done(Page, Result<Callback, AuthError>),
}

fn judge(request: &Request, host: &str, expect: &Expectation) -> Verdict {
    let lang = expect.language;
    if *request.method() != Method::Get {
        return Verdict::Stray(pages::not_found(lang, 405));
    }
    // DNS rebinding: a page on some other name that resolves here must not reach the callback.
    let host_ok = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .is_some_and(|h| h.value.as_str() == host);
    if !host_ok {
        return Verdict::Stray(pages::not_found(lang, 400));
    }
    let expected = ExpectedCallback {
        path: CALLBACK_PATH,
        state: &expect.state,
        issuer: &expect.issuer,
        requires_iss: expect.requires_iss,
    };
    match parse_callback(request.url(), &expected) {
        Ok(Callback::Code(code)) => Verdict::Done(pages::signed_in(lang), Ok(Callback::Code(code))),
        Ok(Callback::Refused(refusal)) => {
            let page = pages::refused(lang, &refusal);
            Verdict::Done(page, Ok(Callback::Refused(refusal)))
        }
        Err(CallbackError::WrongPath) => Verdict::Stray(pages::not_found(lang, 404)),
        Err(e) if e.is_unrelated() => Verdict::Stray(pages::unrelated(lang)),
        Err(e) => Verdict::Done(
            pages::failed(lang, &e.to_string()),
            Err(AuthError::Callback(e)),
        ),
    }
}

fn respond(request: Request, page: Page) {
    let mut response = Response::from_string(page.html).with_status_code(page.status);
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", pages::CSP),
        ("Connection", "close"),
    ] {
        if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    // The browser may have gone away; there is nobody left to tell.
    let _ = request.respond(response);
}
