//! The user's picture (the `picture` claim), fetched by the app rather than by the window: the
//! window's CSP allows no remote image, so a picture never makes the webview call a third party
//! on its own (at every launch, before the person does anything). It is fetched only after a
//! sign-in, over https, with no redirect, a short timeout and a size cap, kept only if it is an
//! image, and handed to the page as a `data:` URL.
//!
//! Plain http is fetched only from the issuer's own origin (scheme, host and port: a provider on
//! loopback, as in tests), never from any other address: whoever can set a user's picture URL
//! would otherwise have the app send requests to services on this machine or its network.

use std::time::Duration;

use base64::Engine;
use url::Url;

use super::error::AuthError;
use super::http::{network_error, read_capped, BoundedError, Http};

/// The largest picture kept; avatars are a few KiB.
pub const MAX_PICTURE_BYTES: usize = 256 * 1024;
/// How long a picture may take; the window shows initials meanwhile.
pub const PICTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// The image types kept. SVG is safe here: an `<img>` runs no script and loads nothing.
const IMAGE_TYPES: [&str; 6] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/svg+xml",
];

/// Fetches the picture at `url` and returns it as a `data:` URL. `issuer` is the provider's
/// issuer ([`Config::issuer`](crate::config::Config::issuer)): see [`check_address`].
pub async fn fetch(http: &Http, url: &str, issuer: &str) -> Result<String, AuthError> {
    let url = check_address(url, issuer)?;
    let response = http
        .get(url)
        .timeout(PICTURE_TIMEOUT)
        .header(reqwest::header::ACCEPT, "image/*")
        .send()
        .await
        .map_err(|e| network_error(&e))?;
    if !response.status().is_success() {
        return Err(AuthError::BadAnswer(format!(
            "the picture's address answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let mime = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| IMAGE_TYPES.contains(&v.as_str()))
        .ok_or_else(|| AuthError::BadAnswer("the picture is not an image".into()))?;
    let bytes = read_capped(response, MAX_PICTURE_BYTES)
        .await
        .map_err(|e| match e {
            BoundedError::Transport(e) => network_error(&e),
            _ => AuthError::TooLarge("the picture".into()),
        })?;
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(format!("data:{mime};base64,{data}"))
}

/// The picture's address if the app may fetch it: `https` anywhere, plain `http` only on the
/// origin (scheme, host and port) of `issuer`. Anything else is refused before any request.
pub fn check_address(url: &str, issuer: &str) -> Result<Url, AuthError> {
    let url =
        Url::parse(url).map_err(|_| AuthError::BadAnswer("the picture is not a URL".into()))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if Url::parse(issuer).is_ok_and(|issuer| issuer.origin() == url.origin()) => Ok(url),
        "http" => Err(AuthError::BadAnswer(
            "the picture is on plain http away from the provider's own address; only https is \
             fetched elsewhere"
                .into(),
        )),
        _ => Err(AuthError::BadAnswer(
            "the picture is not on an https address".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::stand::Stand;

    #[tokio::test]
    async fn an_image_comes_back_as_a_data_url_and_anything_else_is_refused() {
        let stand = Stand::start();
        let http = crate::http::client().expect("client");
        let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
        stand.serve_file("/avatar.png", "image/png", png.clone());
        stand.serve_file(
            "/avatar.svg",
            "image/svg+xml; charset=utf-8",
            b"<svg/>".to_vec(),
        );
        stand.serve_file("/page", "text/html", b"<script>alert(1)</script>".to_vec());
        stand.serve_file("/huge.png", "image/png", vec![0; MAX_PICTURE_BYTES + 1]);
        let at = |path: &str| format!("{}{path}", stand.endpoint());
        let issuer = stand.config().issuer();

        // Plain http, on the issuer's own origin.
        let data = fetch(&http, &at("/avatar.png"), &issuer)
            .await
            .expect("a picture");
        let expected = base64::engine::general_purpose::STANDARD.encode(&png);
        assert_eq!(data, format!("data:image/png;base64,{expected}"));
        let svg = fetch(&http, &at("/avatar.svg"), &issuer)
            .await
            .expect("an svg");
        assert!(svg.starts_with("data:image/svg+xml;base64,"), "{svg}");

        let refused = [
            (at("/page"), "provider.bad_answer"),
            (at("/huge.png"), "provider.too_large"),
            (at("/missing.png"), "provider.bad_answer"),
            ("http://example.com/a.png".into(), "provider.bad_answer"),
            ("javascript:alert(1)".into(), "provider.bad_answer"),
            ("data:image/png;base64,AAAA".into(), "provider.bad_answer"),
            ("not a url".into(), "provider.bad_answer"),
        ];
        for (url, code) in refused {
            let err = fetch(&http, &url, &issuer).await.expect_err(&url);
            assert_eq!(err.code(), code, "{url}: {err}");
        }
        // (That the refused addresses were never asked is the next test's: only a listener of
        // their own can see a request to them.)
    }

    #[tokio::test]
    async fn plain_http_to_another_local_port_is_refused_without_a_connection() {
        let stand = Stand::start();
        let http = crate::http::client().expect("client");
        let issuer = stand.config().issuer();
        // A local service that is not the provider: it must never see the app.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local listener");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("its address").port();
        assert_ne!(port, stand.port);
        for url in [
            format!("http://127.0.0.1:{port}/avatar.png"),
            format!("http://localhost:{port}/avatar.png"),
        ] {
            let err = fetch(&http, &url, &issuer).await.expect_err(&url);
            assert_eq!(err.code(), "provider.bad_answer", "{url}: {err}");
            assert!(
                err.to_string()
                    .contains("plain http away from the provider"),
                "{url}: {err}"
            );
        }
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the local service was reached: {other:?}"),
        }
    }

    #[test]
    fn http_is_allowed_on_the_issuers_origin_only_and_https_anywhere() {
        let local = "http://127.0.0.1:3001/oidc";
        let allowed = [
            ("http://127.0.0.1:3001/avatar.png", local),
            ("https://cdn.example.com/a.png", local),
            ("https://127.0.0.1:8443/a.png", local),
            (
                "https://tenant.logto.app/a.png",
                "https://tenant.logto.app/oidc",
            ),
            (
                "https://gravatar.com/a.png",
                "https://tenant.logto.app/oidc",
            ),
            // The default port written out is the same origin.
            ("http://localhost:80/a.png", "http://localhost/oidc"),
        ];
        for (url, issuer) in allowed {
            assert!(check_address(url, issuer).is_ok(), "{url} with {issuer}");
        }
        let refused = [
            ("http://127.0.0.1:3002/avatar.png", local),
            ("http://localhost:3001/avatar.png", local),
            ("http://127.0.0.2:3001/avatar.png", local),
            ("http://[::1]:3001/avatar.png", local),
            ("http://example.com/a.png", local),
            (
                "http://tenant.logto.app/a.png",
                "https://tenant.logto.app/oidc",
            ),
            ("http://127.0.0.1:3001/a.png", "not an issuer"),
            ("ftp://127.0.0.1:3001/a.png", local),
            ("file:///etc/passwd", local),
        ];
        for (url, issuer) in refused {
            let err = check_address(url, issuer).expect_err(url);
            assert_eq!(err.code(), "provider.bad_answer", "{url}: {err}");
        }
    }
}
