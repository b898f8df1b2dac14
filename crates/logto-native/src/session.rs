//! A signed-in session: who the user is and the tokens that prove it, plus the compact codec that
//! turns it into the one keychain secret and back. Every token type here redacts its `Debug`.
//!
//! The secret must fit 2,560 bytes, and Logto's ID tokens grow with a user's organizations and
//! roles (16 KB and more). So the entry keeps what the app needs: the refresh token always, and
//! the raw ID token only while it fits; when it does not, the ID token's claims that the app
//! uses later (who issued it, for whom, and when: what a refreshed ID token is checked against)
//! take its place, in format 2.

use openidconnect::{AccessToken, Nonce, RefreshToken};
use serde::{Deserialize, Serialize};

use super::tokens::{CachedToken, TokenCache, TokenKey};

/// The most one keychain secret may hold on every platform: Windows Credential Manager's limit
/// (2,560 bytes), which this app keeps everywhere so a session behaves the same on each.
pub const MAX_SECRET_BYTES: usize = 2560;

/// Who is signed in, as the window shows it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's stable id at Logto (the ID token's and userinfo's `sub`); never empty.
    pub sub: String,
    /// The display name: userinfo's `name`, else the ID token's. `None` rather than empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Logto username: userinfo's `username`, else the ID token's `preferred_username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The primary email, as userinfo (else the ID token) gives it; not necessarily verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The avatar's URL, as the provider sent it: unchecked, so show it only through
    /// [`AuthService::load_picture`](crate::AuthService::load_picture). Left out of the keychain entry when room runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Social connectors the user came through (keys of userinfo `identities`, e.g. `amazon`).
    #[serde(default)]
    pub identities: Vec<String>,
}

/// A raw ID token (compact JWS). Its `Debug` is redacted; reach the value with [`Self::secret`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawIdToken(String);

impl RawIdToken {
    /// Wraps the compact JWS as received; nothing is checked here (that is
    /// `id_token::validate`'s job).
    pub fn new(token: String) -> Self {
        RawIdToken(token)
    }
    /// The token itself. A secret: never log it, show it or put it in a URL.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RawIdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawIdToken([redacted])")
    }
}

/// What proves the session, beyond the access tokens. `Debug` of each field is redacted by its
/// type.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The refresh token; `None` when Logto granted none (without `offline_access`), and then
    /// no access token can be renewed. Logto rotates it on every use.
    pub refresh_token: Option<RefreshToken>,
    /// The last validated ID token; `None` after a restore of an entry that could not hold it.
    pub id_token: Option<RawIdToken>,
    /// The scopes the sign-in's token answer granted, space separated; may be left out of the
    /// keychain entry when room runs out.
    pub scope: Option<String>,
}

/// The claims of an ID token that a later refresh is checked against (OpenID Connect Core 12.2),
/// kept when the raw token is too large for the keychain.
pub const KEPT_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time"];

/// The longest profile string kept in the entry; a provider may send anything.
const MAX_PROFILE_CHARS: usize = 256;
/// The most social identities kept in the entry.
const MAX_IDENTITIES: usize = 16;

/// One signed-in session: what the keychain entry holds ([`Session::encode`]) and what is kept
/// in memory beside it (access tokens for resources and organizations). Its `Debug` shows no
/// token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The issuer the session was signed in at; a stored entry for another issuer is not read.
    pub issuer: String,
    /// The app id the session was signed in with; a stored entry for another app is not read.
    pub client_id: String,
    /// Who is signed in.
    pub user: User,
    /// The refresh token, the ID token and the granted scopes.
    pub tokens: Tokens,
    /// Access tokens per resource and organization; only the default one is stored.
    pub access: TokenCache,
    /// The nonce of the sign-in: a refreshed ID token that carries one must repeat it.
    pub nonce: Option<Nonce>,
    /// The claims of the last validated ID token, without `nonce`: all of them while the raw
    /// token is held, the [`KEPT_CLAIMS`] after a restore of an entry that could not hold it.
    pub id_claims: serde_json::Value,
}

/// The claims of a raw ID token, without `nonce` (a secret of the sign-in).
pub fn claims_of(id_token: &RawIdToken) -> serde_json::Value {
    let mut claims = super::tokens::jwt_claims(id_token.secret()).unwrap_or_default();
    if let Some(map) = claims.as_object_mut() {
        map.remove("nonce");
    }
    claims
}

