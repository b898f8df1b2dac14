//! Reading the browser's return to the loopback redirect. One pure function, checked in a fixed
//! order: path, `state`, `iss` (RFC 9207), then the provider's `error`, then `code`. Nothing past
//! the state check is looked at for a request that cannot be tied to the sign-in in progress.

use openidconnect::{AuthorizationCode, CsrfToken};
use subtle::ConstantTimeEq;

use super::error::{CallbackError, ProviderRefusal};

/// What the sign-in in progress expects to come back.
pub struct ExpectedCallback<'a> {
    /// The redirect URI's path (`/callback`), compared with the raw, undecoded path.
    pub path: &'a str,
    /// The `state` of the authorization request, compared in constant time.
    pub state: &'a CsrfToken,
    /// The provider's issuer; an `iss` in the callback must be exactly this.
    pub issuer: &'a str,
    /// The provider advertised `authorization_response_iss_parameter_supported`.
    pub requires_iss: bool,
}

/// A callback that belongs to this sign-in.
#[derive(Debug)]
pub enum Callback {
    /// The authorization code, for the code exchange (never empty).
    Code(AuthorizationCode),
    /// The provider's `error` (and `error_description`), for example the person declined.
    Refused(ProviderRefusal),
}

/// Checks a request target such as `/callback?code=...&state=...&iss=...`, in this order: the
/// path, `state` (present, not repeated, equal), no other parameter repeated, `iss` (equal if
/// present; required if [`ExpectedCallback::requires_iss`]), then `error`, then `code`.
///
/// A provider's `error` is a [`Callback::Refused`], not an `Err`: the callback did belong to this
/// sign-in. [`CallbackError::is_unrelated`] tells which errors mean the request may not be the
/// sign-in's at all (a stray to ignore rather than a failed sign-in).
pub fn parse_callback(
    target: &str,
    expected: &ExpectedCallback<'_>,
) -> Result<Callback, CallbackError> {
    // The target is origin-form (`/path?query`); its raw path must be exactly the expected one,
    // undecoded, so no `//host/...`, `%2F` or `/callback/..` variant slips through.
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.split('#').next().unwrap_or(path);
    if path != expected.path {
        return Err(CallbackError::WrongPath);
    }

    let mut state = None;
    let mut iss = None;
    let mut error = None;
    let mut error_description = None;
    let mut code = None;
    let mut repeated_state = false;
    let mut repeated_other = false;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "state" => &mut state,
            "iss" => &mut iss,
            "error" => &mut error,
            "error_description" => &mut error_description,
            "code" => &mut code,
            _ => continue,
        };
        if slot.is_some() {
            // RFC 6749 3.1: parameters must not repeat. A repeated state cannot be trusted at all.
            if key == "state" {
                repeated_state = true;
            } else {
                repeated_other = true;
            }
        }
        *slot = Some(value.into_owned());
    }

    let state = state.ok_or(CallbackError::MissingState)?;
    if repeated_state || !same_secret(&state, expected.state.secret()) {
        return Err(CallbackError::StateMismatch);
    }
    if repeated_other {
        return Err(CallbackError::Malformed);
    }

    match iss {
        Some(iss) if iss != expected.issuer => return Err(CallbackError::IssuerMismatch),
        None if expected.requires_iss => return Err(CallbackError::MissingIssuer),
        _ => {}
    }

    if let Some(error) = error {
        return Ok(Callback::Refused(ProviderRefusal::new(
            error,
            error_description,
        )));
    }
    match code {
        Some(code) if !code.is_empty() => Ok(Callback::Code(AuthorizationCode::new(code))),
        _ => Err(CallbackError::MissingCode),
    }
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl ProviderRefusal {
    /// Keeps a provider's error words printable and short: they reach the window.
    pub fn new(error: String, description: Option<String>) -> Self {
        fn clean(s: &str, max: usize) -> String {
            let s: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
            s.trim().to_string()
        }
        let error = clean(&error, 64);
        ProviderRefusal {
            error: if error.is_empty() {
                "unknown_error".into()
            } else {
                error
            },
            description: description
                .map(|d| clean(&d, 300))
                .filter(|d| !d.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "http://127.0.0.1:3001/oidc";
    const ISS: &str = "http%3A%2F%2F127.0.0.1%3A3001%2Foidc";

    fn check(target: &str) -> Result<Callback, CallbackError> {
        let state = CsrfToken::new("s-123".into());
        parse_callback(
            target,
            &ExpectedCallback {
                path: "/callback",
                state: &state,
                issuer: ISSUER,
                requires_iss: true,
            },
        )
    }

    #[test]
    fn a_good_callback_yields_the_code() {
        match check(&format!("/callback?code=abc&state=s-123&iss={ISS}")) {
            Ok(Callback::Code(code)) => assert_eq!(code.secret(), "abc"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn another_path_is_refused_first() {
        for target in [
            "/",
            "/favicon.ico",
            "/callback/",
            "/Callback?state=s-123",
            "//evil/callback",
            "callback",
            "/%63allback?state=s-123",
            "/callback/../callback",
        ] {
            assert_eq!(
                check(target).unwrap_err(),
                CallbackError::WrongPath,
                "{target}"
            );
        }
    }

    #[test]
    fn missing_or_wrong_state_is_refused_before_anything_else() {
        assert_eq!(
            check("/callback?code=abc").unwrap_err(),
            CallbackError::MissingState
        );
        assert_eq!(
            check("/callback?error=access_denied&iss=x").unwrap_err(),
            CallbackError::MissingState
        );
        assert_eq!(
            check(&format!("/callback?code=a&state=s-124&iss={ISS}")).unwrap_err(),
            CallbackError::StateMismatch
        );
        assert_eq!(
            check(&format!("/callback?code=a&state=s-12&iss={ISS}")).unwrap_err(),
            CallbackError::StateMismatch
        );
        assert_eq!(
            check("/callback?code=a&state=").unwrap_err(),
            CallbackError::StateMismatch
        );
        // A forged error with a wrong state must not look like a provider refusal.
        assert_eq!(
            check("/callback?error=access_denied&state=nope&iss=x").unwrap_err(),
            CallbackError::StateMismatch
        );
    }

    #[test]
    fn a_repeated_state_is_a_mismatch_even_if_one_is_right() {
        let target = format!("/callback?code=a&state=s-123&state=evil&iss={ISS}");
        assert_eq!(check(&target).unwrap_err(), CallbackError::StateMismatch);
        let target = format!("/callback?code=a&state=evil&state=s-123&iss={ISS}");
        assert_eq!(check(&target).unwrap_err(), CallbackError::StateMismatch);
        assert!(!CallbackError::Malformed.is_unrelated());
        assert!(CallbackError::StateMismatch.is_unrelated());
    }

    #[test]
    fn a_repeated_code_is_malformed() {
        let target = format!("/callback?code=a&code=b&state=s-123&iss={ISS}");
        assert_eq!(check(&target).unwrap_err(), CallbackError::Malformed);
    }

    #[test]
    fn issuer_is_checked_before_error_and_code() {
        assert_eq!(
            check("/callback?code=a&state=s-123").unwrap_err(),
            CallbackError::MissingIssuer
        );
        assert_eq!(
            check("/callback?code=a&state=s-123&iss=http%3A%2F%2Fevil.example%2Foidc").unwrap_err(),
            CallbackError::IssuerMismatch
        );
        assert_eq!(
            check("/callback?error=access_denied&state=s-123&iss=http%3A%2F%2Fevil%2Foidc")
                .unwrap_err(),
            CallbackError::IssuerMismatch
        );
        // Not decoded twice, not compared loosely.
        let doubly = "http%253A%252F%252F127.0.0.1%253A3001%252Foidc";
        assert_eq!(
            check(&format!("/callback?code=a&state=s-123&iss={doubly}")).unwrap_err(),
            CallbackError::IssuerMismatch
        );
        assert_eq!(
            check(&format!("/callback?code=a&state=s-123&iss={ISS}%2F")).unwrap_err(),
            CallbackError::IssuerMismatch
        );
    }

    #[test]
    fn iss_may_be_absent_when_the_provider_does_not_send_it() {
        let state = CsrfToken::new("s".into());
        let expected = ExpectedCallback {
            path: "/callback",
            state: &state,
            issuer: ISSUER,
            requires_iss: false,
        };
        assert!(matches!(
            parse_callback("/callback?code=a&state=s", &expected),
            Ok(Callback::Code(_))
        ));
        // ...but a wrong one is still refused.
        assert_eq!(
            parse_callback("/callback?code=a&state=s&iss=x", &expected).unwrap_err(),
            CallbackError::IssuerMismatch
        );
    }

    #[test]
    fn a_provider_error_is_reported_with_its_words() {
        let target = format!("/callback?error=access_denied&error_description=User+said+no%0A%1B&state=s-123&iss={ISS}");
        match check(&target) {
            Ok(Callback::Refused(refusal)) => {
                assert_eq!(refusal.error, "access_denied");
                assert_eq!(refusal.description.as_deref(), Some("User said no"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn error_wins_over_code_and_a_missing_code_is_refused() {
        let target = format!("/callback?code=a&error=server_error&state=s-123&iss={ISS}");
        assert!(matches!(check(&target), Ok(Callback::Refused(_))));
        assert_eq!(
            check(&format!("/callback?state=s-123&iss={ISS}")).unwrap_err(),
            CallbackError::MissingCode
        );
        assert_eq!(
            check(&format!("/callback?code=&state=s-123&iss={ISS}")).unwrap_err(),
            CallbackError::MissingCode
        );
    }

    #[test]
    fn provider_text_is_bounded() {
        let refusal = ProviderRefusal::new("x".repeat(500), Some("y".repeat(5000)));
        assert_eq!(refusal.error.len(), 64);
        assert_eq!(refusal.description.map(|d| d.len()), Some(300));
    }
}
