//! Discovery: fetches `<endpoint>/oidc/.well-known/openid-configuration` and the JWKS, and
//! decides whether to trust them. The issuer must be exactly the one the config implies, every
//! endpoint must sit on the issuer's origin, `http` is allowed only on loopback, S256 PKCE must be
//! on offer, and only asymmetric ID token algorithms are kept (never `none`, never HS*).
//!
//! It also keeps what it fetched (`Discovered`): providers rotate their keys (OpenID Connect
//! Core 10.1.1; Logto's Console has a button for it, and can switch between EC and RSA keys, which
//! changes the algorithms its discovery lists), so an ID token signed with a key or an algorithm
//! the app has not seen makes discovery and the keys be fetched again, at most once a minute, so
//! that a provider or an attacker sending made-up `kid`s cannot make the app hammer it.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, ProviderMetadata};
use serde::{Deserialize, Serialize};
use url::Url;

use super::config::{is_loopback, Config};
use super::error::AuthError;
use super::http::{get_json, Http};

/// The parts of Logto's discovery document that the Core types leave out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogtoMetadata {
    /// RFC 7009 token revocation, where sign-out revokes the refresh token.
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    /// OpenID Connect RP-Initiated Logout, where the browser session can be ended.
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
    /// RFC 9207: whether the provider puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 8414 PKCE methods; when listed, `S256` must be among them.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for LogtoMetadata {}

/// A discovery document as `openidconnect` reads it, with [`LogtoMetadata`] added.
pub type LogtoProviderMetadata = ProviderMetadata<
    LogtoMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// ID token algorithms this app will verify. Asymmetric only: a public client has no secret, so
/// HS* would mean a key anyone could know, and `none` means no signature at all.
pub(crate) const ACCEPTED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A discovered, checked provider: metadata, its signing keys, and what was derived from them.
/// A snapshot: when a token shows it is stale, `Discovered` fetches a new one whole.
#[derive(Clone, Debug)]
pub struct Provider {
    /// The discovery document, after [`check_metadata`] accepted it.
    pub metadata: LogtoProviderMetadata,
    /// The ID token algorithms the provider offers that this crate accepts (asymmetric only;
    /// never empty); ID tokens signed any other way are refused.
    pub id_token_algs: Vec<CoreJwsSigningAlgorithm>,
    /// RFC 9207: when the provider says it sends `iss`, a callback without it is refused.
    pub requires_iss: bool,
    /// The signing keys, as fetched with this document.
    pub keys: CoreJsonWebKeySet,
}

/// How often a token may make discovery and the keys be fetched again.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Discovery as this program last fetched it, and the rule for fetching it again. Providers
/// rotate their signing keys (OpenID Connect Core 10.1.1), and Logto can switch a tenant from EC
/// to RSA keys and back; its discovery then lists other ID token algorithms. So a token signed
/// with a key, or an algorithm, that the snapshot does not know is a reason to fetch discovery
/// and the keys again, never proof of a forgery. Such refetches happen at most once per
/// [`REFETCH_INTERVAL`], so a provider or an attacker sending made-up `kid`s cannot make the app
/// hammer it; the first one after a fetch made for other reasons (the start-up's) is always
/// allowed.
pub(crate) struct Discovered {
    current: tokio::sync::Mutex<Option<Arc<Provider>>>,
    /// When a token last made discovery be fetched again; also what makes those fetches one at a
    /// time (a second caller waits, then finds the snapshot already new).
    last_refetch: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Discovered {
    pub(crate) fn new() -> Self {
        Discovered {
            current: tokio::sync::Mutex::new(None),
            last_refetch: tokio::sync::Mutex::new(None),
        }
    }

    /// Discovery, fetched once and kept; a failure is not kept, so the next call tries again.
    pub(crate) async fn get(
        &self,
        http: &Http,
        config: &Config,
    ) -> Result<Arc<Provider>, AuthError> {
        let mut cached = self.current.lock().await;
        if let Some(provider) = cached.as_ref() {
            return Ok(provider.clone());
        }
        let provider = Arc::new(discover(http, config).await?);
        *cached = Some(provider.clone());
        Ok(provider)
    }

    /// After `seen` could not check a token (a key or an algorithm it does not know): fetches
    /// discovery and the keys again, unless a token made that happen less than the minimum
    /// interval ago. Returns the snapshot to check again with (one another caller fetched in the
    /// meantime counts), or `None` when nothing newer may be fetched yet. A failed fetch keeps
    /// the old snapshot and counts as a try (a provider that is down is not asked again at once
    /// either).
    pub(crate) async fn refetch(
        &self,
        http: &Http,
        config: &Config,
        seen: &Arc<Provider>,
    ) -> Result<Option<Arc<Provider>>, AuthError> {
        let mut last = self.last_refetch.lock().await;
        if let Some(current) = self.current.lock().await.as_ref() {
            if !Arc::ptr_eq(current, seen) {
                return Ok(Some(current.clone()));
            }
        }
        let now = tokio::time::Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REFETCH_INTERVAL) {
            return Ok(None);
        }
        *last = Some(now);
        let fresh = Arc::new(discover(http, config).await?);
        tracing::info!(
            keys = fresh.keys.keys().len(),
            algorithms = ?fresh.id_token_algs,
            "fetched the provider's discovery and signing keys again"
        );
        *self.current.lock().await = Some(fresh.clone());
        Ok(Some(fresh))
    }
}