/// The keychain format. Short keys keep it well under the 2,560 bytes Windows Credential
/// Manager allows for one secret. Format 1 holds the raw ID token (`idt`); format 2, written
/// only when that does not fit, holds the [`KEPT_CLAIMS`] of it (`idc`) instead.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u8,
    iss: String,
    aud: String,
    user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idc: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Why a stored secret could not be turned back into a session. Carries no part of the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, a format this version does not read, a field missing or inconsistent.
    #[error("the stored session is not in a format this version reads")]
    Unreadable,
    /// Readable, but for another issuer or app id than the ones given.
    #[error("the stored session belongs to another issuer or app")]
    OtherTenant,
    /// A format version this version does not know: a newer version of the app wrote it, and it
    /// is that version's to read (and to remove).
    #[error("the stored session was written by a newer version of the app")]
    NewerVersion,
}

/// The newest format version this version writes and reads.
const FORMAT: u64 = 2;

impl Session {
    /// The default access token (no resource, no organization), if one is held.
    pub fn default_access_token(&self) -> Option<&AccessToken> {
        self.access.get(&TokenKey::default()).map(|t| &t.token)
    }

    /// The keychain secret, at most [`MAX_SECRET_BYTES`]. What must survive a restart always
    /// goes in: the refresh token (never dropped), the nonce, who the user is, and the ID token
    /// or, when it is too large, the claims of it the app uses. What can be had again goes first
    /// when room runs out: the default access token (a refresh brings a new one), then the
    /// picture URL and scope, then the raw ID token. `None` only if even the essentials do not
    /// fit (a refresh token of kilobytes).
    pub fn encode(&self) -> Option<String> {
        let default = self.access.get(&TokenKey::default());
        let mut stored = Stored {
            v: 1,
            iss: self.issuer.clone(),
            aud: self.client_id.clone(),
            user: self.user.clone(),
            at: default.map(|t| t.token.secret().clone()),
            at_exp: default.and_then(|t| t.expires_at),
            rt: self
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.secret().clone()),
            idt: self
                .tokens
                .id_token
                .as_ref()
                .map(|t| t.secret().to_string()),
            idc: None,
            nonce: self.nonce.as_ref().map(|n| n.secret().clone()),
            scope: self.tokens.scope.clone(),
        };
        let fits = |s: &Stored| {
            serde_json::to_string(s)
                .ok()
                .filter(|t| t.len() <= MAX_SECRET_BYTES)
        };
        if stored.idt.is_some() {
            if let Some(text) = fits(&stored) {
                return Some(text);
            }
            let (at, at_exp) = (stored.at.take(), stored.at_exp.take());
            if let Some(text) = fits(&stored) {
                return Some(text);
            }
            let (picture, scope) = (stored.user.picture.take(), stored.scope.take());
            if let Some(text) = fits(&stored) {
                return Some(text);
            }
            (stored.at, stored.at_exp) = (at, at_exp);
            (stored.user.picture, stored.scope) = (picture, scope);
        }
        // Format 2: the claims the app uses instead of the raw ID token.
        stored.v = 2;
        stored.idt = None;
        stored.idc = Some(
            KEPT_CLAIMS
                .iter()
                .filter_map(|k| {
                    let v = self.id_claims.get(*k)?;
                    (!v.is_null()).then(|| (k.to_string(), v.clone()))
                })
                .collect(),
        );
        if let Some(text) = fits(&stored) {
            return Some(text);
        }
        stored.at = None;
        stored.at_exp = None;
        if let Some(text) = fits(&stored) {
            return Some(text);
        }
        stored.user.picture = None;
        stored.scope = None;
        if let Some(text) = fits(&stored) {
            return Some(text);
        }
        // A provider may send a profile of any size: keep it to a sane one.
        let cap = |s: &mut Option<String>| {
            if let Some(text) = s {
                *text = text.chars().take(MAX_PROFILE_CHARS).collect();
            }
        };
        cap(&mut stored.user.name);
        cap(&mut stored.user.username);
        cap(&mut stored.user.email);
        stored.user.identities.truncate(MAX_IDENTITIES);
        for identity in &mut stored.user.identities {
            *identity = identity.chars().take(MAX_PROFILE_CHARS).collect();
        }
        fits(&stored)
    }

    /// Reads a keychain secret written by [`Session::encode`] (either format) back into a
    /// session, which must be for `issuer` and `client_id`. The default access token comes back
    /// if it was kept; other access tokens never are. No error quotes the secret.
    pub fn decode(text: &str, issuer: &str, client_id: &str) -> Result<Session, DecodeError> {
        // serde_json's errors quote the input near the fault; never let them out.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| DecodeError::Unreadable)?;
        let version = match value.get("v").and_then(|v| v.as_u64()) {
            Some(v) if v > FORMAT => return Err(DecodeError::NewerVersion),
            Some(v @ 1..) => v,
            _ => return Err(DecodeError::Unreadable),
        };
        let stored: Stored = serde_json::from_value(value).map_err(|_| DecodeError::Unreadable)?;
        if stored.user.sub.is_empty() {
            return Err(DecodeError::Unreadable);
        }
        let (id_token, id_claims) = match (version, stored.idt, stored.idc) {
            (1, Some(idt), None) if !idt.is_empty() => {
                let token = RawIdToken::new(idt);
                let claims = claims_of(&token);
                (Some(token), claims)
            }
            (2, None, Some(idc))
                if idc.get("sub").and_then(|s| s.as_str()) == Some(stored.user.sub.as_str()) =>
            {
                (None, serde_json::Value::Object(idc))
            }
            _ => return Err(DecodeError::Unreadable),
        };
        if stored.iss != issuer || stored.aud != client_id {
            return Err(DecodeError::OtherTenant);
        }
        let mut access = TokenCache::default();
        if let Some(at) = stored.at.filter(|t| !t.is_empty()) {
            access.insert(
                TokenKey::default(),
                CachedToken {
                    token: AccessToken::new(at),
                    expires_at: stored.at_exp,
                    lifetime: None,
                    scope: stored.scope.clone(),
                },
            );
        }
        Ok(Session {
            issuer: stored.iss,
            client_id: stored.aud,
            user: stored.user,
            tokens: Tokens {
                refresh_token: stored.rt.map(RefreshToken::new),
                id_token,
                scope: stored.scope,
            },
            access,
            nonce: stored.nonce.map(Nonce::new),
            id_claims,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Session {
        let mut access = TokenCache::default();
        access.insert(
            TokenKey::default(),
            CachedToken {
                token: AccessToken::new("AT-secret".into()),
                expires_at: Some(1_900_000_000),
                lifetime: None,
                scope: None,
            },
        );
        access.insert(
            TokenKey::new(Some("https://api.example.com"), None),
            CachedToken {
                token: AccessToken::new("API-AT-secret".into()),
                expires_at: Some(1_900_000_000),
                lifetime: None,
                scope: None,
            },
        );
        Session {
            issuer: "https://t.logto.app/oidc".into(),
            client_id: "app1".into(),
            user: User {
                sub: "u1".into(),
                name: Some("Alice".into()),
                username: None,
                email: Some("alice@example.com".into()),
                picture: None,
                identities: vec!["amazon".into()],
            },
            tokens: Tokens {
                refresh_token: Some(RefreshToken::new("RT-secret".into())),
                id_token: Some(RawIdToken::new("IDT-secret".into())),
                scope: Some("openid offline_access".into()),
            },
            access,
            nonce: Some(Nonce::new("N-secret".into())),
            id_claims: serde_json::json!({
                "iss": "https://t.logto.app/oidc", "sub": "u1", "aud": "app1",
                "exp": 1_900_000_000u64, "iat": 1_899_996_400u64, "auth_time": 1_899_990_000u64,
                "name": "Alice",
            }),
        }
    }

    #[test]
    fn round_trips_and_keeps_only_the_default_access_token() {
        let session = sample();
        let text = session.encode().unwrap();
        assert!(
            !text.contains("API-AT-secret"),
            "resource tokens live in memory only"
        );
        let back = Session::decode(&text, "https://t.logto.app/oidc", "app1").unwrap();
        assert_eq!(back.user, session.user);
        assert_eq!(back.default_access_token().unwrap().secret(), "AT-secret");
        assert_eq!(
            back.access.get(&TokenKey::default()).unwrap().expires_at,
            Some(1_900_000_000)
        );
        assert_eq!(back.tokens.refresh_token.unwrap().secret(), "RT-secret");
        assert_eq!(back.tokens.id_token.unwrap().secret(), "IDT-secret");
        assert_eq!(back.nonce.unwrap().secret(), "N-secret");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", sample());
        for secret in [
            "AT-secret",
            "RT-secret",
            "IDT-secret",
            "N-secret",
            "API-AT-secret",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("alice@example.com"));
        // Redacted, not left out: whoever reads the output sees that a token is there.
        assert!(text.contains("RawIdToken([redacted])"), "{text}");
        assert_eq!(
            format!("{:?}", RawIdToken::new("IDT-secret".into())),
            "RawIdToken([redacted])"
        );
    }

    /// Format 2 keeps the ID token's claims in place of the token; they must be the stored
    /// user's, or the entry was not written by a sign-in of that user.
    #[test]
    fn a_format_2_entry_whose_claims_name_another_user_is_refused() {
        let mut session = sample();
        session.tokens.id_token = Some(RawIdToken::new("i".repeat(16 * 1024)));
        let text = session.encode().expect("fits");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["v"], 2, "{text}");
        assert!(Session::decode(&text, "https://t.logto.app/oidc", "app1").is_ok());
        for sub in [
            serde_json::json!("u2"),
            serde_json::json!(""),
            serde_json::Value::Null,
        ] {
            let mut other = value.clone();
            other["idc"]["sub"] = sub.clone();
            assert_eq!(
                Session::decode(&other.to_string(), "https://t.logto.app/oidc", "app1")
                    .unwrap_err(),
                DecodeError::Unreadable,
                "sub {sub}"
            );
        }
        let mut without = value.clone();
        without["idc"].as_object_mut().unwrap().remove("sub");
        assert_eq!(
            Session::decode(&without.to_string(), "https://t.logto.app/oidc", "app1").unwrap_err(),
            DecodeError::Unreadable
        );
    }

    /// Sizes as Logto issues them: an ES384 ID token with Logto's profile claims (about 900
    /// characters), 43-character opaque access and refresh tokens, a long picture URL.
    #[test]
    fn a_realistic_logto_session_fits_the_smallest_keychain() {
        let mut session = sample();
        let claims = format!(
            r#"{{"sub":"k3v9x2mq7pza","name":"Alexandra Example-Longname","picture":"https://lh3.googleusercontent.com/a/{pic}","username":"alexandra","email":"alexandra.example-longname@example.com","email_verified":true,"updated_at":1764140000000,"created_at":1764100000000,"nonce":"{n}","at_hash":"{h}","aud":"abcdefghijklmnopqrstu","exp":1764143600,"iat":1764140000,"iss":"https://abcdef.logto.app/oidc"}}"#,
            pic = "x".repeat(120),
            n = "n".repeat(43),
            h = "h".repeat(22)
        );
        let b64 = |len: usize| "A".repeat(len.div_ceil(3) * 4);
        let id_token = format!("{}.{}.{}", b64(90), b64(claims.len()), b64(96));
        session.tokens.id_token = Some(RawIdToken::new(id_token));
        session.tokens.refresh_token = Some(RefreshToken::new("r".repeat(43)));
        session.nonce = Some(Nonce::new("n".repeat(43)));
        session.user.picture = Some(format!(
            "https://lh3.googleusercontent.com/a/{}",
            "x".repeat(120)
        ));
        session.user.name = Some("Alexandra Example-Longname".into());
        session.user.identities = vec!["amazon".into(), "google".into()];
        let text = session.encode().expect("fits");
        assert!(text.len() <= MAX_SECRET_BYTES, "{} bytes", text.len());
        let back = Session::decode(&text, "https://t.logto.app/oidc", "app1").unwrap();
        assert!(
            back.default_access_token().is_some(),
            "with room to spare the access token stays"
        );
    }

    #[test]
    fn an_oversized_session_drops_the_access_token_then_the_picture_never_the_refresh_token() {
        let mut session = sample();
        session.tokens.id_token = Some(RawIdToken::new("i".repeat(2200)));
        session.user.picture = Some("p".repeat(300));
        let text = session.encode().expect("still fits without the extras");
        assert!(text.len() <= MAX_SECRET_BYTES);
        let back = Session::decode(&text, "https://t.logto.app/oidc", "app1").unwrap();
        assert!(back.default_access_token().is_none());
        assert!(back.user.picture.is_none());
        assert!(
            back.tokens.id_token.is_some(),
            "format 1 while the ID token fits"
        );
        assert_eq!(back.tokens.refresh_token.unwrap().secret(), "RT-secret");
    }

    /// Logto's ID tokens for a user in many organizations, with roles: 8 KB and 16 KB.
    #[test]
    fn an_id_token_too_large_for_the_keychain_is_replaced_by_the_claims_the_app_uses() {
        for size in [8 * 1024, 16 * 1024, 64 * 1024] {
            let mut session = sample();
            session.tokens.id_token = Some(RawIdToken::new("i".repeat(size)));
            session.user.picture = Some("https://example.com/p.png".into());
            let text = session.encode().expect("fits");
            assert!(text.len() <= MAX_SECRET_BYTES, "{} bytes", text.len());
            assert!(
                !text.contains("IDT") && !text.contains("iiii"),
                "no raw ID token"
            );
            let back = Session::decode(&text, "https://t.logto.app/oidc", "app1").unwrap();
            assert!(back.tokens.id_token.is_none());
            assert_eq!(
                back.tokens.refresh_token.as_ref().unwrap().secret(),
                "RT-secret"
            );
            assert_eq!(back.nonce.as_ref().unwrap().secret(), "N-secret");
            for claim in ["iss", "sub", "aud", "exp", "iat", "auth_time"] {
                assert_eq!(back.id_claims[claim], session.id_claims[claim], "{claim}");
            }
            assert!(back.id_claims.get("name").is_none(), "only the kept claims");
            assert_eq!(
                back.default_access_token().map(|t| t.secret().as_str()),
                Some("AT-secret"),
                "with the ID token gone, the access token has room again"
            );
            assert_eq!(back.user, session.user);
        }
    }

    #[test]
    fn a_huge_profile_is_cut_to_size_and_a_huge_refresh_token_is_refused() {
        let mut session = sample();
        session.tokens.id_token = Some(RawIdToken::new("i".repeat(9000)));
        session.user.name = Some("n".repeat(5000));
        session.user.email = Some("e".repeat(5000));
        session.user.identities = (0..100).map(|i| format!("connector-{i}")).collect();
        let text = session.encode().expect("fits once the profile is cut");
        let back = Session::decode(&text, "https://t.logto.app/oidc", "app1").unwrap();
        assert_eq!(back.user.name.map(|n| n.len()), Some(256));
        assert_eq!(back.tokens.refresh_token.unwrap().secret(), "RT-secret");
        session.tokens.refresh_token = Some(RefreshToken::new("r".repeat(3000)));
        assert!(
            session.encode().is_none(),
            "a refresh token is refused, never cut"
        );
    }

    #[test]
    fn a_newer_format_is_told_apart_from_garbage() {
        let mut value: serde_json::Value =
            serde_json::from_str(&sample().encode().unwrap()).unwrap();
        value["v"] = serde_json::json!(3);
        value["something_new"] = serde_json::json!({"x": 1});
        assert_eq!(
            Session::decode(&value.to_string(), "https://t.logto.app/oidc", "app1").unwrap_err(),
            DecodeError::NewerVersion
        );
        assert_eq!(
            Session::decode("{\"v\":3}", "https://t.logto.app/oidc", "app1").unwrap_err(),
            DecodeError::NewerVersion
        );
        assert_eq!(
            Session::decode("{\"v\":2}", "https://t.logto.app/oidc", "app1").unwrap_err(),
            DecodeError::Unreadable,
            "a known format that is incomplete is garbage"
        );
        for v in ["0", "-1", "\"2\"", "1.5", "null"] {
            let text = format!("{{\"v\":{v}}}");
            assert_eq!(
                Session::decode(&text, "https://t.logto.app/oidc", "app1").unwrap_err(),
                DecodeError::Unreadable,
                "{text}"
            );
        }
    }

    #[test]
    fn garbage_and_other_tenants_are_refused_without_echo() {
        for bad in ["", "{", "null", "RT-secret", "{\"v\":1,\"iss\":1}"] {
            let err = Session::decode(bad, "https://t.logto.app/oidc", "app1").unwrap_err();
            assert_eq!(err, DecodeError::Unreadable, "{bad}");
            assert!(!err.to_string().contains("RT-secret"));
        }
        let text = sample().encode().unwrap();
        assert_eq!(
            Session::decode(&text, "https://other/oidc", "app1").unwrap_err(),
            DecodeError::OtherTenant
        );
        assert_eq!(
            Session::decode(&text, "https://t.logto.app/oidc", "app2").unwrap_err(),
            DecodeError::OtherTenant
        );
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["idt"] = serde_json::json!("");
        assert!(Session::decode(&value.to_string(), "https://t.logto.app/oidc", "app1").is_err());
    }
}
