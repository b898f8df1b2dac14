//! The front door, [`AuthService`]: sign in, restore, hand out access tokens, sign out, named
//! as Logto's SDKs name them. It joins the two halves, each its own module: `flow`, one
//! sign-in from the authorization request to a checked session, and `state`, the
//! signed-in state that keeps, refreshes and ends that session. The rules across them live
//! here: one sign-in at a time (a new one cancels the old), none while signed in, and the
//! browser's tab answered only once the session is in the keychain.

use std::sync::Arc;
use std::time::SystemTime;

use url::Url;

use crate::authorize::SignInMethod;
use crate::browser::{Browser, SystemBrowser};
use crate::config::Config;
use crate::context::Context;
use crate::discovery::Provider;
use crate::error::AuthError;
use crate::flow::SignInFlow;
use crate::lock::EntryLock;
use crate::session::User;
use crate::state::AuthState;
use crate::store::{KeyringStore, SignedOutMarks, TokenStore};
use crate::tenant::{self, OfferCache};
use crate::tokens::{CachedToken, Clock};

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
    /// ([`AuthService::prefetch`]): its refresh token stayed in the marked entry.
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

/// A program's sign-in to one Logto app: the configuration, a keychain store and a browser.
/// Cheap to ask (`restore`, `is_authenticated` use no network); share it in an `Arc`.
pub struct AuthService {
    ctx: Context,
    flow: SignInFlow,
    state: AuthState,
    /// What the tenant's sign-in experience offers, as last read (the tenant check).
    offer: OfferCache,
}

impl AuthService {
    /// A service for `config` that keeps its session in `store` and opens `browser` to sign in.
    /// Nothing is read or fetched yet.
    pub fn new(
        config: Config,
        store: Arc<dyn TokenStore>,
        browser: Arc<dyn Browser>,
    ) -> Result<Self, AuthError> {
        Ok(AuthService {
            offer: OfferCache::new(&config, None),
            state: AuthState::new(store, &config),
            flow: SignInFlow::default(),
            ctx: Context::new(config, browser),
        })
    }

    /// A service as a desktop program on this system wants it: the OS keychain, the system
    /// browser, the lock every program sharing the keychain entry takes (so it never races the
    /// desktop app or a script), and the signed-out marks in the local data folder. The same
    /// entry as Logto Desktop's for the same tenant and app: the two share one sign-in. Errs with
    /// [`AuthError::LockNotPrivate`] where that lock's folder is another user's or a symlink.
    pub fn on_this_system(config: Config) -> Result<Self, AuthError> {
        let store = Arc::new(KeyringStore::new(&config.issuer(), &config.app_id));
        let lock = EntryLock::default_path(&config.issuer(), &config.app_id)?;
        let mut service = AuthService::new(config, store, Arc::new(SystemBrowser))?;
        if let Some(path) = lock {
            service = service.with_entry_lock(EntryLock::new(path));
        }
        if let Some(path) = SignedOutMarks::default_path() {
            service = service.with_signed_out_marks(SignedOutMarks::new(path));
        }
        Ok(service)
    }

    /// Where to remember sessions that were signed out but could not be removed from the
    /// keychain, so that no later start shows them as signed in. Without it such a session
    /// would come back at the next start (and end at its first refresh).
    pub fn with_signed_out_marks(mut self, marks: SignedOutMarks) -> Self {
        self.state.marks = Some(Arc::new(marks));
        self
    }

    /// Shares the keychain entry with other programs safely: refreshes, sign-ins and sign-outs
    /// take `lock` (a file lock) as well as this process's own, so two programs never refresh
    /// with the same refresh token.
    pub fn with_entry_lock(mut self, lock: EntryLock) -> Self {
        self.state.entry_lock = Some(lock);
        self
    }

    /// Where to keep the tenant check's last answer across starts (see [`OfferCache`]).
    pub fn with_offer_file(mut self, file: std::path::PathBuf) -> Self {
        self.offer = OfferCache::new(&self.ctx.config, Some(file));
        self
    }

