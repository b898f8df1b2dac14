//! The code exchange and everything that must pass before a sign-in counts: the token request
//! with the PKCE verifier, ID token validation (OpenID Connect Core 3.1.3.7: signature with the
//! discovered keys and algorithms, `iss`, `aud`, `exp` and `iat` with a small clock allowance,
//! `nonce`), and userinfo, whose `sub` must match the ID token's (Core 5.3.2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openidconnect::core::{CoreErrorResponseType, CoreIdToken, CoreIdTokenClaims};
use openidconnect::{
    AccessToken, AuthorizationCode, HttpClientError, Nonce, OAuth2TokenResponse, RequestTokenError,
    StandardErrorResponse, TokenResponse,
};
use serde::Deserialize;

use super::authorize::{client, LogtoClient, PendingSignIn};
use super::config::Config;
use super::discovery::Provider;
use super::error::{AuthError, ProviderRefusal};
use super::http::{network_error, read_limited, Http};
use super::session::{RawIdToken, Session, Tokens, User};
use super::tokens::{CachedToken, TokenCache, TokenKey};

/// How far the provider's clock may be from ours.
pub const CLOCK_ALLOWANCE: Duration = Duration::from_secs(60);

/// How a token's `nonce` is judged.
pub enum NonceCheck<'a> {
    /// First sign-in: the nonce must be present and equal.
    Required(&'a Nonce),
    /// Refresh (Core 12.2): compared only when present.
    IfPresent(Option<&'a Nonce>),
}

/// Exchanges the code and returns a fully validated session. Consumes the pending sign-in.
pub async fn exchange_code(
    http: &Http,
    provider: &Provider,
    config: &Config,
    pending: PendingSignIn,
    code: AuthorizationCode,
) -> Result<Session, AuthError> {
    let client = client(provider, config, Some(&pending.redirect_uri))?;
    let response = client
        .exchange_code(code)
        .set_pkce_verifier(pending.verifier)
        .request_async(http)
        .await
        .map_err(token_request_error)?;
    let id_token = response
        .id_token()
        .ok_or_else(|| AuthError::Token("the token answer has no ID token".into()))?;
    let claims = verify_id_token(
        &client,
        provider,
        id_token,
        NonceCheck::Required(&pending.nonce),
    )?;
    let access_token = response.access_token().clone();
    let user = fetch_user(http, provider, &access_token, claims.subject().as_str()).await?;
    let user = merge_claims(user, &claims);
    Ok(Session {
        issuer: provider.issuer().to_string(),
        client_id: config.app_id.clone(),
        user,
        tokens: Tokens {
            refresh_token: response.refresh_token().cloned(),
            id_token: RawIdToken::new(id_token.to_string()),
            scope: scope_text(&response),
        },
        access: {
            let mut access = TokenCache::default();
            access.insert(
                TokenKey::default(),
                CachedToken {
                    token: access_token,
                    expires_at: expiry(&response, unix_now()),
                    scope: scope_text(&response),
                },
            );
            access
        },
        nonce: Some(pending.nonce),
    })
}

/// When a token answer's access token expires, in seconds since the Unix epoch.
pub fn expiry(response: &impl OAuth2TokenResponse, now: u64) -> Option<u64> {
    response
        .expires_in()
        .map(|d| now.saturating_add(d.as_secs()))
}

pub fn scope_text(response: &impl OAuth2TokenResponse) -> Option<String> {
    response
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
}

/// Validates an ID token and returns its claims.
pub fn verify_id_token(
    client: &LogtoClient,
    provider: &Provider,
    id_token: &CoreIdToken,
    nonce: NonceCheck<'_>,
) -> Result<CoreIdTokenClaims, AuthError> {
    let now = chrono_now();
    let allowance = chrono::Duration::seconds(CLOCK_ALLOWANCE.as_secs() as i64);
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(provider.id_token_algs.clone())
        // The crate checks `exp > now` with no allowance: move "now" back by the allowance.
        .set_time_fn(move || now - allowance)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > now + allowance {
                Err("the ID token was issued in the future".to_string())
            } else {
                Ok(())
            }
        });
    let result = match nonce {
        NonceCheck::Required(expected) => id_token.claims(&verifier, expected),
        NonceCheck::IfPresent(expected) => {
            id_token.claims(&verifier, |found: Option<&Nonce>| match (found, expected) {
                (None, _) => Ok(()),
                (Some(found), Some(expected)) if found.secret() == expected.secret() => Ok(()),
                _ => Err("nonce mismatch".to_string()),
            })
        }
    };
    result
        .cloned()
        .map_err(|e| AuthError::Token(format!("ID token: {e}")))
}

