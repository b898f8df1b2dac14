//! The code exchange and everything that must pass before a sign-in counts: the token request
//! with the PKCE verifier (through `oauth2`, over the capped client of [`super::http`]), the ID
//! token's validation ([`super::id_token`]), and userinfo, whose `sub` must match the ID token's
//! (Core 5.3.2). Also the token client and the reading of a token answer that a refresh shares.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, ClientId, EndpointNotSet, EndpointSet, RedirectUrl,
    RequestTokenError, StandardRevocableToken, StandardTokenResponse,
    TokenResponse as OAuth2TokenResponse, TokenUrl,
};
use openidconnect::core::CoreIdTokenClaims;
use openidconnect::Nonce;
use serde::{Deserialize, Serialize};
use url::Url;

use super::authorize::PendingSignIn;
use super::config::Config;
use super::discovery::Provider;
use super::error::{AuthError, ProviderRefusal};
use super::http::{check_status, network_error, read_limited, Bounded, BoundedError, Http};
use super::id_token::{self, Expected, NonceCheck, Source};
use super::revoke;
use super::session::{claims_of, RawIdToken, Session, Tokens, User};
use super::tokens::{CachedToken, TokenCache, TokenKey};

/// The lifetime given to an access token whose answer has no `expires_in` (RFC 6749 5.1 makes
/// it optional): short, so that a token of unknown life is soon replaced rather than trusted
/// forever.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The `id_token` of a token answer, kept as text so that it is read and judged by
/// [`super::id_token`], which says what is wrong with it, instead of failing the whole answer.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    /// The ID token as sent, unchecked; `None` when the answer has none (a refresh may leave it
    /// out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<RawIdToken>,
}
impl oauth2::ExtraTokenFields for IdTokenField {}

/// A token endpoint's answer (RFC 6749 5.1) with its `id_token` as text. Holds secrets; each
/// token in it redacts its `Debug`.
pub type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// `oauth2`'s client for the token endpoint of one provider.
pub type TokenClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The token client for `provider`'s token endpoint, as a public client (`client_id` in the
/// body, no secret). `redirect_uri` is set for a code exchange, which must repeat the
/// authorization request's; a refresh has none. Fails with [`AuthError::Discovery`] when the
/// provider has no token endpoint.
pub fn token_client(
    provider: &Provider,
    config: &Config,
    redirect_uri: Option<&Url>,
) -> Result<TokenClient, AuthError> {
    let token_url = provider
        .metadata
        .token_endpoint()
        .ok_or_else(|| AuthError::Discovery("it has no token endpoint".into()))?
        .url()
        .clone();
    let client = oauth2::Client::new(ClientId::new(config.app_id.clone()))
        .set_auth_uri(AuthUrl::from_url(
            provider.metadata.authorization_endpoint().url().clone(),
        ))
        .set_token_uri(TokenUrl::from_url(token_url))
        // Logto's Native apps are public clients: the client id goes in the body.
        .set_auth_type(oauth2::AuthType::RequestBody);
    Ok(match redirect_uri {
        Some(uri) => client.set_redirect_uri(RedirectUrl::from_url(uri.clone())),
        None => client,
    })
}

/// Exchanges the code and returns a fully validated session. Consumes the pending sign-in.
/// `provider` is replaced by a newer snapshot if the ID token's checks fetched one. Once Logto
/// has answered with tokens, any failure (an ID token refused, userinfo failing or for another
/// account) revokes the grant they carry before it is reported: a sign-in that does not count
/// leaves nothing alive at Logto.
pub(crate) async fn exchange_code(
    source: &Source<'_>,
    provider: &mut Arc<Provider>,
    pending: PendingSignIn,
    code: AuthorizationCode,
) -> Result<Session, AuthError> {
    let client = token_client(provider, source.config, Some(&pending.redirect_uri))?;
    let answer = client
        .exchange_code(code)
        .set_pkce_verifier(pending.verifier)
        .request_async(&Bounded(source.http))
        .await
        .map_err(token_request_error)?;
    match checked_session(source, provider, pending.nonce, &answer).await {
        Ok(session) => Ok(session),
        Err(e) => {
            if let Some(grant) =
                revoke::grant_of(answer.refresh_token(), Some(answer.access_token()))
            {
                revoke::drop_token(
                    source.http,
                    provider,
                    &source.config.app_id,
                    grant,
                    "the sign-in's answer was refused",
                )
                .await;
            }
            Err(e)
        }
    }
}

