//! ID token validation (OpenID Connect Core 3.1.3.7, and 12.2 for the ones a refresh brings):
//! the token is read, its required claims are present, its signature verifies with one of the
//! provider's published keys and an accepted algorithm, `iss`, `aud` and `azp` name this app's
//! provider and client, `exp` and `iat` are within a small clock allowance, `nonce` is the sign-in's
//! and `at_hash`, when present, matches the access token that came with it.
//!
//! A key the snapshot does not hold, or an algorithm its discovery does not list (a rotation, or a
//! switch between EC and RSA keys), makes discovery and the keys be fetched again once, then the
//! token is checked again (`Discovered` keeps that to once a minute). Every
//! refusal says which rule failed ([`Failure`]), because a refresh treats them differently:
//! a clock difference or a key not yet published is no reason to throw a session away, a
//! changed issuer, subject or nonce, or a signature that fails with fresh keys, is.

use std::time::Duration;

use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, ClientId, IssuerUrl, Nonce,
    SignatureVerificationError,
};

use std::sync::Arc;

use super::config::Config;
use super::discovery::{Discovered, Provider, ACCEPTED_ALGS};
use super::error::AuthError;
use super::http::Http;

/// How far the provider's clock may be from ours.
pub const CLOCK_ALLOWANCE: Duration = Duration::from_secs(60);

/// How a token's `nonce` is judged.
pub enum NonceCheck<'a> {
    /// First sign-in: the nonce must be present and equal.
    Required(&'a Nonce),
    /// Refresh (Core 12.2): compared only when present.
    IfPresent(Option<&'a Nonce>),
}

/// What a token is checked against, beyond the provider and the client.
pub struct Expected<'a> {
    /// This app's id: `aud` must contain it, and `azp`, when present, must be it.
    pub client_id: &'a str,
    /// How `nonce` is judged: required at sign-in, compared if present after a refresh.
    pub nonce: NonceCheck<'a>,
    /// The access token of the same answer: `at_hash`, when the ID token has one, must match it.
    pub access_token: Option<&'a AccessToken>,
}

/// Why an ID token was refused. Holds no part of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It cannot be read, or lacks a claim every ID token has.
    Malformed(String),
    /// Signed with a key the provider has not published, even after fetching its keys again
    /// (or it names no key while several could fit).
    UnknownKey,
    /// The key set could not be fetched again; the error says why.
    KeysUnavailable(String),
    /// The signature does not verify with the provider's current keys.
    BadSignature,
    /// The signature does not verify with the keys held, and they were fetched again too
    /// recently to fetch them once more: nothing is proven either way yet.
    StaleKeys,
    /// Unsigned, or signed with an algorithm this app refuses (`none`, HS*).
    DisallowedAlgorithm(String),
    /// Signed with an algorithm this app accepts but the provider's discovery does not list,
    /// even after fetching it again (a switch of key type that discovery does not show yet).
    UnlistedAlgorithm(String),
    /// `iss` is not the provider's issuer.
    Issuer,
    /// `aud` does not contain this app, or `azp` names another client; the text names the
    /// audiences (client ids, not secrets).
    Audience(String),
    /// `exp` or `iat` outside the allowance: the clocks disagree or the token is stale.
    Time(String),
    /// `nonce` missing at sign-in, or not the sign-in's.
    Nonce,
    /// `at_hash` does not match the access token of the same answer.
    AtHash,
    /// Any other refusal by the verifier, in its words (which quote no token).
    Other(String),
}

