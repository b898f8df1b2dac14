//! The one error type of the sign-in core. Each variant says what happened in words a person can
//! act on, and carries a stable dotted code (`callback.state_mismatch`) that the window branches
//! on. No variant ever holds a token, a code, a verifier or a nonce: provider text is kept, but
//! only the parts a provider meant for people (`error`, `error_description`).

use std::fmt;

/// Everything that can stop a sign-in, a restore or a sign-out.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The endpoint or app id is missing or malformed.
    #[error("The Logto settings are not valid: {0}. Check LOGTO_ENDPOINT and LOGTO_APP_ID.")]
    Config(String),

    /// The provider could not be reached, or answered with something that is not HTTP-level OK.
    #[error("Logto could not be reached ({0}). Check your connection and try again.")]
    Network(String),

    /// The discovery document was fetched but must not be trusted.
    #[error("Logto's configuration was refused: {0}. Check LOGTO_ENDPOINT.")]
    Discovery(String),

    /// The loopback listener could not be started.
    #[error("Could not listen for the browser's answer on 127.0.0.1: {0}.")]
    Listener(String),

    /// The system browser could not be opened.
    #[error("Could not open your browser ({0}). Copy the sign-in link and open it yourself.")]
    Browser(String),

    /// The callback arrived but failed a check that protects the sign-in.
    #[error("{0}")]
    Callback(#[from] CallbackError),

    /// The provider refused the sign-in or a token request, with its own words.
    // Sign-ins and token requests alike: a refused sign-in is tried again, a refused token
    // (not a member of the organization, an API resource the app may not ask for) is checked.
    #[error("Logto refused: {}. Try again; if Logto keeps refusing, check the API resource or organization asked for, or sign in again.", .0)]
    Provider(ProviderRefusal),

    /// The tokens came back but did not pass validation.
    #[error("The sign-in answer from Logto failed validation: {0}. Nothing was saved; try again.")]
    Token(String),

    /// A refreshed ID token could not be checked for a reason that is not about the user (its
    /// signing key is not published yet, or the clocks disagree). The session and the rotated
    /// refresh token are kept; the next call tries again.
    #[error("Logto's new tokens could not be checked yet ({0}). You are still signed in; try again in a minute.")]
    Unverified(String),

    /// The provider answered, but not with what the protocol requires (not JSON, a field missing
    /// or of the wrong type, an HTTP status that carries no OAuth error).
    #[error("Logto sent an answer this app cannot use: {0}. Try again; if it keeps happening, check LOGTO_ENDPOINT or tell your Logto administrator.")]
    BadAnswer(String),

    /// The provider's answer was larger than any answer it should send.
    #[error("Logto's answer was too large to accept ({0}). Nothing was saved; try again.")]
    TooLarge(String),

    /// The sign-in took longer than allowed.
    #[error("The sign-in timed out: no answer came back from the browser. Try again.")]
    TimedOut,

    /// The person (or a newer sign-in) cancelled it.
    #[error("The sign-in was cancelled.")]
    Cancelled,

    /// The OS keychain could not be used.
    #[error("The system keychain is not available ({0}). Unlock it, or start a Secret Service such as GNOME Keyring, and try again.")]
    Keychain(String),

    /// Another program sharing this sign-in (the window, a script's `token` command) held its
    /// lock for too long, or the lock could not be taken.
    #[error("Another program using this sign-in is busy ({0}). Try again in a moment.")]
    Busy(String),

    /// The lock that programs sharing this sign-in take turns with is not this user's alone: its
    /// folder or file is another user's, or a symlink. Someone else could hold it (stalling every
    /// refresh) or move it, so it is not used, and nothing that needs it is done. Holds what was
    /// found, with its path, and what to do.
    #[error("The sign-in's lock is not safe to use: {0}. Nothing was refreshed or changed.")]
    LockNotPrivate(String),

    /// The stored sign-in ended (the account changed, another window signed out, Logto's
    /// answer was for someone else). Local state has been cleared.
    #[error("Your sign-in has ended: {0}. Please sign in again.")]
    SessionEnded(String),

    /// Logto no longer accepts the stored sign-in (`invalid_grant`: revoked, expired, or a
    /// refresh token used elsewhere). Local state has been cleared. Holds Logto's
    /// `error_description`, when it sent one.
    #[error("Your sign-in has ended: Logto no longer accepts it (it was revoked, expired, or used elsewhere{}). Please sign in again.", .0.as_deref().map(|d| format!("; Logto says: {d}")).unwrap_or_default())]
    GrantEnded(Option<String>),

    /// A sign-in was asked for while one is held: it would replace it and leave its grant alive.
    #[error("You are already signed in. Sign out first to sign in again.")]
    AlreadySignedIn,

    /// An operation that needs a session was asked for with none.
    #[error("You are not signed in.")]
    NotSignedIn,

    /// What the keychain held could not be read back; it has been removed.
    #[error("The saved sign-in could not be read and was removed. Please sign in again.")]
    CorruptSession,

    /// What the keychain holds could not be read back, and was left as it is (a read-only look,
    /// such as `--status`).
    #[error(
        "The saved sign-in could not be read. Open Logto Desktop to remove it, or sign in again."
    )]
    UnreadableSession,

    /// Even the essentials of the session are larger than one keychain entry may hold.
    #[error("Logto's tokens are too large to keep in the system keychain, so you could not stay signed in. Tell your Logto administrator.")]
    SessionTooLarge,

    /// The keychain holds a sign-in written by a newer version of the app; it is left alone.
    #[error("You are signed in with a newer version of Logto Desktop. Use that version, or sign in here to replace that sign-in.")]
    NewerVersion,
}