/// The session a token answer makes, once its ID token and userinfo have passed every check.
async fn checked_session(
    source: &Source<'_>,
    provider: &mut Arc<Provider>,
    nonce: Nonce,
    answer: &TokenAnswer,
) -> Result<Session, AuthError> {
    let config = source.config;
    let id_token = answer
        .extra_fields()
        .id_token
        .clone()
        .ok_or_else(|| AuthError::Token("the token answer has no ID token".into()))?;
    let access_token = answer.access_token().clone();
    let claims = id_token::validate(
        source,
        provider,
        id_token.secret(),
        &Expected {
            client_id: &config.app_id,
            nonce: NonceCheck::Required(&nonce),
            access_token: Some(&access_token),
        },
    )
    .await
    .map_err(id_token::Failure::into_error)?;
    let user = fetch_user(
        source.http,
        provider,
        &access_token,
        claims.subject().as_str(),
    )
    .await?;
    let user = merge_claims(user, &claims);
    let id_claims = claims_of(&id_token);
    Ok(Session {
        issuer: provider.issuer().to_string(),
        client_id: config.app_id.clone(),
        user,
        tokens: Tokens {
            refresh_token: answer.refresh_token().cloned(),
            id_token: Some(id_token),
            scope: scope_text(answer),
        },
        access: {
            let mut access = TokenCache::default();
            access.insert(TokenKey::default(), cached_token(answer, unix_now()));
            access
        },
        nonce: Some(nonce),
        id_claims,
    })
}

/// The access token of a token answer, with when it expires (an answer without `expires_in`
/// gets [`DEFAULT_ACCESS_TOKEN_LIFETIME`]) and the scopes it was granted.
pub fn cached_token(answer: &TokenAnswer, now: u64) -> CachedToken {
    let lifetime = answer
        .expires_in()
        .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME)
        .as_secs();
    CachedToken {
        token: answer.access_token().clone(),
        expires_at: Some(now.saturating_add(lifetime)),
        lifetime: Some(lifetime),
        scope: scope_text(answer),
    }
}

/// The scopes a token answer says were granted, space separated as in `scope`; `None` when the
/// answer has no `scope`.
pub fn scope_text(answer: &impl OAuth2TokenResponse) -> Option<String> {
    answer
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
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
        .map_err(|_| AuthError::BadAnswer("userinfo is not of the expected form".into()))?;
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
    check_status(status, "userinfo")?;
    let body = read_limited(response).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| AuthError::BadAnswer(format!("userinfo: {}", super::http::json_error(&e))))?;
    let Some(sub) = value.get("sub").and_then(|s| s.as_str()) else {
        return Err(AuthError::BadAnswer(
            "userinfo is not a JSON object with a `sub`".into(),
        ));
    };
    if sub != expected_sub {
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

type TokenError = RequestTokenError<BoundedError, BasicErrorResponse>;

/// Keeps a provider's refusal apart from transport failures and from answers that are not what
/// the protocol requires, and never quotes a body (a token answer that fails to parse may still
/// hold tokens).
pub fn token_request_error(error: TokenError) -> AuthError {
    match error {
        RequestTokenError::ServerResponse(response) => AuthError::Provider(ProviderRefusal::new(
            response.error().as_ref().to_string(),
            response.error_description().cloned(),
        )),
        RequestTokenError::Request(BoundedError::Transport(e)) => network_error(&e),
        RequestTokenError::Request(BoundedError::ServerError(status)) => {
            AuthError::Network(format!("the token endpoint answered HTTP {status}"))
        }
        RequestTokenError::Request(e @ BoundedError::TooLarge) => {
            AuthError::TooLarge(format!("the token endpoint sent {e}"))
        }
        RequestTokenError::Request(BoundedError::Build) => {
            AuthError::Config("the token request could not be built".into())
        }
        RequestTokenError::Parse(e, _) => {
            let path = e.path().to_string();
            let why = super::http::missing_field(&e.inner().to_string())
                .map(|f| format!("it has no `{f}`"))
                .unwrap_or_else(|| match path.as_str() {
                    "." | "" => "it is not a JSON object of the expected form".into(),
                    // Field names come from oauth2's types; values are never repeated.
                    field => format!("`{field}` has the wrong type or value"),
                });
            AuthError::BadAnswer(format!("the token endpoint's answer is not valid: {why}"))
        }
        RequestTokenError::Other(_) => AuthError::BadAnswer(
            "the token endpoint answered with an error that carries no OAuth error".into(),
        ),
    }
}

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970): the unit of
/// every `expires_at` and deadline in this crate.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
