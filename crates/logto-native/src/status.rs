//! What a program shows of its sign-in, as one stream ([`Status`], from
//! [`AuthService::subscribe`](crate::AuthService::subscribe)): signed out (and why), signing in,
//! signed in as whom, or the last thing that failed. The core publishes every change it makes and,
//! for a program that follows the others ([`AuthService::follow_other_programs`](crate::AuthService::follow_other_programs)),
//! every change another program made to the shared keychain entry, so a window renders what is
//! true instead of building each next view by hand. Also the types a sign-in and a sign-out
//! report with, which the flow and the state use below the front door.

use tokio::sync::watch;
use url::Url;

use crate::authorize::SignInMethod;
use crate::error::AuthError;
use crate::session::User;

/// The sign-in as a program shows it. Holds no secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Status {
    /// The keychain has not been read yet.
    Unknown,
    /// Nobody is signed in; why, when there is something to say.
    SignedOut(Option<SignedOutWhy>),
    /// A sign-in waits for the browser.
    SigningIn {
        /// The button it came from.
        method: SignInMethod,
        /// Seconds since the Unix epoch when the wait ends.
        deadline: u64,
        /// Set when the browser could not be opened; the wait goes on so the link can be copied.
        browser_error: Option<String>,
    },
    /// Signed in as this user.
    SignedIn(User),
    /// What was last tried failed, and nobody is signed in: a sign-in that did not succeed, a
    /// keychain that could not be read at start-up.
    Failed(AuthError),
}

/// Why nobody is signed in any more.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SignedOutWhy {
    /// This program signed out; what it managed.
    SignOut(SignOutReport),
    /// Another program on this computer signed out (a script's `sign-out`, another window).
    Elsewhere,
    /// The session ended without a sign-out: Logto ended the grant
    /// ([`AuthError::SessionEnded`], [`AuthError::GrantEnded`]), or the entry could not be read
    /// ([`AuthError::CorruptSession`], [`AuthError::NewerVersion`]).
    Ended(AuthError),
}

/// The sending side, kept by the front door; every change goes through [`Self::set`].
pub(crate) struct Publisher {
    sender: watch::Sender<Status>,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Publisher {
            sender: watch::Sender::new(Status::Unknown),
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Status> {
        self.sender.subscribe()
    }

    pub(crate) fn set(&self, status: Status) {
        self.sender.send_replace(status);
    }

    /// Signed in as `user`, said only when it is news (a refresh elsewhere changes no user).
    pub(crate) fn signed_in(&self, user: User) {
        self.sender.send_if_modified(|current| match current {
            Status::SignedIn(shown) if *shown == user => false,
            _ => {
                *current = Status::SignedIn(user);
                true
            }
        });
    }

    /// Signed out, unless the status already says so (an ended session is reported once).
    pub(crate) fn signed_out(&self, why: Option<SignedOutWhy>) {
        self.sender.send_if_modified(|current| match current {
            Status::SignedOut(_) if why.is_none() => false,
            _ => {
                *current = Status::SignedOut(why);
                true
            }
        });
    }
}

/// What the window needs while a sign-in waits for the browser. Its `Debug` leaves the URL out.
#[derive(Clone)]
pub struct SignInWaiting {
    /// The authorization URL, for "Copy link" and "Open the browser again". It holds `state` and
    /// `nonce`, so the shell keeps it out of the page and the logs.
    pub url: Url,
    /// Seconds since the Unix epoch when the wait ends.
    pub deadline: u64,
    /// Set when the browser could not be opened; the wait goes on so the link can be copied.
    pub browser_error: Option<String>,
}

impl std::fmt::Debug for SignInWaiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries `state`, `nonce` and the PKCE challenge.
        f.debug_struct("SignInWaiting")
            .field("url", &"[redacted]")
            .field("deadline", &self.deadline)
            .field("browser_error", &self.browser_error)
            .finish()
    }
}

/// What sign-out managed to do. Local state is always cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOutReport {
    /// Logto revoked the grant (its refresh token); false when it could not be told.
    pub revoked: bool,
    /// The end-session page was opened in the browser, to end the browser's Logto session.
    pub browser_session_ended: bool,
    /// Set when something could not be done, in sentences for a terminal: each of the fields
    /// below that is set, said once.
    pub warning: Option<String>,
    /// Why Logto could not be told (the fault itself, such as `127.0.0.1: connection failed`),
    /// when it could not: the grant is still alive there.
    pub not_told: Option<String>,
    /// Why the keychain entry could not be removed, when it could not.
    pub not_removed: Option<String>,
    /// The entry that could not be removed is marked signed out: no later start uses it.
    pub marked: bool,
}

impl SignOutReport {
    /// Whether the grant Logto could not be told about is revoked at the next start
    /// ([`AuthService::prefetch`](crate::AuthService::prefetch)): its refresh token stayed in the marked entry.
    pub fn revokes_at_next_start(&self) -> bool {
        self.marked && self.not_told.is_some()
    }

    /// What could not be done, each thing said once, for a terminal.
    pub(crate) fn sentences(&self) -> Option<String> {
        let told = self.not_told.as_ref().map(|why| {
            format!("You are signed out on this computer, but Logto could not be told ({why}).")
        });
        let removed = self.not_removed.as_ref().map(|why| {
            let then = if self.revokes_at_next_start() {
                "it will not be used again, and Logto will be told when the app next starts"
            } else if self.marked {
                "it will not be used again"
            } else {
                "remove it in your keychain app"
            };
            format!("The saved sign-in could not be removed from the keychain ({why}); {then}.")
        });
        match (told, removed) {
            (None, None) => None,
            (Some(one), None) | (None, Some(one)) => Some(one),
            (Some(told), Some(removed)) => Some(format!("{told} {removed}")),
        }
    }
}
