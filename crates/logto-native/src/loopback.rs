//! The one-time loopback redirect listener (RFC 8252 section 7.3). It binds `127.0.0.1` on a port
//! the OS picks, only for the length of one sign-in, answers the browser with a static page, and
//! closes. The real callback's page waits for the outcome of the sign-in ([`Reply`]), so the
//! browser never says "signed in" before the app knows. Requests that cannot belong to the sign-in (favicon, other paths and methods, a wrong
//! or missing `state`, a foreign `Host`) get a page of their own and leave the wait running, so a
//! stray or forged request can never end the real sign-in.
//!
//! Anything on this machine can connect to the port, so the listener must also stay out of the
//! way of local programs that misbehave. It owns the listening socket and every connection it
//! accepts, each in a tokio task of its own: one request per connection (its head read with
//! `httparse`, capped at `MAX_HEAD` bytes and its request line at `MAX_REQUEST_LINE`), a read
//! deadline from accept (`HEAD_DEADLINE`) and a write deadline (`WRITE_DEADLINE`), and at most
//! `MAX_CONNECTIONS` at once, so idle clients cannot lock the browser out: a new one pushes out the
//! oldest that was already answered, else the oldest that has sent nothing, else the oldest that
//! has sent part of a head. Before one is chosen, what has already arrived on each is read for its
//! task (which may not have run since): one whose whole head is in is never pushed out but judged,
//! since it may be the browser's callback, and if every connection is such a one the new
//! connection waits until one of them has been answered. The port listens with the system's
//! largest backlog (`somaxconn` on Linux), so connections beyond these wait in the kernel's queue
//! instead of being refused. When the wait ends, or its future is dropped, the port and all of
//! those connections are closed.
//! This is not `tiny_http`, which reads heads without a limit, has no deadlines, answers one
//! request at a time (so a client that pipelines and never reads blocks everyone behind it) and
//! keeps a thread per connection.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::{timeout, Instant};
use url::Url;

use openidconnect::AuthorizationCode;

use super::callback::{parse_callback, Callback, ExpectedCallback};
use super::error::{AuthError, CallbackError};
use super::pages::{self, Page};

/// The redirect URI's path; any other path gets a 404 and leaves the wait running.
pub const CALLBACK_PATH: &str = "/callback";

/// The longest request line (`GET /callback?... HTTP/1.1`) read; longer gets 414. The callback's
/// target is well under 1 KiB (code, state, iss, or a provider's error words).
const MAX_REQUEST_LINE: usize = 4 * 1024;
/// The longest request head (request line and headers) read; larger gets 431. A browser sends
/// every cookie set for `127.0.0.1` by any local service (cookies ignore the port), so this
/// leaves room for them, as Node's default does.
const MAX_HEAD: usize = 16 * 1024;
/// More header fields than this gets 431; browsers send about twenty.
const MAX_HEADERS: usize = 64;
/// The whole head must arrive within this time of the accept; a browser sends it at once.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The whole answer must be written (and the write side shut) within this time.
const WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// Connections held at once; one more pushes out an older one (see [`Connections::admit`]).
const MAX_CONNECTIONS: usize = 128;
/// After a stray answer, how long and how much the listener keeps reading before it closes, so
/// the client is not sent a reset (which can destroy the answer) for bytes it sent after its head.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Where Linux says how long a listening socket's queue of connections not yet accepted may be.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";
/// The backlog asked for where the system's maximum cannot be read. Every system caps a larger
/// request at its own maximum (Linux and macOS at `somaxconn`), so asking for more is harmless.
const FALLBACK_BACKLOG: i32 = 4096;

/// The listen backlog: the most the system allows, so that a burst of connections (a local flood,
/// or the browser's own preconnects) waits in the kernel's queue until it is accepted, and is not
/// refused as it would be beyond std's fixed 128.
fn backlog() -> i32 {
    let somaxconn = if cfg!(target_os = "linux") {
        std::fs::read_to_string(SOMAXCONN).ok()
    } else {
        None
    };
    backlog_from(somaxconn.as_deref())
}

/// The backlog for the contents of [`SOMAXCONN`], if it could be read.
fn backlog_from(somaxconn: Option<&str>) -> i32 {
    somaxconn
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(FALLBACK_BACKLOG)
}

/// A bound listener, not yet waiting.
pub struct Loopback {
    listener: std::net::TcpListener,
    port: u16,
}

/// What the listener needs to judge a request.
pub struct Expectation {
    /// The `state` of the authorization request ([`crate::authorize::PendingSignIn::state`]).
    pub state: openidconnect::CsrfToken,
    /// The provider's issuer, which an `iss` in the callback must equal.
    pub issuer: String,
    /// Whether a callback without `iss` is refused ([`crate::discovery::Provider::requires_iss`]).
    pub requires_iss: bool,
    /// The language of every page the listener answers with.
    pub language: pages::Language,
}

impl Loopback {
    /// Binds `127.0.0.1:0`. Never `0.0.0.0`: nothing off this machine may reach it. Listens with
    /// the system's largest backlog (`backlog`), not std's 128.
    pub fn bind() -> Result<Self, AuthError> {
        let opened = |e: io::Error| AuthError::Listener(format!("no port could be opened ({e})"));
        let socket =
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(opened)?;
        // As std's `TcpListener::bind` does on Unix (and not on Windows, where it would let
        // another program bind the same port).
        #[cfg(unix)]
        socket.set_reuse_address(true).map_err(opened)?;
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .map_err(opened)?;
        socket.listen(backlog()).map_err(opened)?;
        let listener = std::net::TcpListener::from(socket);
        listener
            .set_nonblocking(true)
            .map_err(|e| AuthError::Listener(format!("the port could not be set up ({e})")))?;
        let port = listener
            .local_addr()
            .map_err(|e| AuthError::Listener(format!("no port was assigned ({e})")))?
            .port();
        Ok(Loopback { listener, port })
    }

