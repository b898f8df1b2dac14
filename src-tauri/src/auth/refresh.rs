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

#[cfg(test)]
mod tests {
    //! A stand-in token endpoint (tiny_http on loopback) answers with ID tokens signed by a key
    //! made in the test, so each check on a refreshed ID token can be made to fail.

    use super::*;
    use crate::auth::discovery::tests::logto_document;
    use crate::auth::discovery::{check_metadata, LogtoProviderMetadata};
    use crate::auth::session::tests::sample;
    use chrono::{Duration as ChronoDuration, Utc};
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use openidconnect::core::{
        CoreEdDsaPrivateSigningKey, CoreIdToken, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    };
    use openidconnect::{
        Audience, EmptyAdditionalClaims, IdTokenClaims, IssuerUrl, Nonce, PrivateSigningKey,
        StandardClaims, SubjectIdentifier,
    };

    struct Stand {
        issuer: String,
        config: Config,
        provider: Provider,
        key: CoreEdDsaPrivateSigningKey,
        server: std::sync::Arc<tiny_http::Server>,
    }

    fn stand() -> Stand {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let config = Config::new(&format!("http://127.0.0.1:{port}"), "app1").unwrap();
        let issuer = config.issuer();
        let pem = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let key = CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, None).unwrap();
        let mut doc = logto_document(&issuer);
        doc["id_token_signing_alg_values_supported"] = serde_json::json!(["EdDSA"]);
        let metadata: LogtoProviderMetadata = serde_json::from_value(doc).unwrap();
        let (id_token_algs, requires_iss) = check_metadata(&issuer, &metadata).unwrap();
        let metadata = metadata.set_jwks(CoreJsonWebKeySet::new(vec![key.as_verification_key()]));
        Stand {
            issuer,
            config,
            provider: Provider {
                metadata,
                id_token_algs,
                requires_iss,
            },
            key,
            server: std::sync::Arc::new(server),
        }
    }

    impl Stand {
        fn id_token(&self, issuer: &str, sub: &str, nonce: Option<&str>) -> String {
            let now = Utc::now();
            let claims = IdTokenClaims::new(
                IssuerUrl::new(issuer.to_string()).unwrap(),
                vec![Audience::new("app1".into())],
                now + ChronoDuration::hours(1),
                now,
                StandardClaims::new(SubjectIdentifier::new(sub.into())),
                EmptyAdditionalClaims {},
            )
            .set_nonce(nonce.map(|n| Nonce::new(n.into())));
            CoreIdToken::new(
                claims,
                &self.key,
                CoreJwsSigningAlgorithm::EdDsa,
                None,
                None,
            )
            .unwrap()
            .to_string()
        }

        /// Answers the next token request with `status` and `body`, then refreshes `session`.
        async fn refresh_with(&self, status: u16, body: String) -> Result<Refreshed, AuthError> {
            let server = self.server.clone();
            let answer = std::thread::spawn(move || {
                let request = server.recv().unwrap();
                let header =
                    tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(header);
                request.respond(response).unwrap();
            });
            let mut session = sample();
            session.issuer = self.issuer.clone();
            session.client_id = "app1".into();
            let http = crate::auth::http::client().unwrap();
            let result = refresh(
                &http,
                &self.provider,
                &self.config,
                &session,
                &TokenKey::default(),
                0,
            )
            .await;
            answer.join().unwrap();
            result
        }

        fn answer(&self, id_token: Option<String>) -> String {
            let mut body = serde_json::json!({
                "access_token": "AT-2", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "RT-2", "scope": "openid offline_access"
            });
            if let Some(token) = id_token {
                body["id_token"] = serde_json::json!(token);
            }
            body.to_string()
        }
    }

    #[tokio::test]
    async fn a_good_answer_rotates_the_refresh_token_and_keeps_the_new_id_token() {
        let s = stand();
        let token = s.id_token(&s.issuer, "u1", Some("N-secret"));
        let refreshed = s
            .refresh_with(200, s.answer(Some(token.clone())))
            .await
            .unwrap();
        assert_eq!(refreshed.refresh_token.unwrap().secret(), "RT-2");
        assert_eq!(refreshed.access.token.secret(), "AT-2");
        assert_eq!(refreshed.access.expires_at, Some(3600));
        assert_eq!(refreshed.id_token.unwrap().secret(), token);
    }

    #[tokio::test]
    async fn an_id_token_without_a_nonce_is_fine_and_none_at_all_is_fine() {
        let s = stand();
        let token = s.id_token(&s.issuer, "u1", None);
        assert!(s.refresh_with(200, s.answer(Some(token))).await.is_ok());
        let refreshed = s.refresh_with(200, s.answer(None)).await.unwrap();
        assert!(refreshed.id_token.is_none());
    }

    #[tokio::test]
    async fn another_subject_ends_the_session() {
        let s = stand();
        let token = s.id_token(&s.issuer, "someone-else", Some("N-secret"));
        let err = s
            .refresh_with(200, s.answer(Some(token)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AuthError::SessionEnded(m) if m.contains("another account")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn another_nonce_or_issuer_or_a_bad_signature_ends_the_session() {
        let s = stand();
        let token = s.id_token(&s.issuer, "u1", Some("not-the-sign-in-nonce"));
        let err = s
            .refresh_with(200, s.answer(Some(token)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "session.ended", "{err}");

        let token = s.id_token("http://127.0.0.1:1/oidc", "u1", Some("N-secret"));
        let err = s
            .refresh_with(200, s.answer(Some(token)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "session.ended", "{err}");

        let mut token = s.id_token(&s.issuer, "u1", Some("N-secret"));
        token.push('A');
        let err = s
            .refresh_with(200, s.answer(Some(token)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "session.ended", "{err}");
    }

    #[tokio::test]
    async fn invalid_grant_is_the_providers_and_a_503_is_the_networks() {
        let s = stand();
        let body = r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#;
        let err = s.refresh_with(400, body.into()).await.unwrap_err();
        assert!(err.is_invalid_grant(), "{err}");
        let err = s
            .refresh_with(503, "Service Unavailable".into())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "network.unreachable", "{err}");
        assert!(
            !err.to_string().contains("Service Unavailable"),
            "no body is quoted"
        );
    }
}