async fn fetch_jwks(http: &Http, url: &Url) -> Result<CoreJsonWebKeySet, AuthError> {
    let jwks: CoreJsonWebKeySet = get_json(http, url).await.map_err(|e| match e {
        AuthError::BadAnswer(m) => {
            AuthError::Discovery(format!("the key set could not be used ({m})"))
        }
        other => other,
    })?;
    if jwks.keys().is_empty() {
        return Err(AuthError::Discovery("the key set holds no keys".into()));
    }
    Ok(jwks)
}

impl Provider {
    /// The issuer, exactly as the configuration implies it (`<endpoint>/oidc`): discovery refused
    /// any other.
    pub fn issuer(&self) -> &str {
        self.metadata.issuer().as_str()
    }
    /// Where refresh tokens are revoked (RFC 7009), if the provider has such an endpoint.
    pub fn revocation_endpoint(&self) -> Option<&Url> {
        self.metadata
            .additional_metadata()
            .revocation_endpoint
            .as_ref()
    }
    /// Where the browser's session at the provider is ended (RP-Initiated Logout), if offered.
    pub fn end_session_endpoint(&self) -> Option<&Url> {
        self.metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
    }
}

/// Fetches and checks discovery and the JWKS: the document from
/// `<issuer>/.well-known/openid-configuration`, checked by [`check_metadata`], then the keys from
/// its `jwks_uri`. Fails with [`AuthError::Discovery`] for a document or key set that must not be
/// trusted or cannot be used (including an empty key set), and with the errors of
/// [`get_json`] for the fetches themselves.
pub async fn discover(http: &Http, config: &Config) -> Result<Provider, AuthError> {
    let expected_issuer = config.issuer();
    let url = Url::parse(&format!(
        "{expected_issuer}/.well-known/openid-configuration"
    ))
    .map_err(|_| AuthError::Config("the endpoint does not form a discovery URL".into()))?;
    let metadata: LogtoProviderMetadata = get_json(http, &url).await.map_err(|e| match e {
        AuthError::BadAnswer(m) => {
            AuthError::Discovery(format!("the discovery document could not be used ({m})"))
        }
        other => other,
    })?;
    let (id_token_algs, requires_iss) = check_metadata(&expected_issuer, &metadata)?;
    let keys = fetch_jwks(http, metadata.jwks_uri().url()).await?;
    Ok(Provider {
        keys,
        metadata,
        id_token_algs,
        requires_iss,
    })
}

/// The checks on a discovery document, as one pure function. Returns the ID token algorithms to
/// accept and whether callbacks must carry `iss`.
pub fn check_metadata(
    expected_issuer: &str,
    metadata: &LogtoProviderMetadata,
) -> Result<(Vec<CoreJwsSigningAlgorithm>, bool), AuthError> {
    // OpenID Connect Discovery 4.3: the issuer must be identical to the one used to look it up.
    if metadata.issuer().as_str() != expected_issuer {
        return Err(AuthError::Discovery(format!(
            "it names the issuer {:?}, expected {:?}",
            metadata.issuer().as_str(),
            expected_issuer
        )));
    }
    let issuer = Url::parse(expected_issuer)
        .map_err(|_| AuthError::Discovery("the issuer is not a URL".into()))?;
    check_transport(&issuer, "issuer")?;

    let extra = metadata.additional_metadata();
    let token = metadata
        .token_endpoint()
        .ok_or_else(|| AuthError::Discovery("it has no token endpoint".into()))?;
    let mut endpoints: Vec<(&str, &Url)> = vec![
        (
            "authorization_endpoint",
            metadata.authorization_endpoint().url(),
        ),
        ("token_endpoint", token.url()),
        ("jwks_uri", metadata.jwks_uri().url()),
    ];
    if let Some(userinfo) = metadata.userinfo_endpoint() {
        endpoints.push(("userinfo_endpoint", userinfo.url()));
    } else {
        return Err(AuthError::Discovery("it has no userinfo endpoint".into()));
    }
    if let Some(url) = &extra.revocation_endpoint {
        endpoints.push(("revocation_endpoint", url));
    }
    if let Some(url) = &extra.end_session_endpoint {
        endpoints.push(("end_session_endpoint", url));
    }
    for (name, url) in endpoints {
        check_transport(url, name)?;
        if url.origin() != issuer.origin() {
            return Err(AuthError::Discovery(format!(
                "its {name} is on another origin ({})",
                url.origin().ascii_serialization()
            )));
        }
    }

    if let Some(methods) = &extra.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err(AuthError::Discovery(
                "it does not offer PKCE with S256".into(),
            ));
        }
    }

    let algs: Vec<CoreJwsSigningAlgorithm> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| ACCEPTED_ALGS.contains(alg))
        .cloned()
        .collect();
    if algs.is_empty() {
        return Err(AuthError::Discovery(
            "it signs ID tokens only with algorithms this app refuses (none or HS*)".into(),
        ));
    }
    let requires_iss = extra
        .authorization_response_iss_parameter_supported
        .unwrap_or(false);
    Ok((algs, requires_iss))
}

