//! The core's front door: sign in, cancel, restore and sign out, with the rules that span the
//! steps. One sign-in at a time (a new one cancels the old), a deadline on every wait, nothing
//! stored or reported until every check has passed, and the keychain written before success.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use openidconnect::AuthorizationCode;
use tokio::sync::{watch, Mutex as AsyncMutex};
use url::Url;

use super::authorize::{authorization_request, PendingSignIn, SignInMethod};
use super::browser::Browser;
use super::callback::Callback;
use super::config::Config;
use super::discovery::{discover, Provider};
use super::error::AuthError;
use super::exchange::exchange_code;
use super::http::{self, Http};
use super::lock::{EntryLock, Held};
use super::loopback::{Expectation, Loopback};
use super::pages::{self, Language};
use super::refresh::{refresh, Refreshed, Verdict};
use super::revoke::{self, Revoker};
use super::session::{DecodeError, Session, User};
use super::store::{SignedOutMarks, TokenStore};
use super::tenant::{self, OfferCache};
use super::tokens::{CachedToken, Clock, TokenKey};

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
    pub revoked: bool,
    pub browser_session_ended: bool,
    /// Set when something could not be done (e.g. the provider was unreachable for revocation).
    pub warning: Option<String>,
}

/// What the keychain entry holds, as this version reads it.
enum Entry {
    Missing,
    Session(Box<Session>),
    /// Written by a newer version of the app: left to it.
    Newer,
    /// Not an entry this app could have written.
    Garbage,
}

struct Attempt {
    id: u64,
    cancel: watch::Sender<bool>,
    url: Option<Url>,
}

/// Both refresh locks, held together; the file's is released first.
struct Exclusive<'a> {
    _held: Option<Held>,
    _flight: tokio::sync::MutexGuard<'a, ()>,
}

pub struct AuthService {
    config: Config,
    /// Built on first use: it reads the system's certificate store (a hundred files and more), which
    /// a start-up that restores a stored session, and makes no request, need not wait for.
    http: std::sync::OnceLock<Http>,
    store: Arc<dyn TokenStore>,
    browser: Arc<dyn Browser>,
    language: Language,
    provider: AsyncMutex<Option<Arc<Provider>>>,
    /// The sign-in in progress: its number, the switch that cancels it, and its URL once built.
    attempt: Mutex<Option<Attempt>>,
    next_attempt: Mutex<u64>,
    session: AsyncMutex<Option<Session>>,
    /// Held for the whole of a refresh, and by whatever replaces or ends the session, so only
    /// one refresh is ever in flight: Logto rotates the refresh token on every use and revokes
    /// the grant when a used one comes back after 3 seconds.
    refresh_lock: AsyncMutex<()>,
    /// A refresh whose rotated token could not be written to the keychain: it is written before
    /// any token is handed out again.
    unsaved: AtomicBool,
    clock: Clock,
    /// The user's picture as a `data:` URL, with the address it came from; memory only.
    picture: Mutex<Option<(String, String)>>,
    /// Sessions signed out whose keychain entry could not be removed (see [`SignedOutMarks`]).
    marks: Option<Arc<SignedOutMarks>>,
    /// What the tenant's sign-in experience offers, as last read (the tenant check).
    offer: OfferCache,
    /// The lock other programs sharing the keychain entry take too (see [`EntryLock`]).
    entry_lock: Option<EntryLock>,
}

