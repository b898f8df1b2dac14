//! Access tokens in memory: one per (API resource, organization), each with its expiry, and the
//! rule for when one is too old to hand out. Time comes from a [`Clock`] so the rule can be tested
//! with tokio's paused clock instead of sleeps.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openidconnect::AccessToken;

/// Refresh at most this long before a token expires, so a token handed out still has time to be
/// used.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// How long before its expiry a token is refreshed: [`EXPIRY_MARGIN`], or a quarter of its
/// lifetime when that is shorter. A fixed 60 s would refresh a token that lives 60 s (Logto lets
/// an API resource set any lifetime) on every call; a quarter still leaves it most of its life.
/// Of unknown lifetime (a token restored from the keychain): the full margin.
pub fn refresh_margin(lifetime: Option<u64>) -> u64 {
    let full = EXPIRY_MARGIN.as_secs();
    lifetime.map_or(full, |l| (l / 4).min(full))
}

/// Which access token: the default one (userinfo), one for an API resource (RFC 8707), or an
/// organization token (Logto's `organization_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TokenKey {
    /// The API resource indicator (RFC 8707), e.g. `https://api.example.com`; `None` for none.
    pub resource: Option<String>,
    /// The Logto organization id; `None` for none.
    pub organization: Option<String>,
}

impl TokenKey {
    /// A key with blank values (empty or only spaces) taken as none, and the others trimmed, so
    /// `Some("")` and `None` name the same token.
    pub fn new(resource: Option<&str>, organization: Option<&str>) -> Self {
        let clean = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        TokenKey {
            resource: clean(resource),
            organization: clean(organization),
        }
    }
}

/// One access token with its expiry. Its `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The access token itself (a secret: reach it with `secret()`, never log it).
    pub(crate) token: AccessToken,
    /// Seconds since the Unix epoch. Every token this version receives has one (an answer without
    /// `expires_in` gets a default); `None` only for an entry stored without it.
    pub(crate) expires_at: Option<u64>,
    /// How long it was given to live, in seconds, when it arrived (see [`refresh_margin`]).
    pub(crate) lifetime: Option<u64>,
    /// The scopes it was granted, space separated, when the token answer said.
    pub(crate) scope: Option<String>,
}

impl CachedToken {
    /// The access token itself, for an `Authorization: Bearer` header. A secret: never log it,
    /// show it or put it in a URL.
    ///
    /// ```no_run
    /// # async fn call(auth: &logto_native::AuthService) -> Result<(), logto_native::AuthError> {
    /// let token = auth.get_access_token(Some("https://api.example.com"), None).await?;
    /// let header = format!("Bearer {}", token.secret());
    /// # let _ = header; Ok(()) }
    /// ```
    pub fn secret(&self) -> &str {
        self.token.secret()
    }

    /// When it expires, in seconds since the Unix epoch (`None` only for a token restored from
    /// an entry stored without it).
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// The scopes it was granted, space separated, when the token answer said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Fresh enough to hand out at `now`: more than its [`refresh_margin`] left. A token of
    /// unknown expiry is not: it is replaced rather than trusted forever.
    pub(crate) fn is_fresh(&self, now: u64) -> bool {
        match self.expires_at {
            Some(at) => at > now.saturating_add(refresh_margin(self.lifetime)),
            None => false,
        }
    }

    /// What may be shown of this token for `resource` or `organization_id` (a window's panel, a
    /// script's `--json`): never the token itself.
    pub fn info(&self, resource: Option<String>, organization_id: Option<String>) -> TokenInfo {
        TokenInfo {
            resource,
            organization_id,
            expires_at: self.expires_at,
            scope: self.scope.clone(),
            claims: jwt_claims(self.token.secret()),
        }
    }
}

/// The non-secret parts of an access token, as JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenInfo {
    /// The API resource it is for (RFC 8707), if one was asked for.
    pub resource: Option<String>,
    /// The organization it is for, if one was asked for.
    pub organization_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// The scopes it was granted, space separated.
    pub scope: Option<String>,
    /// The claims of a JWT access token (an API's or an organization's); `None` when opaque.
    pub claims: Option<serde_json::Value>,
}

/// The access tokens of one session.
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    tokens: HashMap<TokenKey, CachedToken>,
}

impl TokenCache {
    /// The token for `key` if it is fresh enough to hand out at `now` (Unix seconds; see
    /// [`CachedToken::is_fresh`]).
    pub fn fresh(&self, key: &TokenKey, now: u64) -> Option<&CachedToken> {
        self.tokens.get(key).filter(|t| t.is_fresh(now))
    }
    /// The token for `key`, however old.
    pub fn get(&self, key: &TokenKey) -> Option<&CachedToken> {
        self.tokens.get(key)
    }
    /// Keeps `token` for `key`, replacing any before it.
    pub fn insert(&mut self, key: TokenKey, token: CachedToken) {
        self.tokens.insert(key, token);
    }
    /// Every token held, with what it is for, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&TokenKey, &CachedToken)> {
        self.tokens.iter()
    }
}