    /// The port the OS gave.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/callback`: an IP literal, as RFC 8252 8.3 recommends, and the
    /// only loopback form Logto accepts without registering the port.
    pub fn redirect_uri(&self) -> Url {
        let text = format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port);
        // The string is built from a number and constants; it always parses.
        Url::parse(&text).unwrap_or_else(|_| unreachable!("loopback redirect URI {text}"))
    }

    /// Waits for the callback that belongs to this sign-in. A provider's refusal or a callback
    /// that fails its checks is answered at once; a code is answered through the returned
    /// [`Reply`] once the sign-in's outcome is known (or with a neutral page after
    /// [`REPLY_WITHIN`]). Must run inside a tokio runtime. When this returns, or the future is
    /// dropped (cancel, timeout), the listening socket is closed and every other connection is
    /// aborted, which closes it.
    pub async fn wait(self, expect: Expectation) -> Result<Arrival, AuthError> {
        // Registering the socket and spawning tasks would panic outside a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(AuthError::Listener(
                "the listener was started outside the app's runtime; restart Logto Desktop".into(),
            ));
        }
        let listener = TcpListener::from_std(self.listener).map_err(|e| {
            AuthError::Listener(format!(
                "the port could not be watched ({e}); try signing in again"
            ))
        })?;
        let shared = Arc::new(Shared {
            host: format!("127.0.0.1:{}", self.port),
            expect,
            room: Notify::new(),
        });
        let mut conns = Connections::default();
        let mut tally = Tally::default();
        // A connection accepted while every one held had its whole head in (see `evict_one`). No
        // other is accepted until it has been taken in.
        let mut waiting: Option<(TcpStream, Instant)> = None;
        let result = loop {
            tokio::select! {
                // Finished connections first: a decisive callback must not wait behind accepts.
                biased;
                Some(joined) = conns.tasks.join_next_with_id(), if !conns.tasks.is_empty() => {
                    match joined {
                        Ok((id, outcome)) => {
                            conns.forget(id);
                            match outcome {
                                Outcome::Done(result) => {
                                    break result.map(|callback| Arrival { callback, reply: Reply::none() })
                                }
                                Outcome::Arrived(code, stream) => {
                                    let reply = Reply::later(stream, shared.expect.language);
                                    break Ok(Arrival { callback: Callback::Code(code), reply });
                                }
                                other => tally.count(&other),
                            }
                        }
                        // Aborted by an eviction (a connection task never panics).
                        Err(e) => conns.forget(e.id()),
                    }
                }
                // A connection was answered as a stray, so it may be pushed out for the waiting one.
                _ = shared.room.notified(), if waiting.is_some() => {}
                accepted = listener.accept(), if waiting.is_none() => match accepted {
                    Ok((stream, _)) => {
                        tally.accepted += 1;
                        if let Err(stream) = conns.admit(stream, Instant::now(), &shared) {
                            tally.waited += 1;
                            waiting = Some(stream);
                        }
                        continue;
                    }
                    Err(e) if accept_error_is_transient(&e) => {}
                    Err(e) => {
                        break Err(AuthError::Listener(format!(
                            "a connection from the browser could not be accepted ({e}); try \
                             signing in again, and restart Logto Desktop if this comes back"
                        )))
                    }
                },
            }
            // A connection ended or was answered: there may be room for the waiting one now.
            if let Some((stream, accepted)) = waiting.take() {
                waiting = conns.admit(stream, accepted, &shared).err();
            }
        };
        tracing::debug!(
            accepted = tally.accepted,
            answered = tally.answered,
            too_large = tally.too_large,
            malformed = tally.malformed,
            timed_out = tally.timed_out,
            gone = tally.gone,
            evicted = conns.evicted,
            waited = tally.waited,
            decisive = result.is_ok(),
            "loopback wait ended"
        );
        // `listener`, `waiting` and `conns.tasks` drop here: the port closes and every task is
        // aborted.
        result
    }
}

/// How long the browser's tab waits for the sign-in's outcome before it is told, neutrally, to
/// return to the app (the exchange, the checks and the keychain usually take well under one).
pub const REPLY_WITHIN: Duration = Duration::from_secs(8);

/// The callback that belongs to the sign-in, and the way to answer the browser that brought it.
pub struct Arrival {
    /// The code, or the provider's refusal.
    pub callback: Callback,
    /// The tab waiting for the outcome, after a code. After a refusal the browser has been
    /// answered already, and sending on it does nothing.
    pub reply: Reply,
}

/// The browser's tab, waiting for the outcome. [`Reply::send`] answers it; dropping a `Reply`
/// unsent, or sending after [`REPLY_WITHIN`], leaves the tab with the neutral page.
pub struct Reply {
    page: Option<tokio::sync::oneshot::Sender<Page>>,
    /// Closes once the answer has been written (or given up on).
    written: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Reply {
    /// For a callback already answered.
    fn none() -> Reply {
        Reply {
            page: None,
            written: None,
        }
    }

    /// Holds `stream` in a task of its own, bounded in time, until the page arrives.
    fn later(mut stream: TcpStream, lang: pages::Language) -> Reply {
        let (tx, rx) = tokio::sync::oneshot::channel::<Page>();
        let (done, written) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let page = match timeout(REPLY_WITHIN, rx).await {
                Ok(Ok(page)) => page,
                _ => pages::return_to_app(lang),
            };
            if write_answer(&mut stream, &response(&page)).await {
                drain_ready(&mut stream);
            }
            let _ = done.send(());
        });
        Reply {
            page: Some(tx),
            written: Some(written),
        }
    }

    /// Answers the browser with `page`.
    pub fn send(mut self, page: Page) {
        if let Some(tx) = self.page.take() {
            // The tab may have been answered already (too late): nothing more to say.
            let _ = tx.send(page);
        }
    }

    /// Answers the browser with `page` and waits until the answer is written (at most the
    /// write deadline), so that a program that exits right after a sign-in does not leave the
    /// tab with an empty response.
    pub async fn answer(mut self, page: Page) {
        let written = self.written.take();
        self.send(page);
        if let Some(written) = written {
            let _ = timeout(WRITE_DEADLINE + Duration::from_secs(1), written).await;
        }
    }
}

/// Errors that concern one connection that is already gone; anything else from `accept` ends
/// the sign-in rather than spinning or hanging until the timeout.
fn accept_error_is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// What every connection task reads.
struct Shared {
    /// `127.0.0.1:<port>`, the only `Host` accepted.
    host: String,
    expect: Expectation,
    /// Told when a connection has been answered as a stray, which makes it one that may be pushed
    /// out; a connection waiting for room is taken in then.
    room: Notify,
}

/// Where a connection is, as the accept loop sees it when it must push one out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Reading its head (or the accept loop has read all of it for the task, which takes it next).
    Reading,
    /// The head is in and is being judged, or was decisive: never pushed out.
    Held,
    /// The head was judged a stray; the answer is being written, or was. Pushed out first.
    Stray,
    /// Pushed out while it was reading; its task ends without reading on.
    Evicted,
}

/// What the accept loop and a connection's task share. Whatever reads the connection's head,
/// whichever of the two it is, does so under `state`'s lock, so that the accept loop sees all that
/// has arrived and the task never reads on once the accept loop has pushed the connection out.
struct Slot {
    state: Mutex<SlotState>,
    /// Wakes the task: the accept loop has read the rest of its head for it, or pushed it out.
    wake: Notify,
}

struct SlotState {
    phase: Phase,
    /// The connection while its head is read. Its task holds the only strong reference; the accept
    /// loop upgrades this only under the lock and while `Reading`, so once the task has left that
    /// phase the stream is its own again.
    stream: Weak<TcpStream>,
    head: HeadBuf,
}

/// How far a connection has got, as judged when one must be pushed out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Standing {
    /// Answered as a stray: done with.
    Answered,
    /// Nothing more to wait for: closed by the client, gone, or over the size limits.
    Over,
    /// Has sent nothing at all.
    Idle,
    /// Has sent part of a head.
    Partial,
    /// Its whole head has arrived, or is being judged: never pushed out.
    Complete,
}

