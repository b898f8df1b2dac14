//! The HTTP client the core uses for every request to the provider: no redirects (a redirect is
//! a way to send a request somewhere the discovery checks never saw), firm timeouts, and a cap on
//! how much of an answer is read. The token requests go through `oauth2`, which is handed
//! [`Bounded`] as its HTTP client so they are under the same cap as everything else.

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use super::error::AuthError;

/// The HTTP client every request to the provider goes through. Make it with [`client`]: a
/// default `reqwest::Client` follows redirects and has no timeouts.
pub type Http = reqwest::Client;

/// The most an answer from the provider may weigh; Logto's are a few KiB (an ID token with many
/// organizations and roles a few tens of KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// The client with this module's rules: no redirects, 10 s to connect, 20 s for a whole request,
/// HTTPS trusting the system's certificate store (never a bundled list). Fails with
/// [`AuthError::Network`] only if the TLS setup cannot start.
pub fn client() -> Result<Http, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("logto-native/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Network(format!("the HTTP client could not start: {e}")))
}

/// GETs JSON. Transport failures and 5xx answers are `Network`, any other non-2xx and a body that
/// is not the expected JSON are `BadAnswer` (callers rename it for their context), an oversized
/// body is `TooLarge`.
pub async fn get_json<T: DeserializeOwned>(http: &Http, url: &Url) -> Result<T, AuthError> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| network_error(&e))?;
    check_status(response.status(), url.path())?;
    let body = read_limited(response).await?;
    serde_json::from_slice(&body).map_err(|e| AuthError::BadAnswer(json_error(&e)))
}

/// Reads a body up to [`MAX_BODY`] bytes; a larger one is refused without reading the rest.
pub async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, AuthError> {
    read_capped(response, MAX_BODY).await.map_err(|e| match e {
        BoundedError::Transport(e) => network_error(&e),
        other => AuthError::TooLarge(other.to_string()),
    })
}

/// Reads a body of at most `cap` bytes; a larger one is refused without reading the rest.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BoundedError> {
    if response.content_length().unwrap_or(0) > cap as u64 {
        return Err(BoundedError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BoundedError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BoundedError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The status of a provider's answer as an error: a 5xx means the provider is there but not
/// working (the network's kind of fault), any other non-2xx an answer this app cannot use.
pub fn check_status(status: reqwest::StatusCode, what: &str) -> Result<(), AuthError> {
    let said = || format!("{what} answered HTTP {}", status.as_u16());
    if status.is_server_error() {
        return Err(AuthError::Network(said()));
    }
    if !status.is_success() {
        return Err(AuthError::BadAnswer(said()));
    }
    Ok(())
}

/// Why [`send_bounded`] gave no answer to `oauth2`.
#[derive(Debug, thiserror::Error)]
pub enum BoundedError {
    /// The request could not be sent or the answer not read.
    #[error("the request failed")]
    Transport(#[source] reqwest::Error),
    /// The answer is larger than [`MAX_BODY`].
    #[error("more than {} KiB", MAX_BODY / 1024)]
    TooLarge,
    /// A 5xx: the provider is there but not working; nothing was refused.
    #[error("HTTP {0}")]
    ServerError(u16),
    /// `oauth2` built a request that reqwest cannot send.
    #[error("the request could not be built")]
    Build,
}

/// `oauth2`'s HTTP client: the same `reqwest` client, the same cap on the answer.
pub struct Bounded<'a>(pub &'a Http);

impl<'c> oauth2::AsyncHttpClient<'c> for Bounded<'_> {
    type Error = BoundedError;
    // Boxed and `Send`, as oauth2's own reqwest client does it, so that the futures of the
    // shell's commands stay `Send`.
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, BoundedError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send_bounded(self.0, request))
    }
}