/// Where "now" comes from: the wall clock in the app (token expiries are wall-clock times, and a
/// laptop's sleep must count), tokio's clock in tests.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system's wall clock.
    System,
    /// Wall time at `origin`, advanced by tokio's (pausable) clock.
    #[cfg(test)]
    Tokio {
        /// Wall time at `origin`, in Unix seconds.
        wall_at_origin: u64,
        /// The tokio instant the clock counts from.
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that follows tokio's time from the current wall time.
    #[cfg(test)]
    pub fn tokio() -> Self {
        Clock::Tokio {
            wall_at_origin: system_now(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now, in whole seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        match self {
            Clock::System => system_now(),
            #[cfg(test)]
            Clock::Tokio {
                wall_at_origin,
                origin,
            } => wall_at_origin.saturating_add(origin.elapsed().as_secs()),
        }
    }
}

/// The payload of a JWT, decoded but not verified: for showing the claims of a token this app
/// already validated (an ID token) or that is meant for an API (an access token). `None` for an
/// opaque token.
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|v| v.is_object())
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: Option<u64>) -> CachedToken {
        CachedToken {
            token: AccessToken::new("t".into()),
            expires_at,
            lifetime: None,
            scope: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_refreshed_a_margin_before_it_expires() {
        let clock = Clock::tokio();
        let mut cache = TokenCache::default();
        let key = TokenKey::new(Some("https://api.example.com"), None);
        cache.insert(key.clone(), token(Some(clock.now() + 120)));

        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(
            cache.fresh(&key, clock.now()).is_some(),
            "61 s left is more than the margin"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            cache.fresh(&key, clock.now()).is_none(),
            "60 s left is within the margin"
        );
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(cache.fresh(&key, clock.now()).is_none());
        assert!(
            cache.get(&key).is_some(),
            "a stale token is kept until replaced"
        );
    }

    /// Logto lets an API resource give its tokens any lifetime: 60 s and 20 s tokens are not
    /// refreshed on every call, but a quarter of their life before they expire.
    #[tokio::test(start_paused = true)]
    async fn a_short_lived_token_is_refreshed_a_quarter_of_its_life_before_it_expires() {
        for (lifetime, margin) in [(3600, 60), (240, 60), (60, 15), (20, 5), (2, 0)] {
            let clock = Clock::tokio();
            let key = TokenKey::new(Some("https://api.example.com"), None);
            let mut cache = TokenCache::default();
            cache.insert(
                key.clone(),
                CachedToken {
                    lifetime: Some(lifetime),
                    ..token(Some(clock.now() + lifetime))
                },
            );
            assert_eq!(refresh_margin(Some(lifetime)), margin);
            tokio::time::advance(Duration::from_secs(lifetime - margin - 1)).await;
            assert!(
                cache.fresh(&key, clock.now()).is_some(),
                "{lifetime} s: fresh {} s before expiry",
                margin + 1
            );
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(
                cache.fresh(&key, clock.now()).is_none(),
                "{lifetime} s: refreshed {margin} s before expiry"
            );
        }
        assert_eq!(
            refresh_margin(None),
            60,
            "unknown lifetime: the full margin"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_kept_per_resource_and_organization() {
        let clock = Clock::tokio();
        let mut cache = TokenCache::default();
        let api = TokenKey::new(Some("https://api.example.com"), None);
        let org = TokenKey::new(None, Some("org-1"));
        cache.insert(api.clone(), token(Some(clock.now() + 3600)));
        assert!(cache.fresh(&api, clock.now()).is_some());
        assert!(cache.fresh(&org, clock.now()).is_none());
        assert!(cache.fresh(&TokenKey::default(), clock.now()).is_none());
        assert_eq!(TokenKey::new(Some(" "), Some("")), TokenKey::default());
    }

    #[test]
    fn jwt_claims_reads_a_payload_and_rejects_the_rest() {
        // {"aud":"https://api.example.com","scope":"read"}
        let jwt = "eyJhbGciOiJFUzM4NCJ9.eyJhdWQiOiJodHRwczovL2FwaS5leGFtcGxlLmNvbSIsInNjb3BlIjoicmVhZCJ9.c2ln";
        let claims = jwt_claims(jwt).unwrap();
        assert_eq!(claims["aud"], "https://api.example.com");
        assert_eq!(jwt_claims("opaque-token-43-chars"), None);
        assert_eq!(jwt_claims("a.b"), None);
        assert_eq!(jwt_claims("a.!!!.c"), None);
        assert_eq!(jwt_claims("a.b.c.d"), None);
    }

    #[test]
    fn a_token_of_unknown_expiry_is_never_fresh() {
        assert!(!token(None).is_fresh(0));
    }
}