impl AuthError {
    /// A stable, dotted code for the window to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Config(_) => "config.invalid",
            AuthError::Network(_) => "network.unreachable",
            AuthError::Discovery(_) => "discovery.invalid",
            AuthError::Listener(_) => "loopback.unavailable",
            AuthError::Browser(_) => "browser.open_failed",
            AuthError::Callback(e) => e.code(),
            AuthError::Provider(_) => "provider.refused",
            AuthError::Token(_) => "token.invalid",
            AuthError::Unverified(_) => "token.unverified",
            AuthError::BadAnswer(_) => "provider.bad_answer",
            AuthError::TooLarge(_) => "provider.too_large",
            AuthError::TimedOut => "sign_in.timed_out",
            AuthError::Cancelled => "sign_in.cancelled",
            AuthError::Keychain(_) => "keychain.unavailable",
            AuthError::CorruptSession => "keychain.corrupt",
            AuthError::UnreadableSession => "keychain.unreadable",
            AuthError::NewerVersion => "keychain.newer_version",
            AuthError::SessionTooLarge => "keychain.too_large",
            AuthError::SessionEnded(_) | AuthError::GrantEnded(_) => "session.ended",
            AuthError::Busy(_) => "session.busy",
            AuthError::LockNotPrivate(_) => "lock.not_private",
            AuthError::NotSignedIn => "session.none",
            AuthError::AlreadySignedIn => "sign_in.already_signed_in",
        }
    }

    /// The specific part of the error, without the sentence around it (the provider's words,
    /// the fault, the field): what a window shows beside the words it has for [`Self::code`].
    /// `None` where the code says all.
    pub fn detail(&self) -> Option<String> {
        match self {
            AuthError::Provider(refusal) => Some(refusal.to_string()),
            AuthError::Config(s)
            | AuthError::Network(s)
            | AuthError::Discovery(s)
            | AuthError::Listener(s)
            | AuthError::Browser(s)
            | AuthError::Token(s)
            | AuthError::Keychain(s)
            | AuthError::SessionEnded(s)
            | AuthError::Busy(s)
            | AuthError::LockNotPrivate(s) => Some(s.clone()),
            // The code's words say Logto ended it; only Logto's own words add to that.
            AuthError::GrantEnded(description) => description.clone(),
            _ => None,
        }
    }

    /// True when the provider has said the grant is gone (RFC 6749 `invalid_grant`): only then is
    /// a stored session given up. Network faults never are.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, AuthError::Provider(refusal) if refusal.error == "invalid_grant")
    }
}

/// A provider's OAuth error, as text meant for people (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefusal {
    /// The OAuth `error` code, such as `access_denied` or `invalid_grant` (`unknown_error` when the
    /// provider sent an empty one). [`ProviderRefusal::new`] keeps at most 64 characters.
    pub error: String,
    /// The provider's `error_description`, if it sent a non-empty one; at most 300 characters
    /// through [`ProviderRefusal::new`].
    pub description: Option<String>,
}

impl fmt::Display for ProviderRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{} ({})", description, self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Why a request that reached the loopback listener was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The path is not exactly the redirect URI's (compared undecoded). Unrelated: the listener
    /// answers it with a 404 and keeps waiting.
    #[error("The browser came back to an unexpected address. Try signing in again.")]
    WrongPath,
    /// No `state` parameter. Unrelated: the listener keeps waiting.
    #[error("The browser's answer did not belong to this sign-in (state missing). Finish the sign-in in the browser window this app opened.")]
    MissingState,
    /// A `state` other than the sign-in's, or more than one. Unrelated: the listener keeps
    /// waiting.
    #[error("The browser's answer did not belong to this sign-in (state mismatch). Finish the sign-in in the browser window this app opened.")]
    StateMismatch,
    /// No `iss` although the provider advertised that it sends one (RFC 9207). Ends the sign-in.
    #[error("The answer did not say which server sent it (no iss). Sign-in stopped to be safe; try again.")]
    MissingIssuer,
    /// An `iss` other than the provider's issuer (RFC 9207: a mix-up). Ends the sign-in.
    #[error("The answer came from a different server than the one you signed in to (iss mismatch). Sign-in stopped to be safe; try again.")]
    IssuerMismatch,
    /// The right `state`, but neither an `error` nor a non-empty `code`. Ends the sign-in.
    #[error("Logto's answer held neither a code nor an error. Try signing in again.")]
    MissingCode,
    /// The right `state`, but `code`, `iss`, `error` or `error_description` repeated
    /// (RFC 6749 3.1). Ends the sign-in.
    #[error("The browser's answer was malformed. Try signing in again.")]
    Malformed,
}

impl CallbackError {
    /// A stable, dotted code (`callback.state_mismatch`), the one [`AuthError::code`] gives for
    /// [`AuthError::Callback`].
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::WrongPath => "callback.wrong_path",
            CallbackError::MissingState => "callback.missing_state",
            CallbackError::StateMismatch => "callback.state_mismatch",
            CallbackError::MissingIssuer => "callback.missing_iss",
            CallbackError::IssuerMismatch => "callback.iss_mismatch",
            CallbackError::MissingCode => "callback.missing_code",
            CallbackError::Malformed => "callback.malformed",
        }
    }

    /// A request that fails these checks cannot be tied to the sign-in in progress, so it must not
    /// end it: anyone on the machine can send one (RFC 8252 section 8.3 spirit; a forged callback
    /// must not abort the real one).
    pub fn is_unrelated(&self) -> bool {
        matches!(
            self,
            CallbackError::WrongPath | CallbackError::MissingState | CallbackError::StateMismatch
        )
    }
}
