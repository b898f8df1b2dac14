//! A signed-in session: who the user is and the tokens that prove it, plus the compact codec that
//! turns it into the one keychain secret and back. Every token type here redacts its `Debug`.

use openidconnect::{AccessToken, Nonce, RefreshToken};
use serde::{Deserialize, Serialize};

/// Who is signed in, as the window shows it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Social connectors the user came through (keys of userinfo `identities`, e.g. `amazon`).
    #[serde(default)]
    pub identities: Vec<String>,
}

/// A raw ID token (compact JWS). Its `Debug` is redacted; reach the value with [`Self::secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct RawIdToken(String);

impl RawIdToken {
    pub fn new(token: String) -> Self {
        RawIdToken(token)
    }
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RawIdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawIdToken([redacted])")
    }
}

/// The token set. `Debug` of each field is redacted by its type.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: AccessToken,
    /// Seconds since the Unix epoch.
    pub access_expires_at: Option<u64>,
    pub refresh_token: Option<RefreshToken>,
    pub id_token: RawIdToken,
    pub scope: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub issuer: String,
    pub client_id: String,
    pub user: User,
    pub tokens: Tokens,
    /// The nonce of the sign-in: a refreshed ID token that carries one must repeat it.
    pub nonce: Option<Nonce>,
}

/// The keychain format, version 1. Short keys keep it well under the 2,560 bytes Windows
/// Credential Manager allows for one secret.
#[derive(Serialize, Deserialize)]
struct StoredV1 {
    v: u8,
    iss: String,
    aud: String,
    user: User,
    at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<String>,
    idt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Why a stored secret could not be turned back into a session. Carries no part of the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the stored session is not in a format this version reads")]
    Unreadable,
    #[error("the stored session belongs to another issuer or app")]
    OtherTenant,
}

impl Session {
    pub fn encode(&self) -> String {
        let stored = StoredV1 {
            v: 1,
            iss: self.issuer.clone(),
            aud: self.client_id.clone(),
            user: self.user.clone(),
            at: self.tokens.access_token.secret().clone(),
            at_exp: self.tokens.access_expires_at,
            rt: self
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.secret().clone()),
            idt: self.tokens.id_token.secret().to_string(),
            nonce: self.nonce.as_ref().map(|n| n.secret().clone()),
            scope: self.tokens.scope.clone(),
        };
        // A struct of strings and numbers always serialises.
        serde_json::to_string(&stored).unwrap_or_default()
    }

    pub fn decode(text: &str, issuer: &str, client_id: &str) -> Result<Session, DecodeError> {
        // serde_json's errors quote the input near the fault; never let them out.
        let stored: StoredV1 = serde_json::from_str(text).map_err(|_| DecodeError::Unreadable)?;
        if stored.v != 1
            || stored.at.is_empty()
            || stored.idt.is_empty()
            || stored.user.sub.is_empty()
        {
            return Err(DecodeError::Unreadable);
        }
        if stored.iss != issuer || stored.aud != client_id {
            return Err(DecodeError::OtherTenant);
        }
        Ok(Session {
            issuer: stored.iss,
            client_id: stored.aud,
            user: stored.user,
            tokens: Tokens {
                access_token: AccessToken::new(stored.at),
                access_expires_at: stored.at_exp,
                refresh_token: stored.rt.map(RefreshToken::new),
                id_token: RawIdToken::new(stored.idt),
                scope: stored.scope,
            },
            nonce: stored.nonce.map(Nonce::new),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Session {
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
                access_token: AccessToken::new("AT-secret".into()),
                access_expires_at: Some(1_900_000_000),
                refresh_token: Some(RefreshToken::new("RT-secret".into())),
                id_token: RawIdToken::new("IDT-secret".into()),
                scope: Some("openid offline_access".into()),
            },
            nonce: Some(Nonce::new("N-secret".into())),
        }
    }

    #[test]
    fn round_trips() {
        let session = sample();
        let back = Session::decode(&session.encode(), "https://t.logto.app/oidc", "app1").unwrap();
        assert_eq!(back.user, session.user);
        assert_eq!(back.tokens.access_token.secret(), "AT-secret");
        assert_eq!(back.tokens.refresh_token.unwrap().secret(), "RT-secret");
        assert_eq!(back.tokens.id_token.secret(), "IDT-secret");
        assert_eq!(back.tokens.access_expires_at, Some(1_900_000_000));
        assert_eq!(back.nonce.unwrap().secret(), "N-secret");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", sample());
        for secret in ["AT-secret", "RT-secret", "IDT-secret", "N-secret"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("alice@example.com"));
    }

    #[test]
    fn garbage_and_other_tenants_are_refused_without_echo() {
        for bad in [
            "",
            "{",
            "null",
            "{\"v\":2}",
            "RT-secret",
            "{\"v\":1,\"iss\":1}",
        ] {
            let err = Session::decode(bad, "https://t.logto.app/oidc", "app1").unwrap_err();
            assert_eq!(err, DecodeError::Unreadable, "{bad}");
            assert!(!err.to_string().contains("RT-secret"));
        }
        let text = sample().encode();
        assert_eq!(
            Session::decode(&text, "https://other/oidc", "app1").unwrap_err(),
            DecodeError::OtherTenant
        );
        assert_eq!(
            Session::decode(&text, "https://t.logto.app/oidc", "app2").unwrap_err(),
            DecodeError::OtherTenant
        );
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["at"] = serde_json::json!("");
        assert!(Session::decode(&value.to_string(), "https://t.logto.app/oidc", "app1").is_err());
    }
}
