//! The HTTP client the core uses for every request to the provider: no redirects (a redirect is
//! a way to send a request somewhere the discovery checks never saw), firm timeouts, and a cap on
//! how much of an answer is read. The token requests go through `oauth2`, which is handed
//! [`Bounded`] as its HTTP client so they are under the same cap as everything else.

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use super::error::AuthError;

pub type Http = reqwest::Client;

/// The most an answer from the provider may weigh; Logto's are a few KiB (an ID token with many
/// organizations and roles a few tens of KiB).
pub const MAX_BODY: usize = 1024 * 1024;

pub fn client() -> Result<Http, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("logto-desktop/", env!("CARGO_PKG_VERSION")))
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
}
