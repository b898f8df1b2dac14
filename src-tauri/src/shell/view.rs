//! The one state the window sees, as sent to the page. It is built only from non-secret parts of
//! the core's types: no token, code, verifier, nonce or authorization URL can reach the page.

use serde::Serialize;

use crate::auth::{AuthError, SignInMethod, User};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AuthView {
    /// Reading the keychain at start-up.
    Loading,
    SignedOut {
        /// Something worth saying on the signed-out screen (a removed corrupt session, a
        /// sign-out that could not reach Logto).
        notice: Option<String>,
    },
    SigningIn {
        method: SignInMethod,
        /// Seconds since the Unix epoch.
        deadline: u64,
        browser_error: Option<String>,
    },
    SignedIn {
        user: UserView,
    },
    Error {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
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
            picture: user.picture,
            identities: user.identities,
        }
    }
}

impl AuthView {
    pub fn from_error(error: &AuthError) -> Self {
        AuthView::Error {
            code: error.code().to_string(),
            message: error.to_string(),
        }
    }

    pub fn is_signed_in(&self) -> bool {
        matches!(self, AuthView::SignedIn { .. })
    }

    pub fn is_signing_in(&self) -> bool {
        matches!(self, AuthView::SigningIn { .. })
    }
}