    /// Replaces the clock (tests use tokio's paused clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.state.clock = clock;
        self
    }

    /// The configuration this service signs in with.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Discovery, fetched once and kept; a failure is not kept, so the next call tries again.
    pub async fn provider(&self) -> Result<Arc<Provider>, AuthError> {
        self.ctx.provider().await
    }

    /// Fetches and checks discovery and the keys ahead of a sign-in (the window does it when it
    /// shows the signed-out screen), so that the click has no network round trip in front of
    /// the browser. A failure is not kept: the sign-in tries again. It also finishes a sign-out
    /// that could neither reach Logto nor empty the keychain, found by [`Self::restore`]: the
    /// grant left alive is revoked now, and the entry removed.
    pub async fn prefetch(&self) -> Result<(), AuthError> {
        self.ctx.provider().await?;
        self.state.finish_sign_out(&self.ctx).await
    }

    /// Whether the tenant is known not to offer Amazon on its sign-in page (its last answer said
    /// so). False when it does or when nothing is known yet: then the Amazon button stays.
    pub fn amazon_missing(&self) -> bool {
        self.offer
            .offer()
            .is_some_and(|offer| !offer.offers(tenant::AMAZON))
    }

    /// Reads the tenant's sign-in experience unless the last answer is fresh; returns whether
    /// [`Self::amazon_missing`] changed. Never part of a sign-in: the window asks beside it.
    pub async fn check_sign_in_experience(&self) -> Result<bool, AuthError> {
        if self.offer.is_fresh(SystemTime::now()) {
            return Ok(false);
        }
        let before = self.amazon_missing();
        let offer = tenant::fetch(self.ctx.http()?, &self.ctx.config).await?;
        tracing::info!(social = ?offer.targets, "read the tenant's sign-in experience");
        self.offer.put(offer, SystemTime::now());
        Ok(self.amazon_missing() != before)
    }

    /// Reads the stored session, with no network. A stored secret that cannot be read is removed
    /// and reported as [`AuthError::CorruptSession`]; one written by a newer version of the app
    /// is left alone and reported as [`AuthError::NewerVersion`].
    pub async fn restore(&self) -> Result<Option<User>, AuthError> {
        self.state.restore().await
    }

    /// What [`Self::restore`] would find, changing nothing anywhere (for `--status`): an entry
    /// that cannot be read is reported as [`AuthError::UnreadableSession`] and kept.
    pub async fn peek(&self) -> Result<Option<User>, AuthError> {
        self.state.peek().await
    }

    /// The picture of `user`, if it was fetched in this process (a `data:` URL). No network.
    pub fn cached_picture(&self, user: &User) -> Option<String> {
        self.state.cached_picture(user)
    }

    /// Fetches the current user's picture into memory (see [`crate::picture`]). Called after a
    /// sign-in, never by a restore, which uses no network.
    pub async fn load_picture(&self) -> Result<Option<String>, AuthError> {
        self.state.load_picture(&self.ctx).await
    }

    /// The user of the current session, if any. No network.
    pub async fn current_user(&self) -> Option<User> {
        self.state.current_user().await
    }

    /// Runs one sign-in to the end: the browser opens, the loopback listener waits (until the
    /// configured deadline), the code is exchanged and checked, and the session is in the
    /// keychain and the browser's tab has its answer before this returns. `on_waiting` is called once the browser has been asked to
    /// open. Starting a sign-in cancels any other in progress; while signed in it is refused
    /// ([`AuthError::AlreadySignedIn`]: it would leave the first grant alive at Logto).
    pub async fn sign_in(
        &self,
        method: SignInMethod,
        on_waiting: impl FnOnce(&SignInWaiting),
    ) -> Result<User, AuthError> {
        if self.state.is_authenticated().await {
            return Err(AuthError::AlreadySignedIn);
        }
        let (id, mut cancelled) = self.flow.begin();
        let result = self
            .run_sign_in(id, method, on_waiting, &mut cancelled)
            .await;
        self.flow.end(id);
        match &result {
            Ok(_) => tracing::info!("sign-in completed"),
            Err(e) => tracing::info!(code = e.code(), "sign-in ended without success"),
        }
        result
    }

    async fn run_sign_in(
        &self,
        id: u64,
        method: SignInMethod,
        on_waiting: impl FnOnce(&SignInWaiting),
        cancelled: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<User, AuthError> {
        // A keychain that cannot take the session is reported now, not after the browser round.
        self.state.check_store().await?;
        let authorized = self
            .flow
            .authorize(&self.ctx, id, method, on_waiting, cancelled)
            .await?;
        let outcome = self
            .state
            .adopt(&self.ctx, &authorized, || self.flow.is_current(id))
            .await;
        // Only now does the browser's tab hear how it went.
        authorized
            .answer_tab(outcome.is_ok(), self.ctx.language)
            .await;
        outcome
    }

    /// Cancels the sign-in in progress, if any. Returns whether there was one.
    pub fn cancel_sign_in(&self) -> bool {
        self.flow.cancel()
    }

    /// The authorization URL of the sign-in in progress, for "Copy link". It carries `state` and
    /// `nonce`: hand it to the person (clipboard), never to logs or the page.
    pub fn sign_in_link(&self) -> Option<Url> {
        self.flow.link()
    }

    /// Opens the sign-in in progress in the browser once more ("Open the browser again").
    pub async fn open_browser_again(&self) -> Result<(), AuthError> {
        let url = self.sign_in_link().ok_or(AuthError::Cancelled)?;
        self.ctx.open_browser(&url).await
    }

    /// Whether a sign-in is waiting for the browser or finishing.
    pub fn is_signing_in(&self) -> bool {
        self.flow.is_running()
    }

    /// Revokes the refresh token (which ends the grant at Logto), removes the keychain entry, and
    /// opens the end-session page. Local state is cleared even when the provider is unreachable;
    /// the report says what could not be done.
    pub async fn sign_out(&self) -> Result<SignOutReport, AuthError> {
        self.flow.cancel();
        self.state.sign_out(&self.ctx).await
    }

    /// Writes to the keychain a rotated refresh token it would not take when a refresh brought it
    /// (the call that refreshed returned [`AuthError::Keychain`]). A long-running program gets
    /// this on its next token request; a short one (a script's command) calls it, and retries,
    /// before it exits, or the next program would use a refresh token Logto has used up, and
    /// Logto would revoke the grant. Nothing to do is `Ok`.
    pub async fn flush(&self) -> Result<(), AuthError> {
        self.state.flush().await
    }

    /// Whether a session is held (restored or signed in). No network.
    pub async fn is_authenticated(&self) -> bool {
        self.state.is_authenticated().await
    }

    /// An access token for `resource` (RFC 8707) and/or `organization`, or the default one when
    /// both are `None`. A cached token with more than its [`crate::tokens::refresh_margin`] left
    /// is returned at once; otherwise one refresh runs, however many callers ask at the same
    /// time, and the rotated refresh token is in the keychain before the new access token is
    /// returned.
    ///
    /// `invalid_grant` (revoked, expired, reused) or an answer for another account ends the
    /// session here and in the keychain ([`AuthError::SessionEnded`]). A network failure, a
    /// timeout or a 5xx leaves the session and the stored tokens untouched.
    pub async fn get_access_token(
        &self,
        resource: Option<&str>,
        organization: Option<&str>,
    ) -> Result<CachedToken, AuthError> {
        self.state
            .get_access_token(&self.ctx, resource, organization)
            .await
    }

    /// Logto's organization token: [`Self::get_access_token`] with `organization_id`.
    pub async fn get_organization_token(
        &self,
        organization_id: &str,
    ) -> Result<CachedToken, AuthError> {
        self.get_access_token(None, Some(organization_id)).await
    }

    /// The claims of the current ID token (validated when it arrived), without `nonce`. After a
    /// restore of a session whose ID token was too large for the keychain, only the claims kept
    /// in its place ([`crate::session::KEPT_CLAIMS`]) until a refresh brings a new one.
    pub async fn get_id_token_claims(&self) -> Result<serde_json::Value, AuthError> {
        self.state.get_id_token_claims().await
    }

    /// Userinfo, read with a fresh default access token; its `sub` must be the session's.
    pub async fn fetch_user_info(&self) -> Result<serde_json::Value, AuthError> {
        self.state.fetch_user_info(&self.ctx).await
    }
}