impl Slot {
    fn new(stream: Weak<TcpStream>) -> Slot {
        Slot {
            state: Mutex::new(SlotState {
                phase: Phase::Reading,
                stream,
                head: HeadBuf::default(),
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // Nothing panics while holding it; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sees how far the connection has got, first reading, for its task, whatever has already
    /// arrived on it (the task may not have run since it did), and pushes it out if `may_go` says
    /// so, all under one lock. Returns the standing and whether it was pushed out.
    fn push_out_if(&self, may_go: impl Fn(Standing) -> bool) -> (Standing, bool) {
        let mut state = self.lock();
        let standing = match state.phase {
            Phase::Held => Standing::Complete,
            Phase::Stray => Standing::Answered,
            Phase::Evicted => Standing::Over,
            Phase::Reading => match state.stream.upgrade() {
                // Its task has ended: the connection is closed.
                None => Standing::Over,
                Some(stream) => {
                    // A read error is kept in the head's end, like end of stream.
                    let _ = state.head.pull(&stream);
                    drop(stream);
                    match &state.head.end {
                        Some(Ok(_)) => Standing::Complete,
                        Some(Err(_)) => Standing::Over,
                        None if state.head.bytes.is_empty() => Standing::Idle,
                        None => Standing::Partial,
                    }
                }
            },
        };
        if state.phase == Phase::Reading && state.head.end.is_some() {
            // Read to its end here: the task takes it from here.
            self.wake.notify_one();
        }
        let go = may_go(standing);
        if go && state.phase == Phase::Reading {
            state.phase = Phase::Evicted;
            state.stream = Weak::new();
        }
        (standing, go)
    }
}

struct Entry {
    /// Accept order; lower is older.
    seq: u64,
    slot: Arc<Slot>,
    abort: AbortHandle,
}

/// The connection tasks. Dropping this aborts them all, which closes their connections.
#[derive(Default)]
struct Connections {
    tasks: JoinSet<Outcome>,
    live: HashMap<Id, Entry>,
    next_seq: u64,
    evicted: u64,
}

impl Connections {
    /// Starts a task for `stream`, accepted at `accepted`, after making room for it at the cap
    /// (see [`Connections::evict_one`]). Gives `stream` back if there is no room.
    fn admit(
        &mut self,
        stream: TcpStream,
        accepted: Instant,
        shared: &Arc<Shared>,
    ) -> Result<(), (TcpStream, Instant)> {
        if self.live.len() >= MAX_CONNECTIONS && !self.evict_one() {
            return Err((stream, accepted));
        }
        let deadline = accepted + HEAD_DEADLINE;
        let stream = Arc::new(stream);
        let slot = Arc::new(Slot::new(Arc::downgrade(&stream)));
        let seq = self.next_seq;
        self.next_seq += 1;
        let abort = self.tasks.spawn(serve(
            stream,
            Arc::clone(shared),
            Arc::clone(&slot),
            deadline,
        ));
        self.live.insert(abort.id(), Entry { seq, slot, abort });
        Ok(())
    }

    /// Pushes out one connection: the oldest that was answered as a stray (it is done with), else
    /// the oldest that has sent nothing (an idle client; the browser sends its head as soon as it
    /// connects) or has nothing more to send, else the oldest that has sent part of a head (a
    /// dripping client). What has already arrived on a connection counts, not only what its task
    /// has read: a connection whose whole head is in, perhaps the browser's callback still unread
    /// in the socket's buffer, is never pushed out but left to its task to judge.
    ///
    /// If every connection has its whole head in, none is pushed out and the new connection waits
    /// (returns false). That state passes at once: each of those tasks is about to judge its head,
    /// which either ends the wait or makes it a stray that can go. Dropping the new connection
    /// instead could drop the browser's, and pushing out one of the heads could drop the callback.
    fn evict_one(&mut self) -> bool {
        let mut by_age: Vec<(u64, Id, Arc<Slot>)> = self
            .live
            .iter()
            .map(|(id, e)| (e.seq, *id, Arc::clone(&e.slot)))
            .collect();
        by_age.sort_unstable_by_key(|(seq, ..)| *seq);
        let Some(entry) = pick(&by_age).and_then(|id| self.live.remove(&id)) else {
            return false;
        };
        // Ends the task at its next await (a reading task is never inside a read then, and would
        // stop at the `Evicted` phase anyway); dropping its stream closes the connection.
        entry.abort.abort();
        self.evicted += 1;
        true
    }

    fn forget(&mut self, id: Id) {
        self.live.remove(&id);
    }
}

/// The connection to push out, of `by_age` (oldest first), marked `Evicted` if it was reading; see
/// [`Connections::evict_one`].
fn pick(by_age: &[(u64, Id, Arc<Slot>)]) -> Option<Id> {
    // Answered as a stray: its phase says so, with nothing to read.
    if let Some((_, id, _)) = by_age
        .iter()
        .find(|(.., slot)| slot.lock().phase == Phase::Stray)
    {
        return Some(*id);
    }
    // Sent nothing, or has nothing more to send.
    let mut partial = Vec::new();
    for (_, id, slot) in by_age {
        let done_or_idle = |s| matches!(s, Standing::Answered | Standing::Over | Standing::Idle);
        match slot.push_out_if(done_or_idle) {
            (_, true) => return Some(*id),
            (Standing::Partial, false) => partial.push((*id, slot)),
            _ => {}
        }
    }
    // Part of a head, unless the rest has arrived since it was looked at.
    partial
        .into_iter()
        .find(|(_, slot)| slot.push_out_if(|s| s != Standing::Complete).1)
        .map(|(id, _)| id)
}

/// How one connection ended.
enum Outcome {
    /// Decisive, and answered.
    Done(Result<Callback, AuthError>),
    /// The code came: the connection is kept to answer with the sign-in's outcome.
    Arrived(AuthorizationCode, TcpStream),
    /// A stray request was answered with its page.
    Answered,
    /// 414 or 431.
    TooLarge,
    /// Not an HTTP/1.x request head; answered 400.
    Malformed,
    /// The head did not arrive by the deadline.
    TimedOut,
    /// The client went away, or the connection was pushed out for a newer one.
    Gone,
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    /// Times a new connection had to wait for room (every connection held had its head in).
    waited: u64,
    answered: u64,
    too_large: u64,
    malformed: u64,
    timed_out: u64,
    gone: u64,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done(_) | Outcome::Arrived(..) => {}
            Outcome::Answered => self.answered += 1,
            Outcome::TooLarge => self.too_large += 1,
            Outcome::Malformed => self.malformed += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::Gone => self.gone += 1,
        }
    }
}

/// One connection, one request: read the head, judge it, answer, close.
async fn serve(
    stream: Arc<TcpStream>,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    deadline: Instant,
) -> Outcome {
    let lang = shared.expect.language;
    let (head, end) = match read_head(&stream, &slot, deadline).await {
        Some(read) => read,
        None => return Outcome::TimedOut,
    };
    // The head is in and the slot says `Held` (or `Evicted`), so the accept loop no longer
    // touches the stream: this is the only reference left.
    let Some(mut stream) = Arc::into_inner(stream) else {
        return Outcome::Gone;
    };
    let (verdict, outcome) = match end {
        Err(HeadError::Gone) => return Outcome::Gone,
        Err(HeadError::LineTooLong) => (
            Verdict::Stray(pages::not_found(lang, 414)),
            Outcome::TooLarge,
        ),
        Err(HeadError::HeadTooLarge) => (
            Verdict::Stray(pages::not_found(lang, 431)),
            Outcome::TooLarge,
        ),
        Ok(end) => judge_head(&head[..end], &shared),
    };
    match verdict {
        Verdict::Stray(page) => {
            slot.lock().phase = Phase::Stray;
            shared.room.notify_one();
            if write_answer(&mut stream, &response(&page)).await {
                linger(&mut stream).await;
            }
            outcome
        }
        // The slot stays `Held`: the decisive callback is never pushed out.
        Verdict::Code(code) => Outcome::Arrived(code, stream),
        Verdict::Done(page, result) => {
            // The result stands even if the browser has gone before reading its page.
            if write_answer(&mut stream, &response(&page)).await {
                drain_ready(&mut stream);
            }
            Outcome::Done(result)
        }
    }
}

enum HeadError {
    LineTooLong,
    HeadTooLarge,
    /// End of stream or a read error before the head was complete, or pushed out.
    Gone,
}

/// Reads the request head, or takes it as the accept loop has read it: its bytes and its length
/// (or why there is none), with the slot moved out of `Reading`. `None` if the head is not in by
/// `deadline`; what has arrived by then is read first.
async fn read_head(
    stream: &TcpStream,
    slot: &Slot,
    deadline: Instant,
) -> Option<(Vec<u8>, Result<usize, HeadError>)> {
    let mut late = false;
    loop {
        {
            let mut state = slot.lock();
            if state.phase == Phase::Evicted {
                return Some((Vec::new(), Err(HeadError::Gone)));
            }
            if state.head.end.is_none() {
                if late {
                    let _ = state.head.pull(stream);
                } else {
                    // Only once tokio has seen the socket readable; running dry clears that.
                    let _ = stream.try_io(Interest::READABLE, || state.head.pull(stream));
                }
            }
            if let Some(end) = state.head.end.take() {
                state.phase = Phase::Held;
                state.stream = Weak::new();
                return Some((std::mem::take(&mut state.head.bytes), end));
            }
        }
        if late {
            return None;
        }
        tokio::select! {
            biased;
            _ = slot.wake.notified() => {}
            ready = stream.readable() => {
                if ready.is_err() {
                    return Some((Vec::new(), Err(HeadError::Gone)));
                }
            }
            _ = tokio::time::sleep_until(deadline) => late = true,
        }
    }
}

/// A request head as it arrives.
#[derive(Default)]
struct HeadBuf {
    bytes: Vec<u8>,
    /// Where the request line ends, once it has.
    line_end: Option<usize>,
    /// Set when reading is over: the head's length, or why there is none.
    end: Option<Result<usize, HeadError>>,
}

impl HeadBuf {
    /// Reads what has arrived on `stream`, without waiting, until the head ends or breaks a
    /// limit (which sets `end`) or nothing more has arrived (`WouldBlock`). Each byte is looked at
    /// a bounded number of times, however the client splits its writes and however often this
    /// is called. Reads the socket itself, not through tokio's idea of whether it is readable,
    /// which may not have caught up yet.
    fn pull(&mut self, stream: &TcpStream) -> io::Result<()> {
        let socket = SockRef::from(stream);
        let mut socket: &Socket = &socket;
        while self.end.is_none() {
            let start = self.bytes.len();
            let room = MAX_HEAD - start;
            if room == 0 {
                self.end = Some(Err(match self.line_end {
                    None => HeadError::LineTooLong,
                    Some(_) => HeadError::HeadTooLarge,
                }));
                break;
            }
            self.bytes.resize(start + room.min(4096), 0);
            let read = io::Read::read(&mut socket, &mut self.bytes[start..]);
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    self.bytes.truncate(start);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Err(e),
                        io::ErrorKind::Interrupted => continue,
                        _ => {
                            self.end = Some(Err(HeadError::Gone));
                            break;
                        }
                    }
                }
            };
            self.bytes.truncate(start + n);
            if n == 0 {
                self.end = Some(Err(HeadError::Gone));
                break;
            }
            if self.line_end.is_none() {
                self.line_end = self.bytes[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|i| start + i);
            }
            match self.line_end {
                Some(end) if end > MAX_REQUEST_LINE => self.end = Some(Err(HeadError::LineTooLong)),
                None if self.bytes.len() > MAX_REQUEST_LINE => {
                    self.end = Some(Err(HeadError::LineTooLong))
                }
                // An empty line ends the head; it may straddle the previous read.
                _ => self.end = head_end(&self.bytes, start.saturating_sub(2)).map(Ok),
            }
        }
        Ok(())
    }
}

