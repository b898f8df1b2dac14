//! The one state the window sees, as sent to the page. It is built only from non-secret parts of
//! the core's types: no token, code, verifier, nonce or authorization URL can reach the page.
//! Words for people are the page's job (ui/i18n.js, per language); the view carries stable codes
//! and, where one helps, the core's own detail (provider words are shown as plain text).

use serde::Serialize;

use crate::auth::{AuthError, SignInMethod, User};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AuthView {
    /// Reading the keychain at start-up.
    Loading,
    /// No endpoint and app id in the environment or the config file: the first-run form.
    Setup {
        /// Where the form saves (shown to the person; not a secret).
        config_path: Option<String>,
        /// Why the saved file could not be used, when it exists but is broken.
        problem: Option<Notice>,
    },
    SignedOut {
        /// Something worth saying on the signed-out screen (a removed corrupt session, a
        /// sign-out that could not reach Logto).
        notice: Option<Notice>,
        /// The tenant's sign-in experience was read and has no Amazon connector: the page hides
        /// "Continue with Amazon" and says how to add one. False when unknown.
        amazon_missing: bool,
    },
    SigningIn {
        method: SignInMethod,
        /// Seconds since the Unix epoch.
        deadline: u64,
        /// Set when the browser could not be opened; the page offers Copy link.
        browser_error: Option<String>,
    },
    SignedIn {
        user: UserView,
        /// The API resources configured, for the "Call API" panel (empty hides it).
        resources: Vec<String>,
    },
    Error {
        /// The core's dotted code (`sign_in.timed_out`); the page words it per language.
        code: String,
        /// The core's English sentence, for a code the page does not know.
        message: String,
        /// The specific part (a provider's `error` and description, a host that did not
        /// answer), shown as text beside the page's own words.
        detail: Option<String>,
    },
}

/// A side note on a screen: a code the page words, and an optional detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub code: String,
    pub detail: Option<String>,
}

/// Notice code: sign-out cleared this computer but could not reach Logto.
pub const SIGN_OUT_INCOMPLETE: &str = "sign_out.incomplete";
/// Notice code: the keychain kept the entry; it is marked signed out and never used again.
pub const SIGN_OUT_ENTRY_KEPT: &str = "sign_out.entry_kept";
/// Notice code: the keychain kept the entry and it could not be marked: the person removes it.
pub const SIGN_OUT_ENTRY_STUCK: &str = "sign_out.entry_stuck";
/// Notice code: neither Logto nor the keychain could be told; the next start tells Logto.
pub const SIGN_OUT_RETRY_LATER: &str = "sign_out.retry_later";
/// Notice code: another program on this computer (a script's `logto-desktop sign-out`) signed out.
pub const SIGNED_OUT_ELSEWHERE: &str = "session.signed_out_elsewhere";

/// The notice after a sign-out that could not do everything: the code says what happened and
/// what comes next, the detail holds only the faults themselves, each once.
pub fn sign_out_notice(report: &crate::auth::SignOutReport) -> Option<Notice> {
    let code = match (&report.not_told, &report.not_removed) {
        (None, None) => return None,
        (Some(_), None) => SIGN_OUT_INCOMPLETE,
        (_, Some(_)) if !report.marked => SIGN_OUT_ENTRY_STUCK,
        (Some(_), Some(_)) if report.revokes_at_next_start() => SIGN_OUT_RETRY_LATER,
        (_, Some(_)) => SIGN_OUT_ENTRY_KEPT,
    };
    let faults: Vec<&str> = [&report.not_told, &report.not_removed]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    Some(Notice {
        code: code.to_string(),
        detail: Some(faults.join("; ")),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// The picture as a `data:` URL, fetched by the app after a sign-in; the page's CSP allows
    /// no remote image, so the webview never fetches one itself.
    pub picture: Option<String>,
    /// Social connectors the user came through, e.g. `["amazon"]`.
    pub identities: Vec<String>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        UserView {
            name: user.name,
            username: user.username,
            email: user.email,
            picture: None,
            identities: user.identities,
        }
    }
}

/// What `get_state` answers: the view plus the language the shell picked, so the page, the app
/// menu, Logto's pages (`ui_locales`) and the loopback page all speak the same one.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Counts the changes of the view, so the page can tell an answer from an older event.
    pub version: u64,
    pub language: &'static str,
    #[serde(flatten)]
    pub view: AuthView,
}

/// What the state event carries: the view and its version.
#[derive(Debug, Clone, Serialize)]
pub struct Change<'a> {
    pub version: u64,
    #[serde(flatten)]
    pub view: &'a AuthView,
}

