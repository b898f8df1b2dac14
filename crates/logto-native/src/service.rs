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
use crate::browser::Browser;
#[cfg(feature = "system-browser")]
use crate::browser::SystemBrowser;
use crate::config::Config;
use crate::context::Context;
use crate::error::AuthError;
use crate::flow::SignInFlow;
use crate::lock::EntryLock;
use crate::notice::{ChangeNotice, Following};
use crate::session::User;
use crate::state::{AuthState, Elsewhere};
use crate::status::{Publisher, SignedOutWhy, Status};
use crate::status::{SignInWaiting, SignOutReport};
#[cfg(feature = "os-keychain")]
use crate::store::KeyringStore;
use crate::store::{SignedOutMarks, TokenStore};
use crate::tenant::{self, OfferCache};
use crate::tokens::CachedToken;

/// A program's sign-in to one Logto app: the configuration, a keychain store and a browser.
/// Cheap to ask (`restore`, `is_authenticated` use no network); share it in an `Arc`.
pub struct AuthService {
    ctx: Context,
    flow: SignInFlow,
    state: AuthState,
    /// What the tenant's sign-in experience offers, as last read (the tenant check).
    offer: OfferCache,
    /// The status, as every change is made (see [`Self::subscribe`]).
    status: Publisher,
}