impl Failure {
    /// True when the failure says nothing about who the token is for or who signed it, so a
    /// session may be kept and the check tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Failure::UnknownKey
                | Failure::UnlistedAlgorithm(_)
                | Failure::StaleKeys
                | Failure::KeysUnavailable(_)
                | Failure::Time(_)
                | Failure::Malformed(_)
        )
    }

    /// True when the snapshot of discovery and keys the token was checked with may be older than
    /// the token: a key, or an algorithm, it does not know, or a signature that fails with the
    /// keys it holds under a `kid` now used by another key.
    fn may_be_stale_metadata(&self) -> bool {
        matches!(
            self,
            Failure::UnknownKey | Failure::BadSignature | Failure::UnlistedAlgorithm(_)
        )
    }

    /// One line for people saying which rule failed; never any part of the token.
    pub fn describe(&self) -> String {
        match self {
            Failure::Malformed(why) => format!("the ID token is malformed ({why})"),
            Failure::UnknownKey => {
                "the ID token is signed with a key Logto has not published".into()
            }
            Failure::KeysUnavailable(why) => {
                format!("Logto's signing keys could not be fetched again ({why})")
            }
            Failure::BadSignature => "the ID token's signature is not valid".into(),
            Failure::StaleKeys => {
                "the ID token's signature does not verify with Logto's keys as fetched a moment ago"
                    .into()
            }
            Failure::DisallowedAlgorithm(why) => format!("the ID token's algorithm ({why})"),
            Failure::UnlistedAlgorithm(alg) => {
                format!("the ID token is signed with {alg}, which Logto does not list")
            }
            Failure::Issuer => "the ID token names another issuer".into(),
            Failure::Audience(why) => format!("the ID token is not for this app ({why})"),
            Failure::Time(why) => format!("the ID token's times are off ({why})"),
            Failure::Nonce => "the ID token's nonce is not this sign-in's".into(),
            Failure::AtHash => "the ID token's at_hash does not match the access token".into(),
            Failure::Other(why) => format!("the ID token was refused ({why})"),
        }
    }

    /// The error a sign-in reports for it.
    pub fn into_error(self) -> AuthError {
        match self {
            Failure::KeysUnavailable(why) => {
                AuthError::Network(format!("Logto's signing keys could not be fetched ({why})"))
            }
            other => AuthError::Token(other.describe()),
        }
    }
}

/// Where the checks fetch the provider's metadata again when a token shows it is stale.
pub(crate) struct Source<'a> {
    pub(crate) http: &'a Http,
    pub(crate) config: &'a Config,
    pub(crate) discovered: &'a Discovered,
}

/// Validates `raw` and returns its claims. If the token names a key the snapshot `provider` does
/// not hold, its signature fails with the keys held, or it is signed with an algorithm this crate
/// accepts but the snapshot's discovery does not list (a rotation, or a switch between EC and
/// RSA keys), discovery and the keys are fetched again (through [`Discovered::refetch`], so at
/// most once a minute) and the token is checked once more with the new snapshot, which then
/// replaces `provider`. `exp` and `iat` are judged against the system clock with
/// [`CLOCK_ALLOWANCE`].
pub(crate) async fn validate(
    source: &Source<'_>,
    provider: &mut Arc<Provider>,
    raw: &str,
    expected: &Expected<'_>,
) -> Result<CoreIdTokenClaims, Failure> {
    let token = parse(raw)?;
    match check(provider, &token, expected) {
        Err(failure) if failure.may_be_stale_metadata() => {
            match source
                .discovered
                .refetch(source.http, source.config, provider)
                .await
            {
                Ok(Some(fresh)) => {
                    *provider = fresh;
                    check(provider, &token, expected)
                }
                // Fetched again less than a minute ago: what is held may still be stale, so a
                // signature that fails with it proves nothing yet.
                Ok(None) => Err(match failure {
                    Failure::BadSignature => Failure::StaleKeys,
                    other => other,
                }),
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "could not fetch discovery and the keys again"
                    );
                    Err(Failure::KeysUnavailable(e.to_string()))
                }
            }
        }
        other => other,
    }
}

/// Reads the token, naming a missing claim rather than failing somewhere inside the parser.
fn parse(raw: &str) -> Result<CoreIdToken, Failure> {
    let claims = super::tokens::jwt_claims(raw)
        .ok_or_else(|| Failure::Malformed("it is not a signed JWT".into()))?;
    for claim in ["iss", "sub", "aud", "exp", "iat"] {
        if claims.get(claim).is_none_or(|v| v.is_null()) {
            return Err(Failure::Malformed(format!("it has no `{claim}`")));
        }
    }
    raw.parse::<CoreIdToken>().map_err(|e| {
        // serde's words may quote a claim; say only which kind of fault it is.
        let why = super::http::missing_field(&e.to_string())
            .map(|f| format!("it has no `{f}`"))
            .unwrap_or_else(|| "a claim or the header has the wrong form".into());
        Failure::Malformed(why)
    })
}