/// The end of the first `\n\n` or `\n\r\n` at or after `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| match buf[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

enum Verdict {
    Stray(Page),
    /// The code: answered later, once the sign-in's outcome is known.
    Code(AuthorizationCode),
    /// Decisive, and answered now: a provider's refusal, or a check that failed.
    Done(Page, Result<Callback, AuthError>),
}

/// The parts of a request head that are judged.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    /// The value of the `Host` field, if there is exactly one.
    host: Option<&'a [u8]>,
}

fn judge_head(head: &[u8], shared: &Shared) -> (Verdict, Outcome) {
    let lang = shared.expect.language;
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return (
                Verdict::Stray(pages::not_found(lang, 431)),
                Outcome::TooLarge,
            )
        }
        Ok(httparse::Status::Partial) | Err(_) => {
            return (
                Verdict::Stray(pages::not_found(lang, 400)),
                Outcome::Malformed,
            )
        }
    }
    let mut hosts = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => Some(h.value),
        _ => None,
    };
    let head = Head {
        method: request.method.unwrap_or(""),
        target: request.path.unwrap_or(""),
        host,
    };
    let verdict = judge(&head, &shared.host, &shared.expect);
    (verdict, Outcome::Answered)
}

fn judge(request: &Head<'_>, host: &str, expect: &Expectation) -> Verdict {
    let lang = expect.language;
    if request.method != "GET" {
        return Verdict::Stray(pages::not_found(lang, 405));
    }
    // DNS rebinding: a page on some other name that resolves here must not reach the callback.
    if request.host != Some(host.as_bytes()) {
        return Verdict::Stray(pages::not_found(lang, 400));
    }
    let expected = ExpectedCallback {
        path: CALLBACK_PATH,
        state: &expect.state,
        issuer: &expect.issuer,
        requires_iss: expect.requires_iss,
    };
    // An absolute-form target (`http://...`) is not the path, so it is a stray like any other.
    match parse_callback(request.target, &expected) {
        Ok(Callback::Code(code)) => Verdict::Code(code),
        Ok(Callback::Refused(refusal)) => {
            let page = pages::refused(lang, &refusal);
            Verdict::Done(page, Ok(Callback::Refused(refusal)))
        }
        Err(CallbackError::WrongPath) => Verdict::Stray(pages::not_found(lang, 404)),
        Err(e) if e.is_unrelated() => Verdict::Stray(pages::unrelated(lang)),
        Err(e) => Verdict::Done(
            pages::failed(lang, &e.to_string()),
            Err(AuthError::Callback(e)),
        ),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// The whole answer, head and page, in one buffer.
fn response(page: &Page) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", page.status, reason(page.status));
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", pages::CSP),
        ("Connection", "close"),
    ] {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if page.status == 405 {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", page.html.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(page.html.as_bytes());
    bytes
}

/// Writes `bytes` and shuts the write side, within [`WRITE_DEADLINE`]. False if the client did
/// not take it in time or went away.
async fn write_answer(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    let written = timeout(WRITE_DEADLINE, async {
        stream.write_all(bytes).await?;
        stream.shutdown().await
    })
    .await;
    matches!(written, Ok(Ok(())))
}

/// Reads and discards what the client still sends (pipelined requests, a body), until it closes,
/// for at most [`LINGER`] and [`LINGER_BYTES`].
async fn linger(stream: &mut TcpStream) {
    let mut scratch = [0u8; 4096];
    let mut total = 0;
    let _ = timeout(LINGER, async {
        while total < LINGER_BYTES {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Discards what has already arrived, without waiting, so that the close is a plain one.
fn drain_ready(stream: &mut TcpStream) {
    let mut scratch = [0u8; 4096];
    let mut total = 0;
    while total < LINGER_BYTES {
        match stream.try_read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const STATE: &str = "state-123";
    const ISSUER: &str = "http://127.0.0.1:3001/oidc";
    /// The spec: the real callback is answered within this, whatever else happens.
    const ANSWER_WITHIN: Duration = Duration::from_secs(2);
    /// Upper bound for any single test step that is not the 2 s requirement.
    const STEP: Duration = Duration::from_secs(15);

    fn expectation() -> Expectation {
        Expectation {
            state: openidconnect::CsrfToken::new(STATE.into()),
            issuer: ISSUER.into(),
            requires_iss: true,
            language: pages::Language::En,
        }
    }

    fn iss() -> String {
        url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect()
    }

    fn get(port: u16, target: &str) -> String {
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\n\r\n")
    }

    fn good_callback(port: u16) -> String {
        get(
            port,
            &format!("/callback?code=the-code&state={STATE}&iss={}", iss()),
        )
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// Binds and starts waiting in a task of its own, answering a code with the signed-in page
    /// as soon as it arrives (as a sign-in whose exchange succeeds at once would).
    fn start() -> (u16, tokio::task::JoinHandle<Result<Callback, AuthError>>) {
        let listener = Loopback::bind().expect("bind 127.0.0.1:0");
        let port = listener.port();
        let wait = async move {
            let arrival = listener.wait(expectation()).await?;
            arrival.reply.send(pages::signed_in(pages::Language::En));
            Ok(arrival.callback)
        };
        (port, tokio::spawn(wait))
    }

    async fn finish(
        wait: tokio::task::JoinHandle<Result<Callback, AuthError>>,
    ) -> Result<Callback, AuthError> {
        timeout(STEP, wait)
            .await
            .expect("the wait ended in time")
            .expect("the wait task did not panic")
    }

    fn assert_code(result: Result<Callback, AuthError>) {
        match result {
            Ok(Callback::Code(code)) => assert_eq!(code.secret(), "the-code"),
            other => panic!("expected the code, got {other:?}"),
        }
    }

    /// What came back on one connection.
    #[derive(Debug)]
    struct Reply {
        bytes: Vec<u8>,
    }

    impl Reply {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.bytes).into_owned()
        }
        fn status(&self) -> Option<u16> {
            let text = self.text();
            let line = text.lines().next()?;
            let mut parts = line.split(' ');
            (parts.next()? == "HTTP/1.1").then_some(())?;
            parts.next()?.parse().ok()
        }
        fn header(&self, name: &str) -> Option<String> {
            let text = self.text();
            let (head, _) = text.split_once("\r\n\r\n")?;
            head.lines().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        }
        fn body(&self) -> String {
            let text = self.text();
            text.split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default()
        }
        /// The number of answers on the connection.
        fn answers(&self) -> usize {
            self.text().matches("HTTP/1.1 ").count()
        }
    }

    /// Reads until the server closes (or resets) the connection.
    async fn read_reply(stream: &mut TcpStream, within: Duration) -> Reply {
        let mut bytes = Vec::new();
        let read = timeout(within, async {
            let mut chunk = [0u8; 8192];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "the server closed the connection in time");
        Reply { bytes }
    }

    /// Sends `request` on a new connection and reads the answer to the end.
    async fn exchange(port: u16, request: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(addr(port)).await.expect("connect");
        stream.write_all(request).await.expect("send the request");
        read_reply(&mut stream, STEP).await
    }

    /// Sends the good callback and checks that the signed-in page came back within 2 s.
    async fn real_callback_is_answered_in_time(port: u16) {
        let started = std::time::Instant::now();
        let reply = timeout(
            ANSWER_WITHIN,
            exchange(port, good_callback(port).as_bytes()),
        )
        .await
        .expect("the real callback is answered within 2 s");
        let took = started.elapsed();
        assert!(took < ANSWER_WITHIN, "took {took:?}");
        assert_eq!(reply.status(), Some(200), "{}", reply.text());
        assert!(reply.body().contains("id=\"ok\""));
        assert_eq!(reply.header("connection").as_deref(), Some("close"));
    }

    /// True when the server has closed `stream`: a read gives end of stream or an error.
    async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
        let mut chunk = [0u8; 4096];
        timeout(within, async {
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strays_get_their_page_and_the_real_callback_ends_the_wait() {
        let (port, wait) = start();
        let wrong_state = format!("/callback?code=forged&state=nope&iss={}", iss());
        let no_state = format!("/callback?error=access_denied&iss={}", iss());
        let strays: Vec<(String, u16, &str)> = vec![
            (get(port, "/favicon.ico"), 404, "not-found"),
            (get(port, "/somewhere?state=state-123"), 404, "not-found"),
            (
                format!("GET http://127.0.0.1:{port}/callback?code=a&state={STATE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
                404,
                "not-found",
            ),
            (
                format!("POST /callback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 3\r\n\r\na=b"),
                405,
                "not-found",
            ),
            (
                format!("GET /callback?code=a&state={STATE} HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
                400,
                "not-found",
            ),
            (
                format!("GET /callback?code=a&state={STATE} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
                400,
                "not-found",
            ),
            (
                format!("GET /callback?code=a&state={STATE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
                400,
                "not-found",
            ),
            (
                format!("GET /callback?code=a&state={STATE} HTTP/1.0\r\n\r\n"),
                400,
                "not-found",
            ),
            (get(port, &wrong_state), 400, "unrelated"),
            (get(port, &no_state), 400, "unrelated"),
            ("\u{16}\u{3}\u{1} not http\r\n\r\n".to_string(), 400, "not-found"),
        ];
        for (request, status, page) in &strays {
            let reply = exchange(port, request.as_bytes()).await;
            assert_eq!(reply.status(), Some(*status), "{}", reply.text());
            assert!(reply.body().contains(&format!("id=\"{page}\"")));
            for (name, value) in [
                ("content-type", "text/html; charset=utf-8"),
                ("cache-control", "no-store"),
                ("referrer-policy", "no-referrer"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "DENY"),
                // No script, nothing from anywhere; only the page's own inline style.
                (
                    "content-security-policy",
                    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                     form-action 'none'; frame-ancestors 'none'",
                ),
                ("connection", "close"),
            ] {
                assert_eq!(reply.header(name).as_deref(), Some(value), "{name}");
            }
            assert_eq!(
                reply.header("content-length"),
                Some(reply.body().len().to_string())
            );
            assert_eq!(reply.answers(), 1);
            assert!(!wait.is_finished(), "a stray ended the wait");
        }
        // Host is matched whatever the case of the field name.
        let request = format!(
            "GET /callback?code=the-code&state={STATE}&iss={} HTTP/1.1\r\nhOsT: 127.0.0.1:{port}\r\n\r\n",
            iss()
        );
        let reply = timeout(ANSWER_WITHIN, exchange(port, request.as_bytes()))
            .await
            .expect("answered within 2 s");
        assert_eq!(reply.status(), Some(200), "{}", reply.text());
        assert!(reply.body().contains("id=\"ok\""));
        assert_eq!(reply.header("connection").as_deref(), Some("close"));
        assert_code(finish(wait).await);
    }

    /// On a current-thread runtime, as the app's flow tests run the service.
    #[tokio::test(flavor = "current_thread")]
    async fn a_decisive_failure_is_answered_and_ends_the_wait() {
        let (port, wait) = start();
        let target = format!("/callback?code=a&state={STATE}&iss=http%3A%2F%2Fevil%2Foidc");
        let reply = exchange(port, get(port, &target).as_bytes()).await;
        assert_eq!(reply.status(), Some(400));
        assert!(reply.body().contains("id=\"failed\""));
        match finish(wait).await {
            Err(AuthError::Callback(CallbackError::IssuerMismatch)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelining_without_reading_does_not_hold_up_the_callback() {
        let (port, wait) = start();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let flood = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr(port)).expect("connect");
            let one = format!("GET /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let all = one.repeat(5000);
            // Never reads; the server may close before it is all written.
            let _ = stream.write_all(all.as_bytes());
            // Holds the connection open until the callback has been answered.
            let _ = done_rx.recv_timeout(STEP);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut answers = Vec::new();
            let _ = stream.read_to_end(&mut answers);
            String::from_utf8_lossy(&answers)
                .matches("HTTP/1.1 ")
                .count()
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
        let _ = done_tx.send(());
        let answers = flood.join().expect("the flood thread");
        assert!(answers <= 1, "one request per connection, got {answers}");
    }

    /// Connects and sends `head` one byte every 500 ms, over and over. The task ends when the
    /// server closes the connection, with the time since connecting, or with `None` if it did
    /// not close within the head deadline and a margin.
    async fn drip(port: u16, head: &'static [u8]) -> tokio::task::JoinHandle<Option<Duration>> {
        let stream = TcpStream::connect(addr(port)).await.expect("connect");
        let connected = Instant::now();
        let (mut read, mut write) = stream.into_split();
        tokio::spawn(async move {
            let dripper = tokio::spawn(async move {
                for byte in head.iter().cycle() {
                    if write.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
            let mut chunk = [0u8; 1024];
            let closed = timeout(HEAD_DEADLINE + Duration::from_secs(3), async {
                loop {
                    match read.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            dripper.abort();
            closed.ok().map(|_| connected.elapsed())
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_drip_does_not_hold_up_the_callback_and_is_cut_off_at_the_head_deadline() {
        // While several clients drip, the real callback is answered in time.
        let (port, wait) = start();
        let mut drips = Vec::new();
        for _ in 0..5 {
            drips.push(drip(port, b"GET /callback?code=x&state=y HTTP/1.1\r\n").await);
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
        for d in drips {
            assert!(
                d.await.expect("drip").is_some(),
                "closed when the wait ended"
            );
        }

        // Left alone, dripping connections are closed at the head deadline, and the wait goes on.
        let (port, wait) = start();
        let mut drips = Vec::new();
        for _ in 0..5 {
            drips.push(drip(port, b"GET /callback HTTP/1.1\r\nX-Slow: ").await);
        }
        for d in drips {
            let after = d.await.expect("drip");
            let after = after.expect("the server closed a dripping connection");
            assert!(
                after >= HEAD_DEADLINE - Duration::from_millis(100),
                "closed at the deadline, not before: {after:?}"
            );
        }
        assert!(!wait.is_finished());
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundreds_of_idle_connections_do_not_lock_out_the_callback() {
        let (port, wait) = start();
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(TcpStream::connect(addr(port)).await.expect("connect"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
        // The oldest were pushed out for newer ones while the wait ran (300 > the cap).
        assert!(closed_by_server(&mut idle[0], Duration::from_secs(2)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_heads_are_refused_and_the_wait_goes_on() {
        let (port, wait) = start();

        // A 1 MB request line that never ends: answered (414) or closed without reading it all.
        let mut line = b"GET /".to_vec();
        line.resize(1024 * 1024, b'a');
        endless_head_is_refused(port, line, 414).await;

        // A header block that never ends: 431 or closed.
        let mut head =
            format!("GET /callback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: ").into_bytes();
        head.resize(1024 * 1024, b'b');
        endless_head_is_refused(port, head, 431).await;

        // Too many small fields: 431.
        let mut many = format!("GET /callback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        for i in 0..200 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let reply = exchange(port, many.as_bytes()).await;
        assert_eq!(reply.status(), Some(431), "{}", reply.text());

        // A line just over the cap, sent whole: 414.
        let long = get(
            port,
            &format!("/callback?x={}", "a".repeat(MAX_REQUEST_LINE)),
        );
        let reply = exchange(port, long.as_bytes()).await;
        assert_eq!(reply.status(), Some(414), "{}", reply.text());

        assert!(!wait.is_finished(), "an oversized head ended the wait");
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
    }

    /// Waits until `port` can be bound again (std sets SO_REUSEADDR, as the app's checks do).
    /// Sends a megabyte of head that never ends and expects `status` or a close, within 5 s and
    /// without the server reading it all.
    async fn endless_head_is_refused(port: u16, head: Vec<u8>, status: u16) {
        let stream = TcpStream::connect(addr(port)).await.expect("connect");
        let (mut read, mut write) = stream.into_split();
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&head).await;
            write
        });
        let mut bytes = Vec::new();
        let ended = timeout(Duration::from_secs(5), read.read_to_end(&mut bytes)).await;
        assert!(ended.is_ok(), "the server answered or closed");
        let reply = Reply { bytes };
        assert!(
            reply.status().is_none() || reply.status() == Some(status),
            "{}",
            reply.text()
        );
        writer.abort();
    }

    async fn port_is_free(port: u16) -> bool {
        for _ in 0..40 {
            if std::net::TcpListener::bind(addr(port)).is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_end_of_the_wait_closes_the_port_and_every_connection() {
        // Ended by the result.
        let (port, wait) = start();
        let mut idle = Vec::new();
        for _ in 0..5 {
            idle.push(TcpStream::connect(addr(port)).await.expect("connect"));
        }
        let mut half = TcpStream::connect(addr(port)).await.expect("connect");
        half.write_all(b"GET /callback HTTP/1.1\r\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
        for stream in idle.iter_mut().chain([&mut half]) {
            assert!(closed_by_server(stream, Duration::from_secs(1)).await);
        }
        assert!(TcpStream::connect(addr(port)).await.is_err());
        assert!(port_is_free(port).await);

        // Ended by dropping the future, as cancel and the timeout do.
        let listener = Loopback::bind().expect("bind");
        let port = listener.port();
        let mut idle = Vec::new();
        tokio::select! {
            result = listener.wait(expectation()) => panic!("the wait ended early: {:?}", result.map(|a| a.callback)),
            _ = async {
                for _ in 0..5 {
                    idle.push(TcpStream::connect(addr(port)).await.expect("connect"));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            } => {}
        }
        for stream in &mut idle {
            assert!(closed_by_server(stream, Duration::from_secs(1)).await);
        }
        assert!(TcpStream::connect(addr(port)).await.is_err());
        assert!(port_is_free(port).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_that_never_read_their_answer_do_not_block_others() {
        let (port, wait) = start();
        let mut deaf = Vec::new();
        for _ in 0..200 {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            // As small as the OS allows, so the answer cannot all sit in this side's buffer.
            let _ = socket.set_recv_buffer_size(1);
            let mut stream = socket.connect(addr(port)).await.expect("connect");
            stream
                .write_all(get(port, "/favicon.ico").as_bytes())
                .await
                .expect("write");
            deaf.push((stream, Instant::now()));
        }
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
        // Each got one answer at most (a reset may have cut it short), then a close.
        for (stream, _) in &mut deaf {
            let reply = read_reply(stream, Duration::from_secs(2)).await;
            assert!(reply.answers() <= 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_nobody_reads_gives_up_at_the_write_deadline() {
        let listener = TcpListener::bind(addr(0)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = TcpStream::connect(addr(port)).await.expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        // Far more than any socket buffer holds; the client never reads.
        let huge = vec![b'x'; 64 * 1024 * 1024];
        let started = std::time::Instant::now();
        let written = timeout(STEP, write_answer(&mut server, &huge))
            .await
            .expect("write_answer returned");
        assert!(!written);
        let took = started.elapsed();
        // SECURITY.md: "the answer [must] be written within 2 s".
        let deadline = Duration::from_secs(2);
        assert!(
            took >= deadline - Duration::from_millis(50)
                && took < deadline + Duration::from_secs(1),
            "{took:?}"
        );
        drop(client);
    }

    #[test]
    fn only_errors_about_one_connection_are_skipped_by_accept() {
        for kind in [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::Interrupted,
            io::ErrorKind::WouldBlock,
        ] {
            assert!(accept_error_is_transient(&io::Error::from(kind)));
        }
        for kind in [
            io::ErrorKind::OutOfMemory,
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::Other,
        ] {
            assert!(!accept_error_is_transient(&io::Error::from(kind)));
        }
        let emfile = io::Error::from_raw_os_error(24);
        assert!(!accept_error_is_transient(&emfile));
        let e = AuthError::Listener(format!("a connection could not be accepted ({emfile})"));
        assert_eq!(e.code(), "loopback.unavailable");
    }

    #[test]
    fn the_end_of_the_head_is_found_across_reads() {
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 0),
            Some(27)
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: a\n\nrest", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        // The previous read ended after the last field's line feed (25 bytes), or inside it.
        let whole = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for start in 20..whole.len() {
            assert_eq!(
                head_end(whole, start.saturating_sub(2)),
                Some(27),
                "{start}"
            );
        }
        assert_eq!(head_end(b"\n", 0), None);
        assert_eq!(head_end(b"", 0), None);
    }

    /// A request for a stray path whose request line, with its `\r`, is `len` bytes long.
    fn line_of(port: u16, len: usize) -> String {
        let bare = "GET /x HTTP/1.1\r".len();
        let target = format!("/x{}", "a".repeat(len - bare));
        let request = get(port, &target);
        assert_eq!(request.find('\n'), Some(len));
        request
    }

    /// A head of exactly `len` bytes, its final empty line included, of `fields` fields (at
    /// least 2: `Host` and the one that pads it).
    fn head_of(port: u16, len: usize, fields: usize) -> String {
        let mut head = format!("GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        for i in 2..fields {
            head.push_str(&format!("X-{i}: v\r\n"));
        }
        let rest = len - head.len() - "X-Pad: \r\n\r\n".len();
        head.push_str(&format!("X-Pad: {}\r\n\r\n", "p".repeat(rest)));
        assert_eq!(head.len(), len);
        head
    }

    /// SECURITY.md's numbers, each at its edge and one past it: a request line of 4 KiB (414
    /// past it), a head of 16 KiB and of 64 fields (431 past either).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_size_limit_holds_at_its_documented_edge() {
        const LINE: usize = 4 * 1024;
        const HEAD: usize = 16 * 1024;
        const FIELDS: usize = 64;
        let (port, wait) = start();
        let cases = [
            ("a request line of 4 KiB", line_of(port, LINE), 404),
            (
                "a request line of 4 KiB and a byte",
                line_of(port, LINE + 1),
                414,
            ),
            ("a head of 16 KiB", head_of(port, HEAD, 2), 404),
            (
                "a head of 16 KiB and a byte",
                head_of(port, HEAD + 1, 2),
                431,
            ),
            ("a head of 64 fields", head_of(port, 2048, FIELDS), 404),
            ("a head of 65 fields", head_of(port, 2048, FIELDS + 1), 431),
        ];
        for (name, request, status) in cases {
            let reply = exchange(port, request.as_bytes()).await;
            assert_eq!(reply.status(), Some(status), "{name}: {}", reply.text());
        }
        // A request line still going at 4 KiB and a byte is refused then, not when the head's
        // 16 KiB or 5 seconds are up.
        let unended = &line_of(port, LINE + 1)[..LINE + 1];
        let sent = std::time::Instant::now();
        let reply = exchange(port, unended.as_bytes()).await;
        assert_eq!(reply.status(), Some(414), "{}", reply.text());
        assert!(sent.elapsed() < ANSWER_WITHIN, "{:?}", sent.elapsed());
        assert!(!wait.is_finished(), "a stray ended the wait");
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
    }

    /// SECURITY.md: "the head must arrive within 5 s of the connection". One that is whole a
    /// second before is judged; one that is not whole at 5 s is cut off then, not later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_head_is_judged_until_5_seconds_after_the_connection_and_cut_off_then() {
        const DEADLINE: Duration = Duration::from_secs(5);
        let (port, wait) = start();
        let head = get(port, "/favicon.ico");
        let (first, rest) = head.split_at(10);

        let mut in_time = TcpStream::connect(addr(port)).await.expect("connect");
        let mut late = TcpStream::connect(addr(port)).await.expect("connect");
        let connected = Instant::now();
        in_time.write_all(first.as_bytes()).await.expect("send");
        late.write_all(first.as_bytes()).await.expect("send");
        tokio::time::sleep(DEADLINE - Duration::from_secs(1)).await;
        in_time.write_all(rest.as_bytes()).await.expect("send");
        let reply = read_reply(&mut in_time, STEP).await;
        assert_eq!(reply.status(), Some(404), "{}", reply.text());

        assert!(closed_by_server(&mut late, STEP).await);
        let cut = connected.elapsed();
        assert!(
            cut >= DEADLINE - Duration::from_millis(50) && cut < DEADLINE + Duration::from_secs(1),
            "cut off after {cut:?}"
        );
        assert!(!wait.is_finished());
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
    }

    /// The cap the module's documentation gives, pinned here rather than read from the constant.
    const CAP: usize = 128;

    /// Connects with a blocking connect, so that the handshake is done by the kernel while nothing
    /// runs on the test's runtime, and hands the stream to tokio.
    fn connect_now(port: u16) -> TcpStream {
        let stream = std::net::TcpStream::connect(addr(port)).expect("connect");
        stream.set_nonblocking(true).expect("non-blocking");
        TcpStream::from_std(stream).expect("register the stream")
    }

    /// Writes `bytes` straight into the socket, while nothing runs on the test's runtime.
    fn send_now(stream: &TcpStream, bytes: &[u8]) {
        let socket = socket2::SockRef::from(stream);
        let mut socket: &socket2::Socket = &socket;
        socket.write_all(bytes).expect("write");
    }

    /// Waits until the runtime runs `n` tasks (the wait's and one per connection it took in),
    /// then a little longer, so that each of them has run until it waits to read.
    async fn until_tasks(n: usize) {
        let metrics = tokio::runtime::Handle::current().metrics();
        timeout(STEP, async {
            while metrics.num_alive_tasks() < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the listener took the connections in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// How long a connection that should stay open is watched.
    const STAYS_OPEN: Duration = Duration::from_millis(200);

    /// What the listener logs on this thread, from [`Record::watch`] until the guard drops. The
    /// tests that read it run on one thread, so the wait's task logs here too.
    #[derive(Clone, Default)]
    struct Record(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Record {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            kept.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Record {
        type Writer = Record;
        fn make_writer(&'a self) -> Record {
            self.clone()
        }
    }

    impl Record {
        fn watch() -> (Record, tracing::subscriber::DefaultGuard) {
            let record = Record::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(record.clone())
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .finish();
            (record, tracing::subscriber::set_default(subscriber))
        }

        /// A count of the wait's closing line: `accepted`, `evicted`, `waited`...
        fn count(&self, field: &str) -> u64 {
            let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let text = String::from_utf8_lossy(&kept);
            let line = text
                .lines()
                .find(|l| l.contains("loopback wait ended"))
                .unwrap_or_else(|| panic!("no closing line in {text}"));
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(&format!("{field}=")))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {field} in {line}"))
        }
    }

    // These tests run on one thread and make the listener's next steps happen together: with the
    // blocking calls above, nothing of the listener runs until the test awaits, and then the new
    // connection (made first) is seen before the bytes sent after it.

    #[tokio::test(flavor = "current_thread")]
    async fn a_flood_already_running_does_not_push_out_the_browsers_request() {
        let (record, _watch) = Record::watch();
        let (port, wait) = start();
        // A flood of connections that send nothing, the cap's worth.
        let mut flood: Vec<TcpStream> = (0..CAP).map(|_| connect_now(port)).collect();
        // The browser connects; the oldest of the flood makes room for it.
        let mut browser = connect_now(port);
        assert!(closed_by_server(&mut flood[0], STEP).await);
        // The flood goes on, pushing out older connections that sent nothing, until the browser's
        // is the oldest.
        flood.extend((1..CAP).map(|_| connect_now(port)));
        assert!(closed_by_server(&mut flood[CAP - 1], STEP).await);
        // The flood's next connection and the browser's request arrive together.
        flood.push(connect_now(port));
        send_now(&browser, good_callback(port).as_bytes());
        let reply = timeout(ANSWER_WITHIN, read_reply(&mut browser, STEP))
            .await
            .expect("the callback is answered within 2 s");
        assert_eq!(reply.status(), Some(200), "{}", reply.text());
        assert!(reply.body().contains("id=\"ok\""));
        assert_code(finish(wait).await);
        // Exactly one pushed out for each connection past the cap, and none made to wait (the
        // flood's last connection may come after the callback ended the wait).
        let accepted = record.count("accepted");
        assert!(
            (2 * CAP as u64..=2 * CAP as u64 + 1).contains(&accepted),
            "{accepted}"
        );
        assert_eq!(record.count("evicted"), accepted - CAP as u64);
        assert_eq!(record.count("waited"), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_already_buffered_is_judged_and_one_that_sent_nothing_goes_instead() {
        let (port, wait) = start();
        // The oldest connection, with the cap's worth in all; none has sent anything yet.
        let mut buffered = connect_now(port);
        let mut idle: Vec<TcpStream> = (1..CAP).map(|_| connect_now(port)).collect();
        until_tasks(1 + CAP).await;
        // One more connection, and then the oldest's whole request, which is still unread when
        // the listener must make room.
        let _newcomer = connect_now(port);
        send_now(&buffered, get(port, "/favicon.ico").as_bytes());
        // The request was judged (a stray: its page), not cut off...
        let reply = read_reply(&mut buffered, STEP).await;
        assert_eq!(reply.status(), Some(404), "{}", reply.text());
        assert!(reply.body().contains("id=\"not-found\""));
        // ...and the oldest of those that sent nothing went instead, and only it.
        assert!(closed_by_server(&mut idle[0], STEP).await);
        assert!(!closed_by_server(&mut idle[1], STAYS_OPEN).await);
        assert!(!wait.is_finished(), "a stray ended the wait");
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn partial_heads_are_pushed_out_only_after_those_that_sent_nothing() {
        let (port, wait) = start();
        let part =
            format!("GET /callback?code=x&state={STATE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        // The oldest connection sends part of a head; the rest of the cap send nothing.
        let mut oldest = connect_now(port);
        send_now(&oldest, part.as_bytes());
        let mut idle: Vec<TcpStream> = (1..CAP).map(|_| connect_now(port)).collect();
        until_tasks(1 + CAP).await;
        // Newcomers that each send part of a head: every connection that sent nothing goes, the
        // oldest first, while the older partial head stays.
        let mut newer = Vec::new();
        for _ in 1..CAP {
            let stream = connect_now(port);
            send_now(&stream, part.as_bytes());
            newer.push(stream);
        }
        assert!(closed_by_server(&mut idle[CAP - 2], STEP).await);
        for stream in &mut idle {
            assert!(closed_by_server(stream, STEP).await);
        }
        assert!(
            !closed_by_server(&mut oldest, STAYS_OPEN).await,
            "a partial head was pushed out before connections that sent nothing"
        );
        // With none left that sent nothing, the next newcomer pushes out the oldest partial head.
        let _last = connect_now(port);
        assert!(closed_by_server(&mut oldest, STEP).await);
        assert!(!closed_by_server(&mut newer[0], STAYS_OPEN).await);
        assert!(!wait.is_finished());
        real_callback_is_answered_in_time(port).await;
        assert_code(finish(wait).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn when_every_connection_has_its_head_in_a_new_one_waits_and_none_is_dropped() {
        let (record, _watch) = Record::watch();
        let (port, wait) = start();
        let mut held: Vec<TcpStream> = (0..CAP).map(|_| connect_now(port)).collect();
        until_tasks(1 + CAP).await;
        // A new connection, then every held one's whole request, all unread when the listener
        // must make room: there is none to make, so the new connection waits.
        let mut browser = connect_now(port);
        for stream in &held {
            send_now(stream, get(port, "/favicon.ico").as_bytes());
        }
        // Every request is judged and answered; none was cut off for the newcomer...
        for stream in &mut held {
            let reply = read_reply(stream, STEP).await;
            assert_eq!(reply.status(), Some(404), "{}", reply.text());
        }
        // ...which was taken in once they had been answered.
        send_now(&browser, good_callback(port).as_bytes());
        let reply = timeout(ANSWER_WITHIN, read_reply(&mut browser, STEP))
            .await
            .expect("the callback is answered within 2 s");
        assert_eq!(reply.status(), Some(200), "{}", reply.text());
        assert_code(finish(wait).await);
        // It waited, rather than go past the cap. (It may then have pushed out one that was
        // answered, as a stray; each was answered above.)
        assert_eq!(record.count("accepted"), CAP as u64 + 1);
        assert_eq!(record.count("waited"), 1);
    }

    #[test]
    fn the_backlog_asked_for_is_the_systems_maximum() {
        assert_eq!(backlog_from(Some("4096\n")), 4096);
        assert_eq!(backlog_from(Some("65535")), 65535);
        // A system whose maximum is 128 gets 128; asking for more would be capped there anyway.
        assert_eq!(backlog_from(Some("128\n")), 128);
        for unreadable in [None, Some(""), Some("0"), Some("-1"), Some("lots")] {
            assert_eq!(backlog_from(unreadable), FALLBACK_BACKLOG, "{unreadable:?}");
        }
        if cfg!(target_os = "linux") {
            if let Ok(text) = std::fs::read_to_string(SOMAXCONN) {
                assert_eq!(backlog().to_string(), text.trim());
            }
        }
    }

    /// With std's backlog of 128, Linux queues 129 connections that are not accepted yet and drops
    /// the handshake of the next ones, so their connects wait for retransmits.
    #[test]
    fn twice_the_cap_of_connections_wait_in_the_backlog_where_the_system_allows() {
        let n = 2 * CAP;
        let somaxconn = std::fs::read_to_string(SOMAXCONN)
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok());
        if somaxconn.is_none_or(|max| max < n) {
            eprintln!("somaxconn is {somaxconn:?} here, under {n}; skipped");
            return;
        }
        // Bound and listening; nothing accepts.
        let listener = Loopback::bind().expect("bind");
        let held: Vec<std::net::TcpStream> = (0..n)
            .map(|i| {
                std::net::TcpStream::connect_timeout(
                    &addr(listener.port()),
                    Duration::from_millis(500),
                )
                .unwrap_or_else(|e| panic!("connection {i} was not queued: {e}"))
            })
            .collect();
        assert_eq!(held.len(), n);
    }

    /// Set in the child process of the thread test.
    const THREAD_PROBE: &str = "LOOPBACK_THREAD_PROBE";

    fn threads() -> Option<usize> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))?
            .trim()
            .parse()
            .ok()
    }

    /// Runs [`thread_probe`] alone in a child process, where no other test starts threads.
    #[test]
    fn connections_do_not_cost_threads() {
        if threads().is_none() {
            eprintln!("no /proc/self/status here; skipped");
            return;
        }
        let module = module_path!();
        let name = module.split_once("::").map_or(module, |(_, rest)| rest);
        let exe = std::env::current_exe().expect("the test binary");
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                &format!("{name}::thread_probe"),
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(THREAD_PROBE, "1")
            .output()
            .expect("run the probe");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    #[ignore = "run by connections_do_not_cost_threads in a process of its own"]
    fn thread_probe() {
        if std::env::var_os(THREAD_PROBE).is_none() {
            return;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (port, wait) = start();
            let mut idle = vec![TcpStream::connect(addr(port)).await.expect("connect")];
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = threads().expect("thread count");
            for _ in 0..300 {
                idle.push(TcpStream::connect(addr(port)).await.expect("connect"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = threads().expect("thread count");
            eprintln!("threads before {before}, after 300 connections {after}");
            assert!(after <= before, "threads grew from {before} to {after}");
            real_callback_is_answered_in_time(port).await;
            assert_code(finish(wait).await);
        });
    }
}