/// Sends one request for `oauth2`, reading at most [`MAX_BODY`] of the answer. A 5xx is reported
/// as such rather than handed on, so it reads as "Logto is down", not "Logto refused".
pub async fn send_bounded(
    http: &Http,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, BoundedError> {
    let request = reqwest::Request::try_from(request).map_err(|_| BoundedError::Build)?;
    let response = http
        .execute(request)
        .await
        .map_err(BoundedError::Transport)?;
    let status = response.status();
    if status.is_server_error() {
        return Err(BoundedError::ServerError(status.as_u16()));
    }
    let headers = response.headers().clone();
    let body = read_capped(response, MAX_BODY).await?;
    let mut answer = oauth2::HttpResponse::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// Describes a transport failure without echoing URLs' query strings (which may hold a token).
pub fn network_error(error: &reqwest::Error) -> AuthError {
    let what = if error.is_timeout() {
        "timed out"
    } else if refused_certificate(error) {
        // HTTPS trusts what the system trusts: a company CA belongs in the system's store.
        "its certificate is not trusted here; a company CA must be added to the system's certificate store"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let host = error
        .url()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the provider".into());
    AuthError::Network(format!("{host}: {what}"))
}

/// Whether TLS refused the server's certificate, somewhere down the error's causes.
fn refused_certificate(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
            return true;
        }
        // An io::Error's `source` skips the error it wraps, and TLS errors arrive wrapped in
        // io::Errors (two deep): follow the wrapped one.
        cause = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

/// Says what is wrong with a JSON document without quoting it: serde's messages can carry the
/// offending value, and in a token answer that value may be a token.
pub fn json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if let Some(field) = missing_field(&text) {
        return format!("it has no `{field}`");
    }
    match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "it is not JSON".into()
        }
        _ => "a field has the wrong type or value".into(),
    }
}