/// One pass of every check with the keys held now.
fn check(
    provider: &Provider,
    token: &CoreIdToken,
    expected: &Expected<'_>,
) -> Result<CoreIdTokenClaims, Failure> {
    let issuer = IssuerUrl::new(provider.issuer().to_string())
        .map_err(|_| Failure::Other("the issuer is not a URL".into()))?;
    let keys = &provider.keys;
    let now = chrono::Utc::now();
    let allowance = chrono::Duration::seconds(CLOCK_ALLOWANCE.as_secs() as i64);
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_string()),
        issuer,
        keys.clone(),
    )
    .set_allowed_algs(provider.id_token_algs.clone())
    // The crate checks `exp > now` with no allowance: move "now" back by the allowance.
    .set_time_fn(move || now - allowance)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > now + allowance {
            Err("issued in the future".to_string())
        } else {
            Ok(())
        }
    });
    let result = match &expected.nonce {
        NonceCheck::Required(nonce) => token.claims(&verifier, *nonce),
        NonceCheck::IfPresent(nonce) => {
            token.claims(&verifier, |found: Option<&Nonce>| match (found, nonce) {
                (None, _) => Ok(()),
                (Some(found), Some(expected)) if found.secret() == expected.secret() => Ok(()),
                _ => Err("nonce mismatch".to_string()),
            })
        }
    };
    let claims = result.map_err(|e| classify(e, token, provider))?.clone();

    // Core 3.1.3.7 step 5: an `azp`, when present, must be this client (the crate leaves it).
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != expected.client_id {
            return Err(Failure::Audience("azp names another client".into()));
        }
    }

    // Core 3.2.2.9 / 3.3.2.11: `at_hash` binds the access token to this ID token.
    if let (Some(hash), Some(access_token)) = (claims.access_token_hash(), expected.access_token) {
        let alg = token
            .signing_alg()
            .map_err(|e| Failure::DisallowedAlgorithm(e.to_string()))?;
        let key = token
            .signing_key(&verifier)
            .map_err(|_| Failure::UnknownKey)?;
        let computed = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|_| Failure::Other("at_hash cannot be computed for its algorithm".into()))?;
        if computed.as_str() != hash.as_str() {
            return Err(Failure::AtHash);
        }
    }
    Ok(claims)
}

fn classify(error: ClaimsVerificationError, token: &CoreIdToken, provider: &Provider) -> Failure {
    match error {
        ClaimsVerificationError::SignatureVerification(e) => match e {
            // An algorithm this crate accepts, refused only because discovery does not list it.
            SignatureVerificationError::DisallowedAlg(why) => match token.signing_alg() {
                Ok(alg) if ACCEPTED_ALGS.contains(alg) && !provider.id_token_algs.contains(alg) => {
                    Failure::UnlistedAlgorithm(
                        serde_json::to_value(alg)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_else(|| "an algorithm".into()),
                    )
                }
                _ => Failure::DisallowedAlgorithm(why),
            },
            SignatureVerificationError::NoMatchingKey
            | SignatureVerificationError::AmbiguousKeyId(_) => Failure::UnknownKey,
            SignatureVerificationError::CryptoError(_)
            | SignatureVerificationError::InvalidKey(_) => Failure::BadSignature,
            SignatureVerificationError::UnsupportedAlg(why) => Failure::DisallowedAlgorithm(why),
            SignatureVerificationError::NoSignature => {
                Failure::DisallowedAlgorithm("it is not signed".into())
            }
            other => Failure::Other(other.to_string()),
        },
        ClaimsVerificationError::InvalidIssuer(_) => Failure::Issuer,
        // The crate's words name the audiences, which are client ids, not secrets.
        ClaimsVerificationError::InvalidAudience(why) => Failure::Audience(why),
        ClaimsVerificationError::Expired(why) => Failure::Time(why),
        ClaimsVerificationError::InvalidNonce(_) => Failure::Nonce,
        other => Failure::Other(other.to_string()),
    }
}