fn check_transport(url: &Url, name: &str) -> Result<(), AuthError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        scheme => Err(AuthError::Discovery(format!(
            "its {name} uses {scheme}, and only https (or http on loopback) is allowed"
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    pub(crate) fn logto_document(issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/me"),
            "jwks_uri": format!("{issuer}/jwks"),
            "revocation_endpoint": format!("{issuer}/token/revocation"),
            "end_session_endpoint": format!("{issuer}/session/end"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES384"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true
        })
    }

    /// A checked provider from a discovery document and a key set, without the network.
    pub(crate) fn provider_with(issuer: &str, doc: Value, jwks: CoreJsonWebKeySet) -> Provider {
        let metadata: LogtoProviderMetadata = serde_json::from_value(doc).unwrap();
        let (id_token_algs, requires_iss) = check_metadata(issuer, &metadata).unwrap();
        Provider {
            metadata,
            id_token_algs,
            requires_iss,
            keys: jwks,
        }
    }

    fn check(issuer: &str, doc: Value) -> Result<(Vec<CoreJwsSigningAlgorithm>, bool), AuthError> {
        let metadata: LogtoProviderMetadata = serde_json::from_value(doc).unwrap();
        check_metadata(issuer, &metadata)
    }

    const ISSUER: &str = "https://tenant.logto.app/oidc";

    #[test]
    fn a_logto_document_passes_with_es384_and_iss_required() {
        let (algs, requires_iss) = check(ISSUER, logto_document(ISSUER)).unwrap();
        assert_eq!(algs, [CoreJwsSigningAlgorithm::EcdsaP384Sha384]);
        assert!(requires_iss);
    }

    #[test]
    fn another_issuer_is_refused() {
        let err = check(ISSUER, logto_document("https://evil.example/oidc")).unwrap_err();
        assert_eq!(err.code(), "discovery.invalid");
        // A trailing slash is a different issuer, too (exact comparison).
        let err = check(ISSUER, logto_document(&format!("{ISSUER}/"))).unwrap_err();
        assert!(err.to_string().contains("expected"));
    }

    #[test]
    fn an_endpoint_on_another_origin_is_refused() {
        for field in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "revocation_endpoint",
            "end_session_endpoint",
        ] {
            let mut doc = logto_document(ISSUER);
            doc[field] = json!("https://attacker.example/oidc/x");
            let err = check(ISSUER, doc).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
            // Same host, other port is another origin too.
            let mut doc = logto_document(ISSUER);
            doc[field] = json!("https://tenant.logto.app:8443/oidc/x");
            assert!(check(ISSUER, doc).is_err(), "{field} on another port");
        }
    }

    #[test]
    fn plain_http_is_refused_off_loopback_and_allowed_on_it() {
        let http_issuer = "http://tenant.logto.app/oidc";
        assert!(check(http_issuer, logto_document(http_issuer)).is_err());
        let loopback = "http://127.0.0.1:3001/oidc";
        assert!(check(loopback, logto_document(loopback)).is_ok());
        let mut doc = logto_document(ISSUER);
        doc["token_endpoint"] = json!("http://tenant.logto.app/oidc/token");
        assert!(check(ISSUER, doc).is_err());
    }

    #[test]
    fn symmetric_and_none_algorithms_are_dropped() {
        let mut doc = logto_document(ISSUER);
        doc["id_token_signing_alg_values_supported"] = json!(["none", "HS256", "RS256", "ES384"]);
        let (algs, _) = check(ISSUER, doc).unwrap();
        assert_eq!(
            algs,
            [
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EcdsaP384Sha384
            ]
        );
        let mut doc = logto_document(ISSUER);
        doc["id_token_signing_alg_values_supported"] = json!(["none", "HS256"]);
        assert!(check(ISSUER, doc).is_err());
    }

    #[test]
    fn pkce_without_s256_is_refused() {
        let mut doc = logto_document(ISSUER);
        doc["code_challenge_methods_supported"] = json!(["plain"]);
        assert!(check(ISSUER, doc).is_err());
    }

    #[test]
    fn missing_userinfo_is_refused_and_missing_iss_support_relaxes_iss() {
        let mut doc = logto_document(ISSUER);
        doc.as_object_mut().unwrap().remove("userinfo_endpoint");
        assert!(check(ISSUER, doc).is_err());
        let mut doc = logto_document(ISSUER);
        doc.as_object_mut()
            .unwrap()
            .remove("authorization_response_iss_parameter_supported");
        let (_, requires_iss) = check(ISSUER, doc).unwrap();
        assert!(!requires_iss);
    }
}