impl AuthView {
    /// The signed-in view of `user` under `service`'s configuration.
    pub fn signed_in(service: &crate::auth::AuthService, user: crate::auth::User) -> Self {
        let picture = service.cached_picture(&user);
        let mut user = UserView::from(user);
        user.picture = picture;
        AuthView::SignedIn {
            user,
            resources: service.config().resources.clone(),
        }
    }

    /// The signed-out screen under `service`'s tenant, with `notice`.
    pub fn signed_out(service: &crate::auth::AuthService, notice: Option<Notice>) -> Self {
        AuthView::SignedOut {
            notice,
            amazon_missing: service.amazon_missing(),
        }
    }

    pub fn from_error(error: &AuthError) -> Self {
        AuthView::Error {
            code: error.code().to_string(),
            message: error.to_string(),
            detail: error.detail(),
        }
    }

    pub fn is_signed_in(&self) -> bool {
        matches!(self, AuthView::SignedIn { .. })
    }

    pub fn is_signing_in(&self) -> bool {
        matches!(self, AuthView::SigningIn { .. })
    }
}

impl Notice {
    pub fn from_error(error: &AuthError) -> Self {
        Notice {
            code: error.code().to_string(),
            detail: error.detail(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::error::ProviderRefusal;

    #[test]
    fn issue_16_a_sign_out_notice_says_each_fault_once_under_the_code_that_says_what_follows() {
        use crate::auth::SignOutReport;
        let fault = "127.0.0.1: connection failed";
        let kept = "the entry could not be removed";
        let report = |not_told: bool, not_removed: bool, marked: bool| SignOutReport {
            not_told: not_told.then(|| fault.to_string()),
            not_removed: not_removed.then(|| kept.to_string()),
            marked,
            ..SignOutReport::default()
        };
        assert_eq!(sign_out_notice(&report(false, false, false)), None);
        for (told, removed, marked, code, detail) in [
            (true, false, false, SIGN_OUT_INCOMPLETE, fault.to_string()),
            (false, true, true, SIGN_OUT_ENTRY_KEPT, kept.to_string()),
            (false, true, false, SIGN_OUT_ENTRY_STUCK, kept.to_string()),
            (
                true,
                true,
                false,
                SIGN_OUT_ENTRY_STUCK,
                format!("{fault}; {kept}"),
            ),
            (
                true,
                true,
                true,
                SIGN_OUT_RETRY_LATER,
                format!("{fault}; {kept}"),
            ),
        ] {
            let notice = sign_out_notice(&report(told, removed, marked)).expect("a notice");
            assert_eq!(notice.code, code, "{told} {removed} {marked}");
            assert_eq!(notice.detail.as_deref(), Some(detail.as_str()));
        }
    }

    #[test]
    fn issue_16_a_grant_logto_ended_is_said_once() {
        // Logto said nothing more: the code's words are the whole notice.
        let ended = AuthError::GrantEnded(None);
        assert_eq!(Notice::from_error(&ended).code, "session.ended");
        assert_eq!(Notice::from_error(&ended).detail, None);
        // Logto's own description, when it sent one, is the detail.
        let ended = AuthError::GrantEnded(Some("grant request is invalid".into()));
        assert_eq!(
            Notice::from_error(&ended).detail.as_deref(),
            Some("grant request is invalid")
        );
    }

    #[test]
    fn a_refusal_keeps_the_providers_words_as_detail() {
        let error = AuthError::Provider(ProviderRefusal {
            error: "access_denied".into(),
            description: Some("End-User aborted interaction".into()),
        });
        let AuthView::Error { code, detail, .. } = AuthView::from_error(&error) else {
            panic!("an error view");
        };
        assert_eq!(code, "provider.refused");
        assert_eq!(
            detail.as_deref(),
            Some("End-User aborted interaction (access_denied)")
        );
    }

    #[test]
    fn no_picture_address_reaches_the_page() {
        for picture in [
            "https://cdn.example/a.png",
            "http://cdn.example/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
        ] {
            let user = User {
                sub: "u1".into(),
                name: None,
                username: None,
                email: None,
                picture: Some(picture.to_string()),
                identities: Vec::new(),
            };
            assert_eq!(UserView::from(user).picture, None, "{picture}");
        }
    }

    #[test]
    fn the_snapshot_is_the_view_plus_the_language() {
        let snapshot = Snapshot {
            version: 3,
            language: "ja",
            view: AuthView::SignedOut {
                notice: None,
                amazon_missing: true,
            },
        };
        assert_eq!(
            serde_json::to_value(&snapshot).unwrap(),
            serde_json::json!({ "version": 3, "language": "ja", "state": "signed-out", "notice": null, "amazon_missing": true })
        );
        let change = Change {
            version: 4,
            view: &AuthView::Loading,
        };
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            serde_json::json!({ "version": 4, "state": "loading" })
        );
    }
}