/// Core 12.2: what a refreshed ID token must keep from the first one. `iss` and `sub` the same,
/// the same audiences, the same `azp` when it had one, and an `auth_time` that does not go back.
/// `original` is the payload of the session's ID token, validated when it arrived.
pub fn check_continuity(
    original: &serde_json::Value,
    refreshed: &CoreIdTokenClaims,
) -> Result<(), String> {
    if original.get("iss").and_then(|v| v.as_str()) != Some(refreshed.issuer().as_str()) {
        return Err("Logto answered as another issuer".into());
    }
    if original.get("sub").and_then(|v| v.as_str()) != Some(refreshed.subject().as_str()) {
        return Err("Logto answered for another account".into());
    }
    let mut before: Vec<String> = match original.get("aud") {
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        Some(serde_json::Value::Array(many)) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let mut after: Vec<String> = refreshed
        .audiences()
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    before.sort();
    after.sort();
    if before != after {
        return Err("Logto's new ID token is for other audiences".into());
    }
    if let Some(azp) = original.get("azp").and_then(|v| v.as_str()) {
        if refreshed.authorized_party().map(|a| a.as_str()) != Some(azp) {
            return Err("Logto's new ID token names another authorized party".into());
        }
    }
    if let (Some(before), Some(after)) = (
        original.get("auth_time").and_then(|v| v.as_i64()),
        refreshed.auth_time(),
    ) {
        if after.timestamp() < before {
            return Err("Logto's new ID token says you signed in earlier than before".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The claims of a refreshed ID token: the original's, changed by `tweak`.
    fn refreshed(original: &Value, tweak: impl FnOnce(&mut Value)) -> CoreIdTokenClaims {
        let mut claims = original.clone();
        tweak(&mut claims);
        serde_json::from_value(claims).expect("claims")
    }

    /// The claims of the session's first ID token, as the session tests keep them.
    fn original() -> Value {
        crate::session::tests::sample().id_claims
    }

    fn continues(original: &Value, tweak: impl FnOnce(&mut Value)) -> Result<(), String> {
        check_continuity(original, &refreshed(original, tweak))
    }

    #[test]
    fn a_refreshed_id_token_with_the_same_account_audiences_and_party_continues_the_session() {
        let one = original();
        assert_eq!(continues(&one, |_| {}), Ok(()));
        // Its own times are new; only auth_time may not go back.
        assert_eq!(
            continues(&one, |c| {
                c["exp"] = json!(1_900_003_600u64);
                c["iat"] = json!(1_900_000_000u64);
            }),
            Ok(())
        );
        // An audience is the same whether written as a string or a list of one.
        assert_eq!(continues(&one, |c| c["aud"] = json!(["app1"])), Ok(()));
        let mut listed = one.clone();
        listed["aud"] = json!(["app1"]);
        assert_eq!(continues(&listed, |c| c["aud"] = json!("app1")), Ok(()));
        // Several audiences, in any order.
        let mut several = one.clone();
        several["aud"] = json!(["app1", "https://api.example.com"]);
        assert_eq!(
            continues(&several, |c| c["aud"] =
                json!(["https://api.example.com", "app1"])),
            Ok(())
        );
        // An authorized party kept.
        let mut with_azp = one.clone();
        with_azp["azp"] = json!("app1");
        assert_eq!(continues(&with_azp, |_| {}), Ok(()));
    }

    #[test]
    fn a_refreshed_id_token_that_changes_what_core_12_2_keeps_is_refused() {
        let one = original();
        let mut several = one.clone();
        several["aud"] = json!(["app1", "https://api.example.com"]);
        let mut with_azp = one.clone();
        with_azp["azp"] = json!("app1");
        type Tweak = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(&str, &Value, Tweak)> = vec![
            (
                "another issuer",
                &one,
                Box::new(|c| c["iss"] = json!("https://x/oidc")),
            ),
            (
                "another subject",
                &one,
                Box::new(|c| c["sub"] = json!("u2")),
            ),
            (
                "another audience",
                &one,
                Box::new(|c| c["aud"] = json!("app2")),
            ),
            (
                "one more audience",
                &one,
                Box::new(|c| c["aud"] = json!(["app1", "app2"])),
            ),
            (
                "one audience fewer",
                &several,
                Box::new(|c| c["aud"] = json!(["app1"])),
            ),
            (
                "another party",
                &with_azp,
                Box::new(|c| c["azp"] = json!("app2")),
            ),
            (
                "no party",
                &with_azp,
                Box::new(|c| {
                    c.as_object_mut().map(|o| o.remove("azp"));
                }),
            ),
            (
                "an auth_time a second back",
                &one,
                Box::new(|c| {
                    c["auth_time"] = json!(1_899_989_999u64);
                }),
            ),
        ];
        for (name, original, tweak) in cases {
            let why = continues(original, tweak).expect_err(name);
            assert!(why.starts_with("Logto"), "{name}: {why}");
        }
    }

    #[test]
    fn a_later_or_missing_auth_time_continues_the_session() {
        let one = original();
        // The same sign-in (a refresh), or a newer one (the user signed in again).
        assert_eq!(continues(&one, |_| {}), Ok(()));
        assert_eq!(
            continues(&one, |c| c["auth_time"] = json!(1_899_990_001u64)),
            Ok(())
        );
        // Logto leaves auth_time out unless it was asked for; nothing to compare then.
        assert_eq!(
            continues(&one, |c| {
                c.as_object_mut().map(|o| o.remove("auth_time"));
            }),
            Ok(())
        );
    }
}