impl AuthService {
    /// A service for `config` that keeps its session in `store` and opens `browser` to sign in.
    /// Nothing is read or fetched yet.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// // In memory, with a browser of the program's own (here one that opens nothing).
    /// assert!(auth.restore().await?.is_none());
    /// # Ok(()) }
    /// ```
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
            status: Publisher::new(),
        })
    }

    /// A service as a desktop program on this system wants it: the OS keychain, the system
    /// browser, the lock every program sharing the keychain entry takes (so it never races the
    /// desktop app or a script), the signed-out marks in the local data folder and the tenant
    /// check's last answer in the local cache folder (each in a folder named for the keychain
    /// service: see [`SignedOutMarks::default_path`]). The entry is
    /// filed under the config's [`keychain_service`](Config::keychain_service): programs that set
    /// the same one (Logto Desktop's is `logto-desktop`) share one sign-in. Errs with
    /// [`AuthError::LockNotPrivate`] where that lock's folder is another user's or a symlink.
    /// With the default features (`os-keychain`, `system-browser`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), logto_native::AuthError> {
    /// use logto_native::{AuthService, Config};
    ///
    /// let mut config = Config::new("https://tenant.logto.app", "app-id")?;
    /// config.keychain_service = "my-program".into(); // the default: `logto-native/app-id`
    /// let auth = AuthService::on_this_system(config)?;
    /// # let _ = auth; Ok(()) }
    /// ```
    #[cfg(all(feature = "os-keychain", feature = "system-browser"))]
    pub fn on_this_system(config: Config) -> Result<Self, AuthError> {
        let store = Arc::new(KeyringStore::for_config(&config));
        let lock =
            EntryLock::default_path(&config.keychain_service, &config.issuer(), &config.app_id)?;
        let mut service = AuthService::new(config, store, Arc::new(SystemBrowser))?;
        if let Some(path) = lock {
            service = service.with_entry_lock(EntryLock::new(path));
        }
        if let Some(path) = SignedOutMarks::default_path(&service.ctx.config.keychain_service) {
            service = service.with_signed_out_marks(SignedOutMarks::new(path));
        }
        if let Some(path) = OfferCache::default_path(&service.ctx.config.keychain_service) {
            service = service.with_offer_file(path);
        }
        Ok(service)
    }

    /// Where to remember sessions that were signed out but could not be removed from the
    /// keychain, so that no later start shows them as signed in. Without it such a session
    /// would come back at the next start (and end at its first refresh).
    ///
    /// ```no_run
    /// # fn run(auth: logto_native::AuthService) {
    /// use logto_native::SignedOutMarks;
    ///
    /// let marks = SignedOutMarks::default_path(&auth.config().keychain_service);
    /// let auth = match marks {
    ///     Some(path) => auth.with_signed_out_marks(SignedOutMarks::new(path)),
    ///     None => auth,
    /// };
    /// # let _ = auth; }
    /// ```
    pub fn with_signed_out_marks(mut self, marks: SignedOutMarks) -> Self {
        self.state.marks = Some(Arc::new(marks));
        self
    }

    /// Shares the keychain entry with other programs safely: refreshes, sign-ins and sign-outs
    /// take `lock` (a file lock) as well as this process's own, so two programs never refresh
    /// with the same refresh token.
    ///
    /// Changes this program makes to the entry are also told to the programs that follow it
    /// ([`Self::follow_other_programs`]), through a notice file beside the lock.
    ///
    /// ```no_run
    /// # fn run(auth: logto_native::AuthService) -> Result<(), logto_native::AuthError> {
    /// use logto_native::EntryLock;
    ///
    /// let config = auth.config();
    /// let lock = EntryLock::default_path(&config.keychain_service, &config.issuer(), &config.app_id)?;
    /// let auth = match lock {
    ///     Some(path) => auth.with_entry_lock(EntryLock::new(path)),
    ///     None => auth,
    /// };
    /// # let _ = auth; Ok(()) }
    /// ```
    pub fn with_entry_lock(mut self, lock: EntryLock) -> Self {
        self.state.notice = Some(ChangeNotice::beside(lock.path()));
        self.state.entry_lock = Some(lock);
        self
    }

    /// Where to keep the tenant check's last answer across starts ([`Self::check_sign_in_experience`]),
    /// so that a window knows at start whether to offer Amazon. A JSON file of the tenant's
    /// social connectors and when they were read; no secret.
    ///
    /// ```no_run
    /// # fn run(auth: logto_native::AuthService) -> logto_native::AuthService {
    /// auth.with_offer_file("/var/cache/my-program/sign-in-experience.json".into())
    /// # }
    /// ```
    pub fn with_offer_file(mut self, file: std::path::PathBuf) -> Self {
        self.offer = OfferCache::new(&self.ctx.config, Some(file));
        self
    }

    /// The status as it changes: signed out (and why), signing in, signed in as whom, or what
    /// failed. It starts [`Status::Unknown`] until [`Self::restore`]; every later change this
    /// service makes is published, and with [`Self::follow_other_programs`] those of other
    /// programs sharing the keychain entry too. A window renders it; only the newest counts.
    ///
    /// ```no_run
    /// # async fn show(service: &logto_native::AuthService) {
    /// let mut status = service.subscribe();
    /// while status.changed().await.is_ok() {
    ///     println!("{:?}", *status.borrow_and_update());
    /// }
    /// # }
    /// ```
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Follows the changes other programs make to the shared keychain entry (a script's
    /// `sign-out`, a sign-in or a refresh in another process): each reaches [`Self::subscribe`]
    /// within a second, through the OS's file events on the notice beside the entry lock, with one
    /// read of the entry per change. Needs [`Self::with_entry_lock`]; runs on the current tokio
    /// runtime until the service is dropped.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn run(auth: Arc<logto_native::AuthService>) -> Result<(), logto_native::AuthError> {
    /// auth.follow_other_programs()?;
    /// let mut status = auth.subscribe();
    /// while status.changed().await.is_ok() {
    ///     // A script's `sign-out` shows here as `SignedOut(Some(SignedOutWhy::Elsewhere))`.
    /// }
    /// # Ok(()) }
    /// ```
    pub fn follow_other_programs(self: &Arc<Self>) -> Result<(), AuthError> {
        let notice = self.state.notice.as_ref().ok_or_else(|| {
            AuthError::Config("no entry lock is set, so there is nothing to follow".into())
        })?;
        let following = notice.follow()?;
        tracing::debug!("following other programs' changes to the sign-in");
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            // The watcher lives as long as this task.
            let Following {
                watcher: _watcher,
                mut changes,
            } = following;
            while changes.recv().await.is_some() {
                let Some(service) = service.upgrade() else {
                    return;
                };
                service.take_in_change().await;
            }
        });
        Ok(())
    }

    /// One change another program made, read and published.
    async fn take_in_change(&self) {
        match self.state.take_in_change().await {
            Ok(Elsewhere::Nothing) => {}
            Ok(Elsewhere::SignedOut) => {
                tracing::info!("another program signed out");
                self.status.signed_out(Some(SignedOutWhy::Elsewhere));
            }
            Ok(Elsewhere::Ended) => {
                tracing::info!("another program found that Logto ended the sign-in");
                self.status
                    .signed_out(Some(SignedOutWhy::Ended(AuthError::GrantEnded(None))));
            }
            // A sign-in here replaces whatever another program stored; until then it is shown.
            Ok(Elsewhere::SignedIn(_)) if self.is_signing_in() => {}
            Ok(Elsewhere::SignedIn(user)) => {
                tracing::info!("another program signed in, or changed the user");
                self.status.signed_in(user);
            }
            Err(e) => tracing::info!(
                code = e.code(),
                "another program changed the sign-in; it is read again at the next use"
            ),
        }
    }

    /// The configuration this service signs in with.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert_eq!(auth.config().app_id, "app-id");
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Fetches and checks discovery and the keys ahead of a sign-in (the window does it when it
    /// shows the signed-out screen), so that the click has no network round trip in front of
    /// the browser. A failure is not kept: the sign-in tries again. It also finishes a sign-out
    /// that could neither reach Logto nor empty the keychain, found by [`Self::restore`]: the
    /// grant left alive is revoked now, and the entry removed.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// // While the signed-out screen is shown, so that the click opens the browser at once.
    /// if let Err(e) = auth.prefetch().await {
    ///     eprintln!("{e}"); // the sign-in will try again
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn prefetch(&self) -> Result<(), AuthError> {
        self.ctx.provider().await?;
        self.state.finish_sign_out(&self.ctx).await
    }

    /// Whether the tenant is known not to offer Amazon on its sign-in page (its last answer said
    /// so). False when it does or when nothing is known yet: then the Amazon button stays.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert!(!auth.amazon_missing(), "nothing is known yet: the Amazon button stays");
    /// # Ok(()) }
    /// ```
    pub fn amazon_missing(&self) -> bool {
        self.offer
            .offer()
            .is_some_and(|offer| !offer.offers(tenant::AMAZON))
    }

    /// Reads the tenant's sign-in experience unless the last answer is fresh; returns whether
    /// [`Self::amazon_missing`] changed. Never part of a sign-in: the window asks beside it.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// if auth.check_sign_in_experience().await? {
    ///     let show_amazon = !auth.amazon_missing();
    ///     // … redraw the sign-in buttons
    /// #   let _ = show_amazon;
    /// }
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// match auth.restore().await? {
    ///     Some(user) => println!("welcome back, {}", user.sub),
    ///     None => println!("not signed in"), // show the sign-in button
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn restore(&self) -> Result<Option<User>, AuthError> {
        let restored = self.state.restore().await;
        match &restored {
            Ok(Some(user)) => self.status.signed_in(user.clone()),
            Ok(None) => self.status.signed_out(None),
            Err(e @ (AuthError::CorruptSession | AuthError::NewerVersion)) => self
                .status
                .set(Status::SignedOut(Some(SignedOutWhy::Ended(e.clone())))),
            Err(e) => self.status.set(Status::Failed(e.clone())),
        }
        restored
    }

    /// What [`Self::restore`] would find, changing nothing anywhere (for `--status`): an entry
    /// that cannot be read is reported as [`AuthError::UnreadableSession`] and kept.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert!(auth.peek().await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn peek(&self) -> Result<Option<User>, AuthError> {
        self.state.peek().await
    }

    /// The picture of `user`, if it was fetched in this process (a `data:` URL). No network.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// if let Some(user) = auth.current_user().await {
    ///     let src = auth.cached_picture(&user); // `data:image/…` or None: show initials
    /// #   let _ = src;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cached_picture(&self, user: &User) -> Option<String> {
        self.state.cached_picture(user)
    }

    /// Fetches the current user's picture into memory: over https, or http only from the
    /// issuer's own origin; at most 256 KiB of an image type, within 5 s. Called after a
    /// sign-in, never by a restore, which uses no network.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// let picture: Option<String> = auth.load_picture().await?; // a `data:` URL
    /// # Ok(()) }
    /// ```
    pub async fn load_picture(&self) -> Result<Option<String>, AuthError> {
        self.state.load_picture(&self.ctx).await
    }

    /// The user of the current session, if any. No network.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert_eq!(auth.current_user().await, None);
    /// # Ok(()) }
    /// ```
    pub async fn current_user(&self) -> Option<User> {
        self.state.current_user().await
    }

    /// Runs one sign-in to the end: the browser opens, the loopback listener waits (until the
    /// configured deadline), the code is exchanged and checked, and the session is in the
    /// keychain and the browser's tab has its answer before this returns. `on_waiting` is called once the browser has been asked to
    /// open. Starting a sign-in cancels any other in progress; while signed in it is refused
    /// ([`AuthError::AlreadySignedIn`]: it would leave the first grant alive at Logto).
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// use logto_native::SignInMethod;
    ///
    /// let user = auth
    ///     .sign_in(SignInMethod::Amazon, |waiting| {
    ///         println!("Finish in your browser (until {}).", waiting.deadline);
    ///         if let Some(error) = &waiting.browser_error {
    ///             println!("{error}: open the link yourself");
    ///         }
    ///     })
    ///     .await?;
    /// println!("signed in as {}", user.sub);
    /// # Ok(()) }
    /// ```
    pub async fn sign_in(
        &self,
        method: SignInMethod,
        on_waiting: impl FnOnce(&SignInWaiting),
    ) -> Result<User, AuthError> {
        if self.state.is_authenticated().await {
            return Err(AuthError::AlreadySignedIn);
        }
        let (id, mut cancelled) = self.flow.begin();
        let on_waiting = |waiting: &SignInWaiting| {
            if self.flow.is_current(id) {
                self.status.set(Status::SigningIn {
                    method,
                    deadline: waiting.deadline,
                    browser_error: waiting.browser_error.clone(),
                });
            }
            on_waiting(waiting);
        };
        let result = self
            .run_sign_in(id, method, on_waiting, &mut cancelled)
            .await;
        self.flow.end(id);
        match &result {
            Ok(user) => {
                tracing::info!("sign-in completed");
                self.status.signed_in(user.clone());
            }
            Err(e) => {
                tracing::info!(code = e.code(), "sign-in ended without success");
                // A newer sign-in replaced this one: its own changes tell the story.
                if !self.flow.is_running() {
                    match (e, self.state.current_user().await) {
                        (_, Some(user)) => self.status.signed_in(user),
                        (AuthError::Cancelled, None) => self.status.signed_out(None),
                        (e, None) => self.status.set(Status::Failed(e.clone())),
                    }
                }
            }
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
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert!(!auth.cancel_sign_in(), "no sign-in was in progress");
    /// # Ok(()) }
    /// ```
    pub fn cancel_sign_in(&self) -> bool {
        self.flow.cancel()
    }

    /// The authorization URL of the sign-in in progress, for "Copy link". It carries `state` and
    /// `nonce`: hand it to the person (clipboard), never to logs or the page.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert!(auth.sign_in_link().is_none(), "only while a sign-in waits");
    /// # Ok(()) }
    /// ```
    pub fn sign_in_link(&self) -> Option<Url> {
        self.flow.link()
    }

    /// Opens the sign-in in progress in the browser once more ("Open the browser again").
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// auth.open_browser_again().await?; // `AuthError::Cancelled` when no sign-in waits
    /// # Ok(()) }
    /// ```
    pub async fn open_browser_again(&self) -> Result<(), AuthError> {
        let url = self.sign_in_link().ok_or(AuthError::Cancelled)?;
        self.ctx.open_browser(&url).await
    }

    /// Whether a sign-in is waiting for the browser or finishing.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert!(!auth.is_signing_in());
    /// # Ok(()) }
    /// ```
    pub fn is_signing_in(&self) -> bool {
        self.flow.is_running()
    }

    /// Revokes the refresh token (which ends the grant at Logto), removes the keychain entry, and
    /// opens the end-session page. Local state is cleared even when the provider is unreachable;
    /// the report says what could not be done.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// let report = auth.sign_out().await?;
    /// if report.revokes_at_next_start() {
    ///     println!("Logto could not be reached: the sign-in ends there at the next start");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn sign_out(&self) -> Result<SignOutReport, AuthError> {
        self.flow.cancel();
        let result = self.state.sign_out(&self.ctx).await;
        match &result {
            Ok(report) => self
                .status
                .set(Status::SignedOut(Some(SignedOutWhy::SignOut(
                    report.clone(),
                )))),
            Err(e) => self.status.set(Status::Failed(e.clone())),
        }
        result
    }

    /// A session Logto ended (or that ended for another account) while a token was asked for.
    fn note_ended<T>(&self, result: &Result<T, AuthError>) {
        if let Err(e @ (AuthError::SessionEnded(_) | AuthError::GrantEnded(_))) = result {
            self.status
                .set(Status::SignedOut(Some(SignedOutWhy::Ended(e.clone()))));
        }
    }

    /// Writes to the keychain a rotated refresh token it would not take when a refresh brought it
    /// (the call that refreshed returned [`AuthError::Keychain`]). A long-running program gets
    /// this on its next token request; a short one (a script's command) calls it, and retries,
    /// before it exits, or the next program would use a refresh token Logto has used up, and
    /// Logto would revoke the grant. Nothing to do is `Ok`.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// // Before a short-lived program exits:
    /// if let Err(e) = auth.flush().await {
    ///     eprintln!("{e}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<(), AuthError> {
        self.state.flush().await
    }

    /// Whether a program that stops now could lose what Logto sent: a refresh is between sending
    /// its request and keeping the answer, or the rotated refresh token it brought is not in the
    /// keychain yet. A program asked to stop (Ctrl-C, SIGTERM, quitting) that finds this true
    /// lets the refresh finish, then calls [`Self::flush`], then stops: a rotated refresh token
    /// that is lost makes the next refresh revoke the whole grant.
    ///
    /// ```no_run
    /// # async fn on_quit(service: &logto_native::AuthService) {
    /// if service.has_unkept_answer() {
    ///     let _ = service.flush().await; // waits for the refresh in flight, then writes
    /// }
    /// # }
    /// ```
    pub fn has_unkept_answer(&self) -> bool {
        self.state.has_unkept_answer()
    }

    /// Whether a session is held (restored or signed in). No network.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use logto_native::{AuthError, AuthService, Browser, Config, MemoryStore};
    /// # struct Nowhere;
    /// # impl Browser for Nowhere { fn open(&self, _: &url::Url) -> Result<(), String> { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), AuthError> {
    /// # let config = Config::new("https://tenant.logto.app", "app-id")?;
    /// # let auth = AuthService::new(config, Arc::new(MemoryStore::default()), Arc::new(Nowhere))?;
    /// assert!(!auth.is_authenticated().await);
    /// # Ok(()) }
    /// ```
    pub async fn is_authenticated(&self) -> bool {
        self.state.is_authenticated().await
    }

    /// An access token for `resource` (RFC 8707) and/or `organization`, or the default one when
    /// both are `None`. A cached token with more than 60 s (or a quarter of its lifetime, when
    /// that is shorter) left is returned at once; otherwise one refresh runs, however many callers ask at the same
    /// time, and the rotated refresh token is in the keychain before the new access token is
    /// returned.
    ///
    /// `invalid_grant` (revoked, expired, reused) or an answer for another account ends the
    /// session here and in the keychain ([`AuthError::SessionEnded`]). A network failure, a
    /// timeout or a 5xx leaves the session and the stored tokens untouched.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// let token = auth.get_access_token(Some("https://api.example.com"), None).await?;
    /// let authorization = format!("Bearer {}", token.secret()); // never print or log it
    /// #   let _ = authorization;
    /// # Ok(()) }
    /// ```
    pub async fn get_access_token(
        &self,
        resource: Option<&str>,
        organization: Option<&str>,
    ) -> Result<CachedToken, AuthError> {
        let token = self
            .state
            .get_access_token(&self.ctx, resource, organization)
            .await;
        self.note_ended(&token);
        token
    }

    /// Logto's organization token: [`Self::get_access_token`] with `organization_id`.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// let token = auth.get_organization_token("org-id").await?;
    /// println!("expires at {:?}", token.expires_at());
    /// # Ok(()) }
    /// ```
    pub async fn get_organization_token(
        &self,
        organization_id: &str,
    ) -> Result<CachedToken, AuthError> {
        self.get_access_token(None, Some(organization_id)).await
    }

    /// The claims of the current ID token (validated when it arrived), without `nonce`. After a
    /// restore of a session whose ID token was too large for the keychain, only the claims kept
    /// in its place (`iss`, `sub`, `aud`, `azp`, `exp`, `iat`, `auth_time`) until a refresh brings a new one.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// let claims = auth.get_id_token_claims().await?;
    /// println!("issued by {}", claims["iss"]);
    /// # Ok(()) }
    /// ```
    pub async fn get_id_token_claims(&self) -> Result<serde_json::Value, AuthError> {
        self.state.get_id_token_claims().await
    }

    /// Userinfo, read with a fresh default access token; its `sub` must be the session's.
    ///
    /// ```no_run
    /// # use logto_native::{AuthError, AuthService};
    /// # async fn run(auth: &AuthService) -> Result<(), AuthError> {
    /// let info = auth.fetch_user_info().await?;
    /// println!("{}", info["email"]);
    /// # Ok(()) }
    /// ```
    pub async fn fetch_user_info(&self) -> Result<serde_json::Value, AuthError> {
        let info = self.state.fetch_user_info(&self.ctx).await;
        self.note_ended(&info);
        info
    }
}
