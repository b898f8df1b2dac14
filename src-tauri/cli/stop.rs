//! Stopping a command (Ctrl-C, `timeout`'s SIGTERM, a closed terminal's SIGHUP) without losing
//! what Logto sent. Logto rotates the refresh token on every use and revokes the whole grant when
//! a used one comes back, so a `token` stopped after its refresh reached Logto but before the new
//! refresh token was in the keychain would end the sign-in everywhere at the next refresh. Such a
//! stop waits for the refresh to be kept, then ends with the signal's exit code (128 + its
//! number); any other stop ends at once.

use std::future::Future;

use logto_native::AuthService;

/// Runs `work` unless a stop signal comes first: `Err(exit code)` when one did.
pub async fn deferred<T>(service: &AuthService, work: impl Future<Output = T>) -> Result<T, i32> {
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(e) => {
            // Without handlers the signals keep their default effect: no worse than before.
            tracing::debug!(error = %e, "stop signals are not handled");
            return Ok(work.await);
        }
    };
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => Ok(done),
        code = signals.next() => {
            if service.has_unkept_answer() {
                eprintln!("logto-desktop: stopping once Logto's answer is saved in the keychain.");
                let _ = work.await;
            }
            Err(code)
        }
    }
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The exit code of the first stop signal: 128 plus its number, as a shell reports it.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.interrupt.recv() => 128 + libc_signal::SIGINT,
            _ = self.terminate.recv() => 128 + libc_signal::SIGTERM,
            _ = self.hangup.recv() => 128 + libc_signal::SIGHUP,
        }
    }
}

/// The POSIX numbers (the same on every Unix this builds for).
#[cfg(unix)]
mod libc_signal {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn listen() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn next(&mut self) -> i32 {
        match tokio::signal::ctrl_c().await {
            Ok(()) => 130,
            // Ctrl-C cannot be watched: never report one.
            Err(_) => std::future::pending().await,
        }
    }
}