/// What this app reads from userinfo. `picture` may be `null` at Logto.
#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    picture: Option<String>,
    #[serde(default)]
    identities: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Reads userinfo with the access token; its `sub` must be the ID token's.
pub async fn fetch_user(
    http: &Http,
    provider: &Provider,
    access_token: &AccessToken,
    expected_sub: &str,
) -> Result<User, AuthError> {
    let value = fetch_userinfo_json(http, provider, access_token, expected_sub).await?;
    let info: UserInfo = serde_json::from_value(value)
        .map_err(|_| AuthError::Token("userinfo is not the expected JSON".into()))?;
    let mut identities: Vec<String> = info
        .identities
        .unwrap_or_default()
        .keys()
        .cloned()
        .collect();
    identities.sort();
    Ok(User {
        sub: info.sub,
        name: info.name.filter(|s| !s.is_empty()),
        username: info.username.filter(|s| !s.is_empty()),
        email: info.email.filter(|s| !s.is_empty()),
        picture: info.picture.filter(|s| !s.is_empty()),
        identities,
    })
}

/// Userinfo as JSON, after checking its `sub` (OpenID Connect Core 5.3.2).
pub async fn fetch_userinfo_json(
    http: &Http,
    provider: &Provider,
    access_token: &AccessToken,
    expected_sub: &str,
) -> Result<serde_json::Value, AuthError> {
    let url = provider
        .metadata
        .userinfo_endpoint()
        .ok_or_else(|| AuthError::Discovery("it has no userinfo endpoint".into()))?
        .url()
        .clone();
    let response = http
        .get(url)
        .bearer_auth(access_token.secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| network_error(&e))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(AuthError::Provider(ProviderRefusal::new(
            "invalid_token".into(),
            Some("userinfo refused the access token".into()),
        )));
    }
    if !status.is_success() {
        return Err(AuthError::Network(format!(
            "userinfo answered HTTP {}",
            status.as_u16()
        )));
    }
    let body = read_limited(response).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| AuthError::Token("userinfo is not JSON".into()))?;
    if value.get("sub").and_then(|s| s.as_str()) != Some(expected_sub) {
        return Err(AuthError::Token(
            "userinfo names another user than the ID token".into(),
        ));
    }
    Ok(value)
}

/// Fills what userinfo left out from the ID token.
fn merge_claims(mut user: User, claims: &CoreIdTokenClaims) -> User {
    if user.name.is_none() {
        user.name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string());
    }
    if user.email.is_none() {
        user.email = claims.email().map(|e| e.to_string());
    }
    if user.username.is_none() {
        user.username = claims.preferred_username().map(|u| u.to_string());
    }
    user
}

type TokenError = RequestTokenError<
    HttpClientError<reqwest::Error>,
    StandardErrorResponse<CoreErrorResponseType>,
>;

/// Keeps a provider's refusal apart from transport and parse failures, and never quotes a body
/// (a token answer that fails to parse may still hold tokens).
pub fn token_request_error(error: TokenError) -> AuthError {
    match error {
        RequestTokenError::ServerResponse(response) => AuthError::Provider(ProviderRefusal::new(
            response.error().as_ref().to_string(),
            response.error_description().cloned(),
        )),
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => network_error(&e),
        RequestTokenError::Request(_) => {
            AuthError::Network("the token endpoint could not be reached".into())
        }
        RequestTokenError::Parse(_, _) => AuthError::Network(
            "the token endpoint gave an answer that is not a token response".into(),
        ),
        RequestTokenError::Other(_) => {
            AuthError::Network("the token endpoint gave an unexpected answer".into())
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