impl AuthService {
    /// The HTTP client, built the first time a request is made.
    fn http(&self) -> Result<&Http, AuthError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let built = http::client()?;
        Ok(self.http.get_or_init(|| built))
    }

    pub fn new(
        config: Config,
        store: Arc<dyn TokenStore>,
        browser: Arc<dyn Browser>,
    ) -> Result<Self, AuthError> {
        let language = config
            .ui_locales
            .as_deref()
            .map(Language::from_tag)
            .unwrap_or_default();
        let offer = OfferCache::new(&config, None);
        Ok(AuthService {
            entry_lock: None,
            offer,
            config,
            http: std::sync::OnceLock::new(),
            store,
            browser,
            language,
            provider: AsyncMutex::new(None),
            attempt: Mutex::new(None),
            next_attempt: Mutex::new(0),
            session: AsyncMutex::new(None),
            refresh_lock: AsyncMutex::new(()),
            unsaved: AtomicBool::new(false),
            clock: Clock::System,
            picture: Mutex::new(None),
            marks: None,
        })
    }

    /// Where to remember sessions that were signed out but could not be removed from the
    /// keychain, so that no later start shows them as signed in. Without it such a session
    /// would come back at the next start (and end at its first refresh).
    pub fn with_signed_out_marks(mut self, marks: SignedOutMarks) -> Self {
        self.marks = Some(Arc::new(marks));
        self
    }

    /// Shares the keychain entry with other programs safely: refreshes, sign-ins and sign-outs
    /// take `lock` (a file lock) as well as this process's own, so two programs never refresh
    /// with the same refresh token.
    pub fn with_entry_lock(mut self, lock: EntryLock) -> Self {
        self.entry_lock = Some(lock);
        self
    }

    /// This process's refresh lock, then the entry's lock across programs, in that order (so a
    /// process has at most one waiter on the file).
    async fn exclusive(&self) -> Result<Exclusive<'_>, AuthError> {
        let flight = self.refresh_lock.lock().await;
        let held = match &self.entry_lock {
            Some(lock) => lock.acquire().await?,
            None => None,
        };
        Ok(Exclusive {
            _held: held,
            _flight: flight,
        })
    }

    /// Where to keep the tenant check's last answer across starts (see [`OfferCache`]).
    pub fn with_offer_file(mut self, file: std::path::PathBuf) -> Self {
        self.offer = OfferCache::new(&self.config, Some(file));
        self
    }

    /// Replaces the clock (tests use tokio's paused clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Discovery, fetched once and kept; a failure is not kept, so the next call tries again.
    pub async fn provider(&self) -> Result<Arc<Provider>, AuthError> {
        let mut cached = self.provider.lock().await;
        if let Some(provider) = cached.as_ref() {
            return Ok(provider.clone());
        }
        let provider = Arc::new(discover(self.http()?, &self.config).await?);
        *cached = Some(provider.clone());
        Ok(provider)
    }

    /// Fetches and checks discovery and the keys ahead of a sign-in (the window does it when it
    /// shows the signed-out screen), so that the click has no network round trip in front of
    /// the browser. A failure is not kept: the sign-in tries again.
    pub async fn prefetch(&self) -> Result<(), AuthError> {
        self.provider().await.map(|_| ())
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
        let offer = tenant::fetch(self.http()?, &self.config).await?;
        tracing::info!(social = ?offer.targets, "read the tenant's sign-in experience");
        self.offer.put(offer, SystemTime::now());
        Ok(self.amazon_missing() != before)
    }

    /// Reads the stored session, with no network. A stored secret that cannot be read is removed
    /// and reported as [`AuthError::CorruptSession`]; one written by a newer version of the app
    /// is left alone and reported as [`AuthError::NewerVersion`].
    pub async fn restore(&self) -> Result<Option<User>, AuthError> {
        match self.read_entry().await? {
            Entry::Missing => Ok(None),
            Entry::Session(session) if self.is_marked(&session) => {
                // Signed out earlier, but the keychain would not let go: try again now.
                self.forget_marked(&session).await;
                Ok(None)
            }
            Entry::Session(session) => {
                let user = session.user.clone();
                *self.session.lock().await = Some(*session);
                Ok(Some(user))
            }
            Entry::Newer => Err(AuthError::NewerVersion),
            Entry::Garbage => Err(self.discard_corrupt().await),
        }
    }

    /// What [`Self::restore`] would find, changing nothing anywhere (for `--status`): an entry
    /// that cannot be read is reported as [`AuthError::UnreadableSession`] and kept.
    pub async fn peek(&self) -> Result<Option<User>, AuthError> {
        match self.read_entry().await? {
            Entry::Missing => Ok(None),
            Entry::Session(session) if self.is_marked(&session) => Ok(None),
            Entry::Session(session) => Ok(Some(session.user)),
            Entry::Newer => Err(AuthError::NewerVersion),
            Entry::Garbage => Err(AuthError::UnreadableSession),
        }
    }

    /// Whether `session` was signed out here but left in the keychain.
    fn is_marked(&self, session: &Session) -> bool {
        match (&self.marks, &session.tokens.refresh_token) {
            (Some(marks), Some(rt)) => marks.contains(rt.secret()),
            _ => false,
        }
    }

    async fn forget_marked(&self, session: &Session) {
        match self.store_op(|store| store.delete()).await {
            Ok(()) => {
                if let (Some(marks), Some(rt)) = (&self.marks, &session.tokens.refresh_token) {
                    if let Err(e) = marks.remove(rt.secret()) {
                        tracing::warn!(error = %e, "could not update the signed-out marks");
                    }
                }
                tracing::info!("removed a session that was signed out earlier");
            }
            Err(e) => tracing::warn!(
                code = e.code(),
                "a session signed out earlier is still in the keychain; it is not used"
            ),
        }
    }

    /// Reads and decodes the keychain entry, deciding nothing.
    async fn read_entry(&self) -> Result<Entry, AuthError> {
        let text = match self.store_op(|store| store.load()).await {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(Entry::Missing),
            Err(AuthError::CorruptSession) => return Ok(Entry::Garbage),
            Err(e) => return Err(e),
        };
        Ok(
            match Session::decode(&text, &self.config.issuer(), &self.config.app_id) {
                Ok(session) => Entry::Session(Box::new(session)),
                Err(DecodeError::NewerVersion) => Entry::Newer,
                Err(DecodeError::Unreadable | DecodeError::OtherTenant) => Entry::Garbage,
            },
        )
    }

    async fn discard_corrupt(&self) -> AuthError {
        tracing::warn!("the stored session could not be read; removing it");
        match self.store_op(|store| store.delete()).await {
            Ok(()) => AuthError::CorruptSession,
            Err(e) => e,
        }
    }

    /// The picture of `user`, if it was fetched in this process (a `data:` URL). No network.
    pub fn cached_picture(&self, user: &User) -> Option<String> {
        let cached = self.picture.lock().unwrap_or_else(|p| p.into_inner());
        match (cached.as_ref(), user.picture.as_ref()) {
            (Some((from, data)), Some(url)) if from == url => Some(data.clone()),
            _ => None,
        }
    }

    /// Fetches the current user's picture into memory (see [`super::picture`]). Called after a
    /// sign-in, never by a restore, which uses no network.
    pub async fn load_picture(&self) -> Result<Option<String>, AuthError> {
        let Some(url) = self.current_user().await.and_then(|u| u.picture) else {
            return Ok(None);
        };
        let data = super::picture::fetch(self.http()?, &url).await?;
        *self.picture.lock().unwrap_or_else(|p| p.into_inner()) = Some((url, data.clone()));
        Ok(Some(data))
    }

    /// The user of the current session, if any.
    pub async fn current_user(&self) -> Option<User> {
        self.session.lock().await.as_ref().map(|s| s.user.clone())
    }

    /// Runs one sign-in to the end. `on_waiting` is called once the browser has been asked to
    /// open. Starting a sign-in cancels any other in progress.
    pub async fn sign_in(
        &self,
        method: SignInMethod,
        on_waiting: impl FnOnce(&SignInWaiting),
    ) -> Result<User, AuthError> {
        // A second sign-in would overwrite the first in the keychain and leave its grant alive
        // at Logto: the person signs out first.
        if self.session.lock().await.is_some() {
            return Err(AuthError::AlreadySignedIn);
        }
        let (id, mut cancelled) = self.begin_attempt();
        let result = self
            .run_sign_in(id, method, on_waiting, &mut cancelled)
            .await;
        self.end_attempt(id);
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
        cancelled: &mut watch::Receiver<bool>,
    ) -> Result<User, AuthError> {
        let provider = tokio::select! {
            p = self.provider() => p?,
            _ = cancelled.changed() => return Err(AuthError::Cancelled),
        };
        // A keychain that cannot take the session is reported now, not after the browser round.
        self.store_op(|store| store.check()).await?;
        let listener = Loopback::bind()?;
        let redirect_uri = listener.redirect_uri();
        let (url, pending) = authorization_request(&provider, &self.config, &redirect_uri, method)?;
        tracing::info!(
            port = listener.port(),
            ?method,
            "waiting for the browser on the loopback redirect"
        );

        let browser_error = self.open_browser(&url).await.err().map(|e| match e {
            AuthError::Browser(why) => why,
            other => other.to_string(),
        });
        if let Some(e) = &browser_error {
            tracing::warn!(error = %e, "the browser could not be opened");
        }
        self.set_attempt_url(id, &url);
        let timeout = self.config.sign_in_timeout;
        let deadline = super::exchange::unix_now().saturating_add(timeout.as_secs());
        on_waiting(&SignInWaiting {
            url,
            deadline,
            browser_error,
        });

        let expect = Expectation {
            state: openidconnect::CsrfToken::new(pending.state.secret().clone()),
            issuer: provider.issuer().to_string(),
            requires_iss: provider.requires_iss,
            language: self.language,
        };
        // The listener closes when this block ends, whichever branch wins.
        let arrival = tokio::select! {
            arrival = listener.wait(expect) => arrival?,
            _ = cancelled.changed() => return Err(AuthError::Cancelled),
            _ = tokio::time::sleep(timeout) => return Err(AuthError::TimedOut),
        };
        let code = match arrival.callback {
            Callback::Code(code) => code,
            Callback::Refused(refusal) => return Err(AuthError::Provider(refusal)),
        };
        let outcome = self
            .complete_sign_in(id, &provider, pending, code, cancelled)
            .await;
        // Only now does the browser's tab hear how it went.
        arrival.reply.send(match &outcome {
            Ok(_) => pages::signed_in(self.language),
            Err(_) => pages::not_completed(self.language),
        });
        outcome
    }

    /// From the code to a stored session: the exchange and its checks, then the keychain.
    async fn complete_sign_in(
        &self,
        id: u64,
        provider: &Arc<Provider>,
        pending: PendingSignIn,
        code: AuthorizationCode,
        cancelled: &mut watch::Receiver<bool>,
    ) -> Result<User, AuthError> {
        // The exchange runs as a task of its own, so that a cancel in the middle of it can let
        // it finish and revoke what it brings: by then the code may be tokens at Logto.
        let http = self.http()?.clone();
        let mut exchange = tokio::spawn({
            let (http, provider, config) = (http.clone(), provider.clone(), self.config.clone());
            async move { exchange_code(&http, &provider, &config, pending, code).await }
        });
        let session = tokio::select! {
            joined = &mut exchange => joined
                .map_err(|_| AuthError::Token("the code exchange stopped unexpectedly".into()))??,
            _ = cancelled.changed() => {
                let revoker = self.revoker(&http, provider);
                tokio::spawn(async move {
                    if let Ok(Ok(session)) = exchange.await {
                        revoker.drop_session(&session, "the sign-in was cancelled").await;
                    }
                });
                return Err(AuthError::Cancelled);
            }
        };
        // No refresh of an older session may land on top of this one.
        let _exclusive = match self.exclusive().await {
            Ok(exclusive) => exclusive,
            Err(e) => {
                // Not stored, so not left alive either.
                self.revoker(&http, provider)
                    .drop_session(&session, "the keychain entry stayed locked")
                    .await;
                return Err(e);
            }
        };
        // A newer sign-in may have started while this one exchanged its code.
        if !self.is_current(id) {
            self.revoker(&http, provider)
                .drop_session(&session, "a newer sign-in replaced it")
                .await;
            return Err(AuthError::Cancelled);
        }
        if let Err(e) = self.save(&session).await {
            self.revoker(&http, provider)
                .drop_session(&session, "it could not be saved")
                .await;
            return Err(e);
        }
        self.unsaved.store(false, Ordering::SeqCst);
        let user = session.user.clone();
        *self.session.lock().await = Some(session);
        Ok(user)
    }

    fn revoker(&self, http: &Http, provider: &Arc<Provider>) -> Revoker {
        Revoker {
            http: http.clone(),
            provider: provider.clone(),
            client_id: self.config.app_id.clone(),
        }
    }

    async fn save(&self, session: &Session) -> Result<(), AuthError> {
        let text = session.encode().ok_or(AuthError::SessionTooLarge)?;
        self.store_op(move |store| store.save(&text)).await
    }

    fn begin_attempt(&self) -> (u64, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        let id = {
            let mut next = self.next_attempt.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let mut attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = Attempt {
            id,
            cancel: tx,
            url: None,
        };
        if let Some(previous) = attempt.replace(fresh) {
            let _ = previous.cancel.send(true);
        }
        (id, rx)
    }

    fn set_attempt_url(&self, id: u64, url: &Url) {
        let mut attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = attempt.as_mut().filter(|a| a.id == id) {
            current.url = Some(url.clone());
        }
    }

    fn end_attempt(&self, id: u64) {
        let mut attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        if attempt.as_ref().is_some_and(|a| a.id == id) {
            *attempt = None;
        }
    }

    fn is_current(&self, id: u64) -> bool {
        let attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        attempt.as_ref().is_some_and(|a| a.id == id)
    }

    /// Cancels the sign-in in progress, if any. Returns whether there was one.
    pub fn cancel_sign_in(&self) -> bool {
        let mut attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        match attempt.take() {
            Some(a) => {
                let _ = a.cancel.send(true);
                true
            }
            None => false,
        }
    }

    /// The authorization URL of the sign-in in progress, for "Copy link". It carries `state` and
    /// `nonce`: hand it to the person (clipboard), never to logs or the page.
    pub fn sign_in_link(&self) -> Option<Url> {
        let attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        attempt.as_ref().and_then(|a| a.url.clone())
    }

    /// Opens the sign-in in progress in the browser once more ("Open the browser again").
    pub async fn open_browser_again(&self) -> Result<(), AuthError> {
        let url = self.sign_in_link().ok_or(AuthError::Cancelled)?;
        self.open_browser(&url).await
    }

    pub fn is_signing_in(&self) -> bool {
        self.attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Revokes the refresh token (which ends the grant at Logto), removes the keychain entry, and
    /// opens the end-session page. Local state is cleared even when the provider is unreachable;
    /// the report says what could not be done.
    pub async fn sign_out(&self) -> Result<SignOutReport, AuthError> {
        self.cancel_sign_in();
        // A refresh in flight finishes first, so the token revoked is the newest one.
        let _exclusive = self.exclusive().await?;
        // A rotated refresh token the keychain would not take is newer than the entry's.
        let unsaved = self.unsaved.swap(false, Ordering::SeqCst);
        *self.picture.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let held = self.session.lock().await.take();
        // The entry is the newest word: another program sharing it (a script's `token` command)
        // may have rotated the refresh token since this one read it, and revoking the used one
        // would leave the grant alive.
        let session = match (held, self.read_entry().await) {
            (Some(mut ours), Ok(Entry::Session(stored)))
                if !unsaved && stored.user.sub == ours.user.sub =>
            {
                ours.tokens = stored.tokens;
                Some(ours)
            }
            (Some(ours), _) => Some(ours),
            (None, Ok(Entry::Session(stored))) => Some(*stored),
            (None, _) => None,
        };
        let mut report = SignOutReport::default();
        let provider = match &session {
            Some(_) => match self.provider().await {
                Ok(p) => Some(p),
                Err(e) => {
                    report.warning = Some(e.to_string());
                    None
                }
            },
            None => None,
        };
        if let (Some(session), Some(provider)) = (&session, &provider) {
            match self.revoke(provider, session).await {
                Ok(()) => report.revoked = true,
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "revocation failed; local state is cleared anyway"
                    );
                    report.warning = Some(format!(
                        "You are signed out on this computer, but Logto could not be told: {e}"
                    ));
                }
            }
        }
        // A keychain that will not let go must not stop the rest of the sign-out, nor bring the
        // session back at the next start.
        if let Err(e) = self.store_op(|store| store.delete()).await {
            tracing::warn!(
                code = e.code(),
                "could not remove the session from the keychain"
            );
            let marked = match (
                &self.marks,
                session
                    .as_ref()
                    .and_then(|s| s.tokens.refresh_token.as_ref()),
            ) {
                (Some(marks), Some(rt)) => marks.add(rt.secret()).is_ok(),
                _ => false,
            };
            report.warning = Some(if marked {
                format!("You are signed out, but the saved sign-in could not be removed from the keychain ({e}); it will not be used again.")
            } else {
                format!("You are signed out here, but the saved sign-in could not be removed from the keychain ({e}); remove it in your keychain app.")
            });
        }

        if let (Some(_), Some(provider), true) =
            (&session, &provider, self.config.end_browser_session)
        {
            if let Some(url) = self.end_session_url(provider) {
                report.browser_session_ended = self.open_browser(&url).await.is_ok();
            }
        }
        tracing::info!(revoked = report.revoked, "signed out");
        Ok(report)
    }

    /// Revokes what proves `session`. Revoking the refresh token revokes the whole grant at
    /// Logto, access tokens included.
    async fn revoke(&self, provider: &Provider, session: &Session) -> Result<(), AuthError> {
        match revoke::grant_token(session) {
            Some((token, hint)) => self.revoke_token(provider, token, hint).await,
            None => Ok(()),
        }
    }

    async fn revoke_token(
        &self,
        provider: &Provider,
        token: &str,
        hint: &str,
    ) -> Result<(), AuthError> {
        revoke::revoke(self.http()?, provider, &self.config.app_id, token, hint).await
    }

    /// Whether a session is held (restored or signed in). No network.
    pub async fn is_authenticated(&self) -> bool {
        self.session.lock().await.is_some()
    }

    /// An access token for `resource` (RFC 8707) and/or `organization`, or the default one when
    /// both are `None`. A cached token with more than its [`super::tokens::refresh_margin`] left is
    /// returned at once; otherwise one refresh runs, however many callers ask at the same time,
    /// and the rotated refresh token is in the keychain before the new access token is returned.
    ///
    /// `invalid_grant` (revoked, expired, reused) or an answer for another account ends the
    /// session here and in the keychain ([`AuthError::SessionEnded`]). A network failure, a
    /// timeout or a 5xx leaves the session and the stored tokens untouched.
    pub async fn get_access_token(
        &self,
        resource: Option<&str>,
        organization: Option<&str>,
    ) -> Result<CachedToken, AuthError> {
        let key = TokenKey::new(resource, organization);
        if let Some(token) = self.fresh_token(&key).await? {
            return Ok(token);
        }
        let _exclusive = self.exclusive().await?;
        // Whoever held the lock before may have fetched exactly this token.
        if let Some(token) = self.fresh_token(&key).await? {
            return Ok(token);
        }
        self.refresh_locked(&key).await
    }

    /// Logto's organization token: [`Self::get_access_token`] with `organization_id`.
    pub async fn get_organization_token(
        &self,
        organization_id: &str,
    ) -> Result<CachedToken, AuthError> {
        self.get_access_token(None, Some(organization_id)).await
    }

    async fn fresh_token(&self, key: &TokenKey) -> Result<Option<CachedToken>, AuthError> {
        let guard = self.session.lock().await;
        let session = guard.as_ref().ok_or(AuthError::NotSignedIn)?;
        if self.unsaved.load(Ordering::SeqCst) {
            return Ok(None);
        }
        Ok(session.access.fresh(key, self.clock.now()).cloned())
    }

    /// The refresh itself; the caller holds both refresh locks ([`Self::exclusive`]).
    async fn refresh_locked(&self, key: &TokenKey) -> Result<CachedToken, AuthError> {
        let mut session = self
            .session
            .lock()
            .await
            .clone()
            .ok_or(AuthError::NotSignedIn)?;
        if self.unsaved.load(Ordering::SeqCst) {
            self.save(&session).await?;
            self.unsaved.store(false, Ordering::SeqCst);
            if let Some(token) = session.access.fresh(key, self.clock.now()) {
                return Ok(token.clone());
            }
        }
        // Another instance of the app may have rotated the refresh token, signed out, or signed
        // in as someone else. Only this process's session ends then: the entry is its writer's.
        match self.read_entry().await {
            Ok(Entry::Session(stored)) if stored.user.sub == session.user.sub => {
                let ours = session.tokens.refresh_token.as_ref().map(|t| t.secret());
                let theirs = stored.tokens.refresh_token.as_ref().map(|t| t.secret());
                if ours != theirs {
                    tracing::info!("the keychain holds a newer refresh token; using it");
                    session.tokens = stored.tokens;
                    session.nonce = stored.nonce;
                }
            }
            Ok(entry) => {
                let why = match entry {
                    Entry::Missing => "you signed out in another window",
                    _ => "another sign-in replaced it in another window",
                };
                tracing::info!("the keychain no longer holds this session; ending it here only");
                *self.session.lock().await = None;
                self.unsaved.store(false, Ordering::SeqCst);
                return Err(AuthError::SessionEnded(why.into()));
            }
            // The keychain could not be read; the session in memory is still good to try.
            Err(e) => tracing::warn!(
                code = e.code(),
                "could not re-read the keychain before refreshing"
            ),
        }
        let provider = self.provider().await?;
        tracing::debug!(resource = ?key.resource, organization = ?key.organization, "refreshing");
        let result = refresh(
            self.http()?,
            &provider,
            &self.config,
            &session,
            key,
            self.clock.now(),
        )
        .await;
        match result {
            Ok(refreshed) => self.apply_refresh(&provider, session, key, refreshed).await,
            Err(e) if e.is_invalid_grant() => {
                tracing::info!("the refresh token was refused (invalid_grant); ending the session");
                self.end_session().await;
                Err(AuthError::SessionEnded(
                    "Logto no longer accepts it (it was revoked, expired, or used elsewhere)"
                        .into(),
                ))
            }
            Err(e @ AuthError::SessionEnded(_)) => {
                tracing::info!(
                    code = e.code(),
                    "Logto granted no refresh token; ending the session"
                );
                self.end_session().await;
                Err(e)
            }
            Err(e) => {
                tracing::info!(code = e.code(), "refresh failed; the session is kept");
                Err(e)
            }
        }
    }

    /// Takes in a refresh's answer according to its verdict. The caller holds both refresh locks.
    async fn apply_refresh(
        &self,
        provider: &Provider,
        mut session: Session,
        key: &TokenKey,
        refreshed: Refreshed,
    ) -> Result<CachedToken, AuthError> {
        match refreshed.verdict {
            Verdict::Good => {
                if let Some(rt) = refreshed.refresh_token {
                    session.tokens.refresh_token = Some(rt);
                }
                if let Some(id_token) = refreshed.id_token {
                    session.id_claims = super::session::claims_of(&id_token);
                    session.tokens.id_token = Some(id_token);
                }
                session.access.insert(key.clone(), refreshed.access.clone());
                self.keep(&session).await?;
                Ok(refreshed.access)
            }
            Verdict::Unverified(error) => {
                // The old refresh token is used up at Logto: keep the new one, and nothing else
                // from an answer that could not be checked.
                tracing::warn!(
                    code = error.code(),
                    "the refreshed ID token could not be checked yet; the session and the rotated refresh token are kept"
                );
                if let Some(rt) = refreshed.refresh_token {
                    session.tokens.refresh_token = Some(rt);
                }
                self.keep(&session).await?;
                Err(error)
            }
            Verdict::Ends(error) => {
                tracing::info!(
                    code = error.code(),
                    "the refreshed ID token does not belong to this session; ending it"
                );
                // The answer's refresh token is alive at Logto; revoking it ends the grant rather
                // than leaving it behind.
                let token = refreshed
                    .refresh_token
                    .or_else(|| session.tokens.refresh_token.clone());
                if let Some(token) = token {
                    if let Err(e) = self
                        .revoke_token(provider, token.secret(), "refresh_token")
                        .await
                    {
                        tracing::warn!(code = e.code(), "could not revoke the ended grant");
                    }
                }
                self.end_session().await;
                Err(error)
            }
        }
    }

    /// Holds `session` in memory, then in the keychain. Memory first: a rotated refresh token
    /// must not be lost even if the keychain fails (it is written before any token is handed out
    /// again).
    async fn keep(&self, session: &Session) -> Result<(), AuthError> {
        *self.session.lock().await = Some(session.clone());
        if let Err(e) = self.save(session).await {
            self.unsaved.store(true, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }

    /// Runs a keychain call off the async threads: D-Bus, Keychain Services and Credential
    /// Manager all block.
    async fn store_op<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn TokenStore) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || op(store.as_ref()))
            .await
            .map_err(|_| AuthError::Keychain("the keychain task failed".into()))?
    }

    /// Opens a URL in the system browser, off the async threads (`xdg-open` is a process).
    async fn open_browser(&self, url: &Url) -> Result<(), AuthError> {
        let browser = self.browser.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || browser.open(&url))
            .await
            .map_err(|_| AuthError::Browser("the browser task failed".into()))?
            .map_err(AuthError::Browser)
    }

    /// Forgets the session here and in the keychain (no revocation: used when Logto already
    /// refused it).
    async fn end_session(&self) {
        *self.session.lock().await = None;
        self.unsaved.store(false, Ordering::SeqCst);
        if let Err(e) = self.store_op(|store| store.delete()).await {
            tracing::warn!(
                code = e.code(),
                "could not remove the ended session from the keychain"
            );
        }
    }

    /// The claims of the current ID token (validated when it arrived), without `nonce`. After a
    /// restore of a session whose ID token was too large for the keychain, only the claims kept
    /// in its place ([`super::session::KEPT_CLAIMS`]) until a refresh brings a new one.
    pub async fn get_id_token_claims(&self) -> Result<serde_json::Value, AuthError> {
        let guard = self.session.lock().await;
        let session = guard.as_ref().ok_or(AuthError::NotSignedIn)?;
        if !session.id_claims.is_object() {
            return Err(AuthError::Token(
                "the stored ID token cannot be read".into(),
            ));
        }
        Ok(session.id_claims.clone())
    }

    /// Userinfo, read with a fresh default access token; its `sub` must be the session's.
    pub async fn fetch_user_info(&self) -> Result<serde_json::Value, AuthError> {
        let token = self.get_access_token(None, None).await?;
        let sub = self.current_user().await.ok_or(AuthError::NotSignedIn)?.sub;
        let provider = self.provider().await?;
        super::exchange::fetch_userinfo_json(self.http()?, &provider, &token.token, &sub).await
    }

    /// The end-session URL. It carries `client_id` rather than `id_token_hint`, so the ID token
    /// never lands in the browser's history.
    fn end_session_url(&self, provider: &Provider) -> Option<Url> {
        let mut url = provider.end_session_endpoint()?.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.config.app_id);
            if let Some(uri) = &self.config.post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri.as_str());
            }
        }
        Some(url)
    }
}
