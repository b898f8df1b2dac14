//! The signed-in state (AppAuth's auth state): the session in memory and in the keychain, and
//! everything that keeps, refreshes and ends it. Restore reads the keychain and nothing else;
//! access tokens are handed out from the cache or refreshed one at a time (in this process and,
//! with an [`EntryLock`], across programs sharing the entry), the rotated refresh token stored
//! before a new access token leaves; sign-out revokes the newest refresh token and removes the
//! entry. A new session comes from [`crate::flow`] and is kept by [`AuthState::adopt`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Mutex as AsyncMutex;

use crate::context::Context;
use crate::discovery::Provider;
use crate::error::AuthError;
use crate::flow::Authorized;
use crate::lock::{EntryLock, Held};
use crate::notice::ChangeNotice;
use crate::refresh::{refresh, Refreshed, Verdict};
use crate::session::{DecodeError, Session, User};
use crate::status::SignOutReport;
use crate::store::{SignedOutMarks, TokenStore};
use crate::tokens::{CachedToken, Clock, TokenKey};

/// What another program's change to the entry meant here.
pub(crate) enum Elsewhere {
    Nothing,
    SignedOut,
    /// Another program found that Logto ended the sign-in (and removed it).
    Ended,
    SignedIn(User),
}

/// Takes into `session` what another program stored for the same user: its refresh token, ID
/// token, nonce and claims, and its access tokens beside this program's own (those of APIs and
/// organizations are never in the entry, and stay valid when the refresh token rotates).
fn take_newer(session: &mut Session, stored: Session) {
    session.tokens = stored.tokens;
    session.nonce = stored.nonce;
    session.id_claims = stored.id_claims;
    for (key, token) in stored.access.iter() {
        session.access.insert(key.clone(), token.clone());
    }
}

/// Counts one refresh in flight while held.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The change notice's word for a session Logto ended.
const ENDED: &str = "ended";

/// What the keychain entry holds, as this version reads it.
enum Entry {
    Missing,
    Session(Box<Session>),
    /// Written by a newer version of the app: left to it.
    Newer,
    /// Not an entry this app could have written.
    Garbage,
}

/// Both refresh locks, held together; the file's is released first.
struct Exclusive<'a> {
    _held: Option<Held>,
    _flight: tokio::sync::MutexGuard<'a, ()>,
}

pub(crate) struct AuthState {
    store: Arc<dyn TokenStore>,
    /// Whose sessions the entry may hold: one written for another tenant or app is not this one's.
    issuer: String,
    app_id: String,
    session: AsyncMutex<Option<Session>>,
    /// Held for the whole of a refresh, and by whatever replaces or ends the session, so only
    /// one refresh is ever in flight: Logto rotates the refresh token on every use and revokes
    /// the grant when a used one comes back after 3 seconds.
    refresh_lock: AsyncMutex<()>,
    /// A refresh whose rotated token could not be written to the keychain: it is written before
    /// any token is handed out again.
    unsaved: AtomicBool,
    pub(crate) clock: Clock,
    /// The user's picture as a `data:` URL, with the address it came from; memory only.
    picture: Mutex<Option<(String, String)>>,
    /// Sessions signed out whose keychain entry could not be removed (see [`SignedOutMarks`]).
    pub(crate) marks: Option<Arc<SignedOutMarks>>,
    /// The lock other programs sharing the keychain entry take too (see [`EntryLock`]).
    pub(crate) entry_lock: Option<EntryLock>,
    /// Where this program tells the others that it changed the entry, beside the lock.
    pub(crate) notice: Option<ChangeNotice>,
    /// Refreshes between sending and keeping their answer (see [`Self::has_unkept_answer`]).
    in_flight: AtomicUsize,
    /// A restore found a session signed out while Logto could not be told: its grant is to be
    /// revoked when Logto can be reached ([`AuthState::finish_sign_out`]).
    revocation_pending: AtomicBool,
}

impl AuthState {
    pub(crate) fn new(store: Arc<dyn TokenStore>, config: &crate::config::Config) -> Self {
        AuthState {
            store,
            issuer: config.issuer(),
            app_id: config.app_id.clone(),
            session: AsyncMutex::new(None),
            refresh_lock: AsyncMutex::new(()),
            unsaved: AtomicBool::new(false),
            clock: Clock::System,
            picture: Mutex::new(None),
            marks: None,
            entry_lock: None,
            notice: None,
            in_flight: AtomicUsize::new(0),
            revocation_pending: AtomicBool::new(false),
        }
    }

