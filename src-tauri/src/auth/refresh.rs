//! One refresh-token grant (RFC 6749 section 6), with `resource` (RFC 8707) or Logto's
//! `organization_id` when a token for an API or an organization is wanted, and the checks its
//! answer must pass: a new ID token must validate like the first and name the same issuer and
//! subject, and repeat the sign-in's nonce if it carries one (OpenID Connect Core 12.2).
//! Logto rotates the refresh token on every use; the caller stores the new one before anything
//! else happens (see `service`).

use openidconnect::{OAuth2TokenResponse, RefreshToken, TokenResponse};

use super::authorize::client;
use super::config::Config;
use super::discovery::Provider;
use super::error::AuthError;
use super::exchange::{expiry, scope_text, token_request_error, verify_id_token, NonceCheck};
use super::http::Http;
use super::session::{RawIdToken, Session};
use super::tokens::{CachedToken, TokenKey};

/// What a refresh brought.
#[derive(Debug)]
pub struct Refreshed {
    pub access: CachedToken,
    /// The rotated refresh token; `None` when the provider kept the old one.
    pub refresh_token: Option<RefreshToken>,
    pub id_token: Option<RawIdToken>,
}

pub async fn refresh(
    http: &Http,
    provider: &Provider,
    config: &Config,
    session: &Session,
    key: &TokenKey,
    now: u64,
) -> Result<Refreshed, AuthError> {
    let refresh_token = session.tokens.refresh_token.as_ref().ok_or_else(|| {
        AuthError::SessionEnded(
            "Logto granted no refresh token (was offline_access refused?)".into(),
        )
    })?;
    let client = client(provider, config, None)?;
    let mut request = client.exchange_refresh_token(refresh_token);
    if let Some(resource) = &key.resource {
        request = request.add_extra_param("resource", resource.clone());
    }
    if let Some(organization) = &key.organization {
        request = request.add_extra_param("organization_id", organization.clone());
    }
    let response = request
        .request_async(http)
        .await
        .map_err(token_request_error)?;

    let id_token = match response.id_token() {
        Some(token) => {
            let claims = verify_id_token(
                &client,
                provider,
                token,
                NonceCheck::IfPresent(session.nonce.as_ref()),
            )
            .map_err(|e| {
                AuthError::SessionEnded(format!("Logto's new ID token was refused ({e})"))
            })?;
            if claims.issuer().as_str() != session.issuer {
                return Err(AuthError::SessionEnded(
                    "Logto answered as another issuer".into(),
                ));
            }
            if claims.subject().as_str() != session.user.sub {
                return Err(AuthError::SessionEnded(
                    "Logto answered for another account".into(),
                ));
            }
            Some(RawIdToken::new(token.to_string()))
        }
        None => None,
    };
    Ok(Refreshed {
        access: CachedToken {
            token: response.access_token().clone(),
            expires_at: expiry(&response, now),
            scope: scope_text(&response),
        },
        refresh_token: response.refresh_token().cloned(),
        id_token,
    })
}
