//! Revocation (RFC 7009) of what proves a session, and of tokens the app holds but will not keep.
//! Done by hand rather than through `oauth2`, which refuses a revocation URL that is not https,
//! and a local provider on loopback is legitimately http. Revoking the refresh token revokes the
//! whole grant at Logto, access tokens included.

use std::sync::Arc;
use std::time::Duration;

use super::discovery::Provider;
use super::error::{AuthError, ProviderRefusal};
use super::http::{self, Http};
use super::session::Session;

/// How long a best-effort revocation of tokens being dropped may take.
pub const DROP_REVOCATION_BOUND: Duration = Duration::from_secs(5);

/// The token whose revocation ends `session`'s grant, with its `token_type_hint`: the refresh
/// token (which takes the whole grant at Logto with it), else the default access token.
pub fn grant_token(session: &Session) -> Option<(&str, &'static str)> {
    grant_of(
        session.tokens.refresh_token.as_ref(),
        session.default_access_token(),
    )
}

/// The token whose revocation ends the grant that issued `refresh` and `access`: the refresh
/// token when there is one, else the access token.
pub(crate) fn grant_of<'a>(
    refresh: Option<&'a oauth2::RefreshToken>,
    access: Option<&'a oauth2::AccessToken>,
) -> Option<(&'a str, &'static str)> {
    match (refresh, access) {
        (Some(rt), _) => Some((rt.secret().as_str(), "refresh_token")),
        (None, Some(at)) => Some((at.secret().as_str(), "access_token")),
        (None, None) => None,
    }
}

/// Revokes one token at the provider's revocation endpoint, `hint` being its `token_type_hint`
/// (`refresh_token` or `access_token`). Fails with [`AuthError::Discovery`] when the provider has
/// no revocation endpoint, [`AuthError::Provider`] for an OAuth error in a 4xx answer, and
/// [`AuthError::Network`] otherwise; the token is in none of them.
pub async fn revoke(
    http: &Http,
    provider: &Provider,
    client_id: &str,
    token: &str,
    hint: &str,
) -> Result<(), AuthError> {
    let Some(endpoint) = provider.revocation_endpoint() else {
        return Err(AuthError::Discovery("it has no revocation endpoint".into()));
    };
    let response = http
        .post(endpoint.clone())
        .form(&[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", client_id),
        ])
        .send()
        .await
        .map_err(|e| http::network_error(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_client_error() {
        #[derive(serde::Deserialize)]
        struct OAuthError {
            error: String,
            error_description: Option<String>,
        }
        let body = http::read_limited(response).await.unwrap_or_default();
        if let Ok(e) = serde_json::from_slice::<OAuthError>(&body) {
            return Err(AuthError::Provider(ProviderRefusal::new(
                e.error,
                e.error_description,
            )));
        }
    }
    Err(AuthError::Network(format!(
        "the revocation endpoint answered HTTP {}",
        status.as_u16()
    )))
}

/// What a revocation needs, owned, so that it can run after the sign-in that asked for it.
pub struct Revoker {
    /// The capped HTTP client the revocation is sent with.
    pub http: Http,
    /// The provider whose revocation endpoint is used.
    pub provider: Arc<Provider>,
    /// The app id, sent as `client_id` (a public client has no secret).
    pub client_id: String,
}

impl Revoker {
    /// Revokes the grant of a session that is being dropped unsaved (a cancelled sign-in, one
    /// that could not be stored), best effort and bounded in time, and says so in the log.
    pub async fn drop_session(&self, session: &Session, why: &str) {
        if let Some(grant) = grant_token(session) {
            drop_token(&self.http, &self.provider, &self.client_id, grant, why).await;
        }
    }
}

/// Revokes `grant` (a token and its `token_type_hint`) of tokens the app received but will not
/// keep, best effort and bounded by [`DROP_REVOCATION_BOUND`], saying in the log why and how it
/// went (never the token).
pub(crate) async fn drop_token(
    http: &Http,
    provider: &Provider,
    client_id: &str,
    (token, hint): (&str, &str),
    why: &str,
) {
    let result = tokio::time::timeout(
        DROP_REVOCATION_BOUND,
        revoke(http, provider, client_id, token, hint),
    )
    .await;
    match result {
        Ok(Ok(())) => tracing::info!(why, "revoked the tokens of a sign-in that was not kept"),
        Ok(Err(e)) => tracing::warn!(
            why,
            code = e.code(),
            "could not revoke the tokens of a sign-in that was not kept"
        ),
        Err(_) => tracing::warn!(
            why,
            "revoking the tokens of a sign-in that was not kept took too long; gave up"
        ),
    }
}
