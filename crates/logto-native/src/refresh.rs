//! One refresh-token grant (RFC 6749 section 6), with `resource` (RFC 8707) or Logto's
//! `organization_id` when a token for an API or an organization is wanted, and the checks its
//! answer must pass: a new ID token must validate like the first, keep the issuer, subject,
//! audiences and `azp`, not move `auth_time` back, and repeat the sign-in's nonce if it carries
//! one (OpenID Connect Core 12.2). Its [`Verdict`] says what a failure means for the session:
//! a key not yet published or a clock difference is not about the user and keeps it.
//! Logto rotates the refresh token on every use; the caller stores the new one before anything
//! else happens (see `service`), whatever the verdict.

use oauth2::{RefreshToken, TokenResponse as OAuth2TokenResponse};

use std::sync::Arc;

use super::discovery::Provider;
use super::error::AuthError;
use super::exchange::{cached_token, token_client, token_request_error};
use super::http::Bounded;
use super::id_token::{self, Expected, NonceCheck, Source};
use super::session::{RawIdToken, Session};
use super::tokens::{CachedToken, TokenKey};

/// What a refresh brought. The provider has already used the old refresh token up, so even an
/// answer whose ID token is refused carries a refresh token that must not be dropped unseen.
#[derive(Debug)]
pub struct Refreshed {
    /// The new access token for the key asked for, its expiry counted from the `now` given.
    pub access: CachedToken,
    /// The rotated refresh token; `None` when the provider kept the old one.
    pub refresh_token: Option<RefreshToken>,
    /// The new ID token, if the answer had one; trust it only when `verdict` is
    /// [`Verdict::Good`].
    pub id_token: Option<RawIdToken>,
    /// What the checks on `id_token` mean for the session ([`Verdict::Good`] when there is none).
    pub verdict: Verdict,
}

/// What the checks on the answer's ID token mean for the session.
#[derive(Debug)]
pub enum Verdict {
    /// Everything checked out: use the answer.
    Good,
    /// The ID token could not be checked for a reason that is not about the user (a key not
    /// yet published, the clocks, a malformed token): keep the session and the rotated refresh
    /// token, hand out nothing from this answer, and report [`AuthError::Unverified`].
    Unverified(AuthError),
    /// The ID token is for someone or something else, or forged: the session ends
    /// ([`AuthError::SessionEnded`]), and the rotated refresh token is revoked.
    Ends(AuthError),
}

/// Uses `session`'s refresh token once, for the access token of `key` (the default one, an API
/// resource's, or an organization's), and checks the answer's ID token against `session`.
/// `now` is Unix seconds, the start of the new token's lifetime.
///
/// Fails with [`AuthError::SessionEnded`] when the session has no refresh token, with
/// [`AuthError::Provider`] when Logto refuses the grant (see [`AuthError::is_invalid_grant`]),
/// and with transport and answer errors otherwise; an `Ok` may still carry a failed
/// [`Verdict`]. The old refresh token is spent as soon as Logto answers: store
/// [`Refreshed::refresh_token`] before anything else.
pub(crate) async fn refresh(
    source: &Source<'_>,
    provider: &mut Arc<Provider>,
    session: &Session,
    key: &TokenKey,
    now: u64,
) -> Result<Refreshed, AuthError> {
    let refresh_token = session.tokens.refresh_token.as_ref().ok_or_else(|| {
        AuthError::SessionEnded(
            "Logto granted no refresh token; check that the app may ask for offline_access".into(),
        )
    })?;
    let client = token_client(provider, source.config, None)?;
    let mut request = client.exchange_refresh_token(refresh_token);
    if let Some(resource) = &key.resource {
        request = request.add_extra_param("resource", resource.clone());
    }
    if let Some(organization) = &key.organization {
        request = request.add_extra_param("organization_id", organization.clone());
    }
    let answer = request
        .request_async(&Bounded(source.http))
        .await
        .map_err(token_request_error)?;

    let access = cached_token(&answer, now);
    let id_token = answer.extra_fields().id_token.clone();
    let verdict = match &id_token {
        Some(token) => judge(source, provider, session, token, &access).await,
        None => Verdict::Good,
    };
    Ok(Refreshed {
        access,
        refresh_token: answer.refresh_token().cloned(),
        id_token,
        verdict,
    })
}

/// Core 12.2: a refreshed ID token validates like the first, repeats the sign-in's nonce if it
/// has one, and keeps `iss`, `sub`, `aud`, `azp` and a non-decreasing `auth_time`.
async fn judge(
    source: &Source<'_>,
    provider: &mut Arc<Provider>,
    session: &Session,
    token: &RawIdToken,
    access: &CachedToken,
) -> Verdict {
    let expected = Expected {
        client_id: &source.config.app_id,
        nonce: NonceCheck::IfPresent(session.nonce.as_ref()),
        access_token: Some(&access.token),
    };
    let claims = match id_token::validate(source, provider, token.secret(), &expected).await {
        Ok(claims) => claims,
        Err(failure) if failure.is_transient() => {
            return Verdict::Unverified(AuthError::Unverified(failure.describe()))
        }
        Err(failure) => {
            return Verdict::Ends(AuthError::SessionEnded(format!(
                "Logto's new ID token was refused: {}",
                failure.describe()
            )))
        }
    };
    match id_token::check_continuity(&session.id_claims, &claims) {
        Ok(()) => Verdict::Good,
        Err(why) => Verdict::Ends(AuthError::SessionEnded(why)),
    }
}