    /// Whether the keychain can take a session, asked before the browser opens, so that a
    /// keychain that cannot is reported now and not after the browser round.
    pub(crate) async fn check_store(&self) -> Result<(), AuthError> {
        self.store_op(|store| store.check()).await
    }

    /// Keeps the session a sign-in brought: in the keychain, then in memory. `still_current`
    /// says whether the sign-in is still wanted, asked once the refresh locks are held (a newer
    /// sign-in may have started during the exchange). A session that is not kept is revoked, so
    /// no grant is left alive at Logto.
    pub(crate) async fn adopt(
        &self,
        ctx: &Context,
        authorized: &Authorized,
        still_current: impl FnOnce() -> bool,
    ) -> Result<User, AuthError> {
        let session = &authorized.session;
        let drop_session = |why| ctx.drop_session(&authorized.provider, session, why);
        // No refresh of an older session may land on top of this one.
        let _exclusive = match self.exclusive().await {
            Ok(exclusive) => exclusive,
            Err(e) => {
                drop_session("the keychain entry stayed locked").await;
                return Err(e);
            }
        };
        if !still_current() {
            drop_session("a newer sign-in replaced it").await;
            return Err(AuthError::Cancelled);
        }
        // Another program may have stored a sign-in since this one started: it is replaced, so
        // its grant is revoked rather than left alive with nothing holding it.
        if let Ok(Entry::Session(stored)) = self.read_entry().await {
            ctx.drop_session(
                &authorized.provider,
                &stored,
                "a new sign-in replaced it in the keychain",
            )
            .await;
        }
        if let Err(e) = self.save(session).await {
            drop_session("it could not be saved").await;
            return Err(e);
        }
        self.unsaved.store(false, Ordering::SeqCst);
        *self.session.lock().await = Some(session.clone());
        Ok(session.user.clone())
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

    /// Reads the stored session, with no network. A stored secret that cannot be read is removed
    /// and reported as [`AuthError::CorruptSession`]; one written by a newer version of the app
    /// is left alone and reported as [`AuthError::NewerVersion`].
    pub(crate) async fn restore(&self) -> Result<Option<User>, AuthError> {
        match self.read_entry().await? {
            Entry::Missing => Ok(None),
            Entry::Session(session) if !self.is_marked(&session) => {
                Ok(Some(self.hold(*session).await))
            }
            Entry::Newer => Err(AuthError::NewerVersion),
            // What was read is to be removed: that happens under the entry's lock, and only if
            // the entry still holds it (another program may have stored a sign-in since).
            Entry::Session(_) | Entry::Garbage => self.restore_locked().await,
        }
    }

    async fn restore_locked(&self) -> Result<Option<User>, AuthError> {
        let _exclusive = self.exclusive().await?;
        match self.read_entry().await? {
            Entry::Missing => Ok(None),
            Entry::Session(session) if self.needs_revocation(&session) => {
                // Signed out while Logto could not be told: kept until it can be
                // ([`Self::finish_sign_out`]), never used.
                self.revocation_pending.store(true, Ordering::SeqCst);
                Ok(None)
            }
            Entry::Session(session) if self.is_marked(&session) => {
                // Signed out earlier, but the keychain would not let go: try again now.
                self.forget_marked(&session).await;
                Ok(None)
            }
            Entry::Session(session) => Ok(Some(self.hold(*session).await)),
            Entry::Newer => Err(AuthError::NewerVersion),
            Entry::Garbage => Err(self.discard_corrupt().await),
        }
    }

    /// Takes in what another program did to the entry (it told so through the change notice):
    /// the entry, read once under the locks, is the newest word. A removed or signed-out entry
    /// ends the session here; another user's, or a first one, is held. A refresh made elsewhere
    /// (the same user, newer tokens) is taken in silently.
    pub(crate) async fn take_in_change(&self) -> Result<Elsewhere, AuthError> {
        let _exclusive = self.exclusive().await?;
        let entry = self.read_entry().await?;
        let mut held = self.session.lock().await;
        let stored = match entry {
            Entry::Session(stored) if !self.is_marked(&stored) => Some(stored),
            Entry::Session(_) | Entry::Missing => None,
            // Unreadable, or a newer version's: left to the next restore, which says so.
            Entry::Newer | Entry::Garbage => return Ok(Elsewhere::Nothing),
        };
        Ok(match (held.as_ref(), stored) {
            (None, None) => Elsewhere::Nothing,
            (Some(_), None) => {
                *held = None;
                self.unsaved.store(false, Ordering::SeqCst);
                *self.picture.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let ended = self.notice.as_ref().and_then(ChangeNotice::why);
                if ended.as_deref() == Some(ENDED) {
                    Elsewhere::Ended
                } else {
                    Elsewhere::SignedOut
                }
            }
            // A rotated token this program could not save is newer than what the entry holds.
            (Some(_), Some(_)) if self.unsaved.load(Ordering::SeqCst) => Elsewhere::Nothing,
            (Some(ours), Some(stored)) if ours.user.sub == stored.user.sub => {
                let user = stored.user.clone();
                let changed = ours.user != user;
                // Tokens of APIs and organizations live in memory only: they stay.
                let mut merged = ours.clone();
                take_newer(&mut merged, *stored);
                merged.user = user.clone();
                *held = Some(merged);
                if changed {
                    Elsewhere::SignedIn(user)
                } else {
                    Elsewhere::Nothing
                }
            }
            (_, Some(stored)) => {
                let user = stored.user.clone();
                *held = Some(*stored);
                Elsewhere::SignedIn(user)
            }
        })
    }

    /// Keeps a restored session in memory; returns its user.
    async fn hold(&self, session: Session) -> User {
        let user = session.user.clone();
        *self.session.lock().await = Some(session);
        user
    }

    /// Finishes a sign-out that could neither tell Logto nor empty the keychain (found by
    /// [`Self::restore`]): revokes the grant of the session left in the entry, then forgets it.
    /// While Logto cannot be reached, the entry stays marked (never used) for the next start.
    pub(crate) async fn finish_sign_out(&self, ctx: &Context) -> Result<(), AuthError> {
        if !self.revocation_pending.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let _exclusive = self.exclusive().await?;
        let Entry::Session(session) = self.read_entry().await? else {
            return Ok(());
        };
        if !self.needs_revocation(&session) {
            return Ok(());
        }
        let told = match ctx.provider().await {
            Ok(provider) => ctx.revoke(&provider, &session).await,
            Err(e) => Err(e),
        };
        match told {
            Ok(()) => tracing::info!("revoked a grant left alive by an earlier sign-out"),
            // Logto answered, and refused: telling it again will not change that.
            Err(e @ AuthError::Provider(_)) => tracing::warn!(
                code = e.code(),
                "Logto refused to revoke a grant left by an earlier sign-out; forgetting it"
            ),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "could not revoke a grant left by an earlier sign-out; trying at the next start"
                );
                return Err(e);
            }
        }
        self.forget_marked(&session).await;
        Ok(())
    }

    /// What [`Self::restore`] would find, changing nothing anywhere (for `--status`): an entry
    /// that cannot be read is reported as [`AuthError::UnreadableSession`] and kept.
    pub(crate) async fn peek(&self) -> Result<Option<User>, AuthError> {
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

    /// Whether `session` was signed out here, left in the keychain, and its grant not revoked.
    fn needs_revocation(&self, session: &Session) -> bool {
        match (&self.marks, &session.tokens.refresh_token) {
            (Some(marks), Some(rt)) => marks.needs_revocation(rt.secret()),
            _ => false,
        }
    }

    /// Removes a marked session's entry, then its mark. The caller holds both locks and has just
    /// read `session` from the entry.
    async fn forget_marked(&self, session: &Session) {
        match self.store_write(|store| store.delete()).await {
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
        Ok(match Session::decode(&text, &self.issuer, &self.app_id) {
            Ok(session) => Entry::Session(Box::new(session)),
            Err(DecodeError::NewerVersion) => Entry::Newer,
            Err(DecodeError::Unreadable | DecodeError::OtherTenant) => Entry::Garbage,
        })
    }

    async fn discard_corrupt(&self) -> AuthError {
        tracing::warn!("the stored session could not be read; removing it");
        match self.store_write(|store| store.delete()).await {
            Ok(()) => AuthError::CorruptSession,
            Err(e) => e,
        }
    }

    /// The picture of `user`, if it was fetched in this process (a `data:` URL). No network.
    pub(crate) fn cached_picture(&self, user: &User) -> Option<String> {
        let cached = self.picture.lock().unwrap_or_else(|p| p.into_inner());
        match (cached.as_ref(), user.picture.as_ref()) {
            (Some((from, data)), Some(url)) if from == url => Some(data.clone()),
            _ => None,
        }
    }

    /// Fetches the current user's picture into memory (see [`crate::picture`]). Called after a
    /// sign-in, never by a restore, which uses no network.
    pub(crate) async fn load_picture(&self, ctx: &Context) -> Result<Option<String>, AuthError> {
        let Some(url) = self.current_user().await.and_then(|u| u.picture) else {
            return Ok(None);
        };
        let data = crate::picture::fetch(ctx.http()?, &url, &ctx.config.issuer()).await?;
        *self.picture.lock().unwrap_or_else(|p| p.into_inner()) = Some((url, data.clone()));
        Ok(Some(data))
    }

    /// The user of the current session, if any.
    pub(crate) async fn current_user(&self) -> Option<User> {
        self.session.lock().await.as_ref().map(|s| s.user.clone())
    }

    async fn save(&self, session: &Session) -> Result<(), AuthError> {
        let text = session.encode().ok_or(AuthError::SessionTooLarge)?;
        self.store_write(move |store| store.save(&text)).await
    }

    /// Revokes the refresh token (which ends the grant at Logto), removes the keychain entry, and
    /// opens the end-session page. Local state is cleared even when the provider is unreachable;
    /// the report says what could not be done.
    pub(crate) async fn sign_out(&self, ctx: &Context) -> Result<SignOutReport, AuthError> {
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
            Some(_) => match ctx.provider().await {
                Ok(p) => Some(p),
                Err(e) => {
                    report.not_told = Some(e.detail().unwrap_or_else(|| e.to_string()));
                    None
                }
            },
            None => None,
        };
        if let (Some(session), Some(provider)) = (&session, &provider) {
            match ctx.revoke(provider, session).await {
                Ok(()) => report.revoked = true,
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "revocation failed; local state is cleared anyway"
                    );
                    report.not_told = Some(e.detail().unwrap_or_else(|| e.to_string()));
                }
            }
        }
        // A keychain that will not let go must not stop the rest of the sign-out, nor bring the
        // session back at the next start; a grant Logto was not told about is revoked then.
        if let Err(e) = self.store_write(|store| store.delete()).await {
            tracing::warn!(
                code = e.code(),
                "could not remove the session from the keychain"
            );
            let rt = session
                .as_ref()
                .and_then(|s| s.tokens.refresh_token.as_ref());
            report.marked = match (&self.marks, rt) {
                (Some(marks), Some(rt)) if report.revoked => marks.add(rt.secret()).is_ok(),
                (Some(marks), Some(rt)) => marks.add_unrevoked(rt.secret()).is_ok(),
                _ => false,
            };
            report.not_removed = Some(e.detail().unwrap_or_else(|| e.to_string()));
            // The entry stays, but marked: the others are told as if it had gone.
            if report.marked {
                self.tell();
            }
        }
        report.warning = report.sentences();

        if let (Some(_), Some(provider), true) =
            (&session, &provider, ctx.config.end_browser_session)
        {
            if let Some(url) = ctx.end_session_url(provider) {
                report.browser_session_ended = ctx.open_browser(&url).await.is_ok();
            }
        }
        tracing::info!(revoked = report.revoked, "signed out");
        Ok(report)
    }

    /// Whether a session is held (restored or signed in). No network.
    /// Whether stopping now could lose what Logto sent: a refresh is under way past the point of
    /// no return (its request may have reached Logto, which then rotated the refresh token), or
    /// its rotated token is still unsaved.
    pub(crate) fn has_unkept_answer(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0 || self.unsaved.load(Ordering::SeqCst)
    }

    /// Writes a rotated refresh token the keychain did not take when it arrived. Until it is
    /// written, the entry holds one Logto has used up: a program that stops now would leave the
    /// next user of the entry with a token whose reuse revokes the grant.
    pub(crate) async fn flush(&self) -> Result<(), AuthError> {
        let _exclusive = self.exclusive().await?;
        if !self.unsaved.load(Ordering::SeqCst) {
            return Ok(());
        }
        let session = self.session.lock().await.clone();
        if let Some(session) = session {
            self.save(&session).await?;
        }
        self.unsaved.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub(crate) async fn is_authenticated(&self) -> bool {
        self.session.lock().await.is_some()
    }

    /// An access token for `resource` (RFC 8707) and/or `organization`, or the default one when
    /// both are `None`. A cached token with more than its [`crate::tokens::refresh_margin`] left is
    /// returned at once; otherwise one refresh runs, however many callers ask at the same time,
    /// and the rotated refresh token is in the keychain before the new access token is returned.
    ///
    /// `invalid_grant` (revoked, expired, reused) or an answer for another account ends the
    /// session here and in the keychain ([`AuthError::SessionEnded`]). A network failure, a
    /// timeout or a 5xx leaves the session and the stored tokens untouched.
    pub(crate) async fn get_access_token(
        &self,
        ctx: &Context,
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
        self.refresh_locked(ctx, &key).await
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
    async fn refresh_locked(
        &self,
        ctx: &Context,
        key: &TokenKey,
    ) -> Result<CachedToken, AuthError> {
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
                    // The program that rotated it may have fetched exactly this token.
                    take_newer(&mut session, *stored);
                    if let Some(token) = session.access.fresh(key, self.clock.now()).cloned() {
                        *self.session.lock().await = Some(session);
                        return Ok(token);
                    }
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
            // Shared with other programs, the entry is the newest word: refreshing with the
            // token in memory could reuse one another program has rotated, and Logto would
            // revoke the grant. Nothing is lost by waiting until the keychain answers.
            Err(e) if self.entry_lock.is_some() => {
                tracing::warn!(
                    code = e.code(),
                    "could not re-read the keychain before refreshing; not refreshing"
                );
                return Err(e);
            }
            // This process alone uses the entry: the session in memory is still good to try.
            Err(e) => tracing::warn!(
                code = e.code(),
                "could not re-read the keychain before refreshing"
            ),
        }
        let mut provider = ctx.provider().await?;
        tracing::debug!(resource = ?key.resource, organization = ?key.organization, "refreshing");
        // From here until its answer is kept, stopping would lose a rotated refresh token.
        let _in_flight = InFlight::start(&self.in_flight);
        let result = refresh(
            &ctx.source()?,
            &mut provider,
            &session,
            key,
            self.clock.now(),
        )
        .await;
        match result {
            Ok(refreshed) => {
                self.apply_refresh(ctx, &provider, session, key, refreshed)
                    .await
            }
            Err(AuthError::Provider(refusal)) if refusal.error == "invalid_grant" => {
                tracing::info!("the refresh token was refused (invalid_grant); ending the session");
                self.end_session().await;
                Err(AuthError::GrantEnded(refusal.description))
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
        ctx: &Context,
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
                    session.id_claims = crate::session::claims_of(&id_token);
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
                    if let Err(e) = ctx
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

    /// A change to the entry, told to the programs that follow it (see [`crate::notice`]) once
    /// made.
    async fn store_write(
        &self,
        op: impl FnOnce(&dyn TokenStore) -> Result<(), AuthError> + Send + 'static,
    ) -> Result<(), AuthError> {
        self.store_op(op).await?;
        self.tell();
        Ok(())
    }

    fn tell(&self) {
        if let Some(notice) = &self.notice {
            notice.tell();
        }
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

    /// Forgets the session here and in the keychain (no revocation: used when Logto already
    /// refused it).
    async fn end_session(&self) {
        *self.session.lock().await = None;
        self.unsaved.store(false, Ordering::SeqCst);
        match self.store_op(|store| store.delete()).await {
            // The others show that Logto ended it, not only that it is gone.
            Ok(()) => {
                if let Some(notice) = &self.notice {
                    notice.tell_why(Some(ENDED));
                }
            }
            Err(e) => tracing::warn!(
                code = e.code(),
                "could not remove the ended session from the keychain"
            ),
        }
    }

    /// The claims of the current ID token (validated when it arrived), without `nonce`. After a
    /// restore of a session whose ID token was too large for the keychain, only the claims kept
    /// in its place ([`crate::session::KEPT_CLAIMS`]) until a refresh brings a new one.
    pub(crate) async fn get_id_token_claims(&self) -> Result<serde_json::Value, AuthError> {
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
    pub(crate) async fn fetch_user_info(
        &self,
        ctx: &Context,
    ) -> Result<serde_json::Value, AuthError> {
        let token = self.get_access_token(ctx, None, None).await?;
        let sub = self.current_user().await.ok_or(AuthError::NotSignedIn)?.sub;
        let provider = ctx.provider().await?;
        crate::exchange::fetch_userinfo_json(ctx.http()?, &provider, &token.token, &sub).await
    }
}