/// The field name in serde's "missing field `x`", if that is what the message says. Field names
/// come from this app's own types, so they are safe to repeat.
pub fn missing_field(message: &str) -> Option<&str> {
    let rest = &message[message.find("missing field `")? + "missing field `".len()..];
    let name = &rest[..rest.find('`')?];
    let plain = !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by `https_trusts_what_the_system_trusts_and_nothing_else` in a child process, whose
    /// environment names the certificate store (SSL_CERT_FILE) as a system's would: fetches the
    /// URL it is given with the core's client and prints the outcome.
    #[test]
    #[ignore = "a child of https_trusts_what_the_system_trusts_and_nothing_else"]
    fn https_child() {
        let Ok(url) = std::env::var("LOGTO_TEST_HTTPS_URL") else {
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let outcome = runtime.block_on(async {
            let http = client()?;
            get_json::<serde_json::Value>(&http, &Url::parse(&url).expect("a URL")).await
        });
        match outcome {
            Ok(_) => println!("OUTCOME trusted"),
            Err(e) => println!("OUTCOME refused: {e}"),
        }
    }

    /// A test CA and an HTTPS server on 127.0.0.1 with a certificate it signed; the core's
    /// client reaches it when the system's store holds that CA, and refuses it, saying why,
    /// when the store holds another.
    #[test]
    fn https_trusts_what_the_system_trusts_and_nothing_else() {
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        let ca = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let key = rcgen::KeyPair::generate().expect("a CA key");
            let cert = params.self_signed(&key).expect("a CA");
            (cert, key)
        };
        let (company_ca, company_key) = ca("logto-desktop test company CA");
        let (other_ca, _) = ca("logto-desktop test other CA");
        let server_key = rcgen::KeyPair::generate().expect("a server key");
        let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .signed_by(&server_key, &company_ca, &company_key)
            .expect("a server certificate");

        let dir = tempfile::tempdir().expect("a folder");
        let company_pem = dir.path().join("company.pem");
        let other_pem = dir.path().join("other.pem");
        std::fs::write(&company_pem, company_ca.pem()).expect("writing");
        std::fs::write(&other_pem, other_ca.pem()).expect("writing");

        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("a server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("the port").port();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let body = r#"{"ok":true}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = tls.write_all(answer.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        });

        let outcome = |store: &std::path::Path| {
            let output = std::process::Command::new(std::env::current_exe().expect("this test"))
                .args([
                    "http::tests::https_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("SSL_CERT_FILE", store)
                .env_remove("SSL_CERT_DIR")
                .env("LOGTO_TEST_HTTPS_URL", format!("https://127.0.0.1:{port}/"))
                .output()
                .expect("the child test");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            stdout
                .lines()
                .find_map(|l| l.split_once("OUTCOME ").map(|(_, o)| o.to_string()))
                .unwrap_or_else(|| panic!("the child said nothing: {stdout}"))
        };
        assert_eq!(outcome(&company_pem), "trusted");
        let refused = outcome(&other_pem);
        assert!(
            refused.starts_with("refused") && refused.contains("certificate is not trusted"),
            "{refused}"
        );
    }

    #[test]
    fn json_errors_never_quote_the_document() {
        let secret = "RT-very-secret-value";
        for doc in [
            format!(r#"{{"access_token": 5, "refresh_token": "{secret}"}}"#),
            format!(r#"{{"token_type": ["{secret}"]}}"#),
            secret.to_string(),
            format!(r#"{{"a": "{secret}"#),
        ] {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            struct T {
                access_token: String,
                token_type: String,
            }
            let err = serde_json::from_str::<T>(&doc).err().expect("refused");
            let said = json_error(&err);
            assert!(!said.contains(secret), "{said}");
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            sub: String,
        }
        let err = serde_json::from_str::<T>("{}").expect_err("refused");
        assert_eq!(json_error(&err), "it has no `sub`");
        assert_eq!(missing_field("missing field `a b`"), None);
        assert_eq!(missing_field("missing field `"), None);
    }

    /// Serves each request with `len` bytes, chunked (no `Content-Length`: the cap must hold
    /// while reading) or with a `Content-Length` that may lie (`claimed`).
    fn serve(len: usize, chunked: bool, claimed: Option<usize>) -> String {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("a test server");
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .expect("a port");
        std::thread::spawn(move || {
            if let Ok(request) = server.recv() {
                let length = if chunked {
                    None
                } else {
                    Some(claimed.unwrap_or(len))
                };
                let body = std::io::Cursor::new(vec![b'x'; len]);
                let response = tiny_http::Response::new(200.into(), Vec::new(), body, length, None);
                // tiny_http chunks every answer at least as long as the threshold.
                let threshold = if chunked { 0 } else { usize::MAX };
                let _ = request.respond(response.with_chunked_threshold(threshold));
            }
        });
        format!("http://127.0.0.1:{port}/")
    }

    /// SECURITY.md's cap, 1 MiB, to the byte, whether or not the answer says its length first.
    #[tokio::test]
    async fn an_answer_of_1_mib_is_read_and_one_byte_more_is_not() {
        const MIB: usize = 1024 * 1024;
        let http = client().expect("client");
        for chunked in [true, false] {
            for (len, taken) in [(MIB - 1, true), (MIB, true), (MIB + 1, false)] {
                let response = http
                    .get(serve(len, chunked, None))
                    .send()
                    .await
                    .expect("sent");
                let read = read_limited(response).await;
                match (taken, read) {
                    (true, Ok(body)) => assert_eq!(body.len(), len),
                    (false, Err(e)) => assert_eq!(e.code(), "provider.too_large"),
                    (_, other) => panic!("{len} bytes, chunked {chunked}: {other:?}"),
                }
            }
        }
        // A length said up front past the cap is refused before the body is read.
        let response = http
            .get(serve(10, false, Some(MIB + 1)))
            .send()
            .await
            .expect("sent");
        assert_eq!(
            read_limited(response).await.map_err(|e| e.code()).err(),
            Some("provider.too_large")
        );
    }
}
