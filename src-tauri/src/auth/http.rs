//! The HTTP client the core uses for every request to the provider: no redirects (a redirect is
//! a way to send a request somewhere the discovery checks never saw), firm timeouts, and a cap on
//! how much of an answer is read.

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use super::error::AuthError;

pub type Http = reqwest::Client;

/// The most a JSON answer from the provider may weigh; Logto's are a few KiB.
const MAX_BODY: usize = 1024 * 1024;

pub fn client() -> Result<Http, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("logto-desktop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Network(format!("the HTTP client could not start: {e}")))
}

/// GETs JSON. Transport failures and non-2xx answers are `Network`; a body that is not the
/// expected JSON is `Token` with the parser's words (callers rename it for their context).
pub async fn get_json<T: DeserializeOwned>(http: &Http, url: &Url) -> Result<T, AuthError> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| network_error(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(AuthError::Network(format!(
            "{} answered HTTP {}",
            url.path(),
            status.as_u16()
        )));
    }
    let body = read_limited(response).await?;
    serde_json::from_slice(&body).map_err(|e| AuthError::Token(e.to_string()))
}

/// Reads a body up to [`MAX_BODY`] bytes.
pub async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, AuthError> {
    if response.content_length().unwrap_or(0) > MAX_BODY as u64 {
        return Err(AuthError::Token("the answer is too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network_error(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(AuthError::Token("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
