//! The authorization request: a fresh PKCE S256 pair (RFC 7636), `state` and `nonce`, the
//! loopback `redirect_uri`, `prompt=consent` (Logto grants `offline_access` only with it), the
//! scopes, API resources (RFC 8707) and, for "Continue with Amazon", `direct_sign_in`.
//! Building it hands back the secrets in a [`PendingSignIn`] that the code exchange consumes.

use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    ClientId, CsrfToken, LanguageTag, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope,
};
use url::Url;

use super::config::Config;
use super::discovery::Provider;
use super::error::AuthError;

/// How the person chose to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInMethod {
    /// Logto's own sign-in page.
    #[default]
    Logto,
    /// Straight to the Amazon connector (`direct_sign_in=social:amazon`).
    Amazon,
}

/// The secrets of one sign-in in flight. Deliberately not `Clone`: it is consumed by the code
/// exchange, so a verifier or nonce cannot be used for two exchanges.
pub struct PendingSignIn {
    /// The PKCE code verifier: sent only with the code exchange, never in the authorization URL
    /// (which carries its S256 challenge).
    pub verifier: PkceCodeVerifier,
    /// The `state` sent in the authorization URL; the callback must bring back exactly this.
    pub state: CsrfToken,
    /// The `nonce` sent in the authorization URL; the ID token must carry exactly this.
    pub nonce: Nonce,
    /// The loopback `redirect_uri` of the request, sent again with the code exchange.
    pub redirect_uri: Url,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("verifier", &"[redacted]")
            .field("state", &"[redacted]")
            .field("nonce", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish()
    }
}

/// Builds the authorization URL and the secrets that go with it: the URL is for the browser, the
/// [`PendingSignIn`] stays in this program. Each call makes a fresh verifier, `state` and `nonce`.
/// Asks for `prompt=consent`, every scope of `config` (see [`Config::all_scopes`]), each of its
/// API resources, its `ui_locales`, and `direct_sign_in=social:amazon` for
/// [`SignInMethod::Amazon`].
pub fn authorization_request(
    provider: &Provider,
    config: &Config,
    redirect_uri: &Url,
    method: SignInMethod,
) -> Result<(Url, PendingSignIn), AuthError> {
    // The authorization request only: token requests go through `exchange::token_client`.
    let client = CoreClient::from_provider_metadata(
        provider.metadata.clone(),
        ClientId::new(config.app_id.clone()),
        None,
    )
    .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_prompt(CoreAuthPrompt::Consent);
    for scope in config.all_scopes() {
        // The flow adds `openid` itself.
        if scope != "openid" {
            request = request.add_scope(Scope::new(scope));
        }
    }
    for resource in &config.resources {
        request = request.add_extra_param("resource", resource.clone());
    }
    if method == SignInMethod::Amazon {
        request = request.add_extra_param("direct_sign_in", "social:amazon");
    }
    if let Some(locales) = &config.ui_locales {
        request = request.add_ui_locale(LanguageTag::new(locales.clone()));
    }
    let (url, state, nonce) = request.url();
    Ok((
        url,
        PendingSignIn {
            verifier,
            state,
            nonce,
            redirect_uri: redirect_uri.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::tests::{logto_document, provider_with};
    use std::collections::HashMap;

    fn provider() -> Provider {
        let issuer = "https://tenant.logto.app/oidc";
        provider_with(issuer, logto_document(issuer), Default::default())
    }

    fn params(url: &Url) -> HashMap<String, Vec<String>> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in url.query_pairs() {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        map
    }

    #[test]
    fn the_request_carries_pkce_s256_state_nonce_consent_and_scopes() {
        let mut config = Config::new("https://tenant.logto.app", "app1").unwrap();
        config.resources = vec![
            "https://api.example.com".into(),
            "https://b.example.com".into(),
        ];
        config.ui_locales = Some("ja".into());
        let redirect = Url::parse("http://127.0.0.1:49152/callback").unwrap();
        let (url, pending) =
            authorization_request(&provider(), &config, &redirect, SignInMethod::Amazon).unwrap();
        assert!(url
            .as_str()
            .starts_with("https://tenant.logto.app/oidc/auth?"));
        let p = params(&url);
        let one = |k: &str| p.get(k).map(|v| v.join("|")).unwrap_or_default();
        assert_eq!(one("response_type"), "code");
        assert_eq!(one("client_id"), "app1");
        assert_eq!(one("redirect_uri"), "http://127.0.0.1:49152/callback");
        assert_eq!(one("code_challenge_method"), "S256");
        assert_eq!(one("prompt"), "consent");
        assert_eq!(one("direct_sign_in"), "social:amazon");
        assert_eq!(one("ui_locales"), "ja");
        assert_eq!(
            p["resource"],
            ["https://api.example.com", "https://b.example.com"]
        );
        let scopes: Vec<&str> = p["scope"][0].split(' ').collect();
        for s in ["openid", "profile", "offline_access", "email", "identities"] {
            assert!(scopes.contains(&s), "{s} missing from {scopes:?}");
        }
        assert_eq!(scopes.iter().filter(|s| **s == "openid").count(), 1);
        assert_eq!(one("state"), pending.state.secret().as_str());
        assert_eq!(one("nonce"), pending.nonce.secret().as_str());
        // The challenge is the S256 of the verifier, and the verifier never travels.
        let expected = PkceCodeChallenge::from_code_verifier_sha256(&pending.verifier);
        assert_eq!(one("code_challenge"), expected.as_str());
        assert!(!url.as_str().contains(pending.verifier.secret().as_str()));
        // High entropy: at least 128 bits, base64url-encoded.
        assert!(pending.state.secret().len() >= 22);
        assert!(pending.nonce.secret().len() >= 22);
        assert!(pending.verifier.secret().len() >= 43);
    }

    #[test]
    fn each_request_is_fresh_and_plain_sign_in_has_no_direct_sign_in() {
        let config = Config::new("https://tenant.logto.app", "app1").unwrap();
        let redirect = Url::parse("http://127.0.0.1:1/callback").unwrap();
        let (a_url, a) =
            authorization_request(&provider(), &config, &redirect, SignInMethod::Logto).unwrap();
        let (_, b) =
            authorization_request(&provider(), &config, &redirect, SignInMethod::Logto).unwrap();
        assert_ne!(a.state.secret(), b.state.secret());
        assert_ne!(a.nonce.secret(), b.nonce.secret());
        assert_ne!(a.verifier.secret(), b.verifier.secret());
        assert!(!params(&a_url).contains_key("direct_sign_in"));
        assert!(!format!("{a:?}").contains(a.state.secret().as_str()));
    }
}
