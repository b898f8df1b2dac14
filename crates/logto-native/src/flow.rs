//! One sign-in, as a one-shot flow (AppAuth's authorization flow): the authorization request
//! (PKCE S256, `state`, `nonce`), the system browser, the loopback listener, the callback's
//! checks, and the code exchange with the ID token's validation. It ends with a checked session
//! that nothing has stored yet; keeping it is [`crate::state`]'s job. One attempt at a time: a
//! new one cancels the one before, and a deadline ends every wait.

use std::sync::{Arc, Mutex};

use openidconnect::AuthorizationCode;
use tokio::sync::watch;
use url::Url;

use crate::authorize::{authorization_request, PendingSignIn, SignInMethod};
use crate::callback::Callback;
use crate::context::Context;
use crate::discovery::Provider;
use crate::error::AuthError;
use crate::exchange::exchange_code;
use crate::id_token::Source;
use crate::loopback::{Expectation, Loopback, Reply};
use crate::pages;
use crate::session::Session;
use crate::status::SignInWaiting;

/// The sign-in in progress, if any.
#[derive(Default)]
pub(crate) struct SignInFlow {
    attempt: Mutex<Option<Attempt>>,
    next_attempt: Mutex<u64>,
}

/// One attempt: its number, the switch that cancels it, and its URL once built.
struct Attempt {
    id: u64,
    cancel: watch::Sender<bool>,
    url: Option<Url>,
}

/// A flow that reached a checked session. The browser's tab is still waiting on `reply`: it
/// hears how the sign-in went only once the session has been kept (or not).
pub(crate) struct Authorized {
    pub(crate) session: Session,
    pub(crate) provider: Arc<Provider>,
    pub(crate) reply: Reply,
}

impl Authorized {
    /// Tells the browser's tab whether the sign-in completed, and waits until it has heard.
    pub(crate) async fn answer_tab(self, completed: bool, language: pages::Language) {
        self.reply
            .answer(if completed {
                pages::signed_in(language)
            } else {
                pages::not_completed(language)
            })
            .await;
    }
}

impl SignInFlow {
    /// Starts an attempt, cancelling any other. Returns its number and its cancel switch.
    pub(crate) fn begin(&self) -> (u64, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        let id = {
            let mut next = self.next_attempt.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let mut attempt = self.lock();
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

    /// Ends attempt `id`, unless a newer one has replaced it.
    pub(crate) fn end(&self, id: u64) {
        let mut attempt = self.lock();
        if attempt.as_ref().is_some_and(|a| a.id == id) {
            *attempt = None;
        }
    }

    /// Whether `id` is still the attempt in progress (not cancelled, not replaced).
    pub(crate) fn is_current(&self, id: u64) -> bool {
        self.lock().as_ref().is_some_and(|a| a.id == id)
    }

    /// Cancels the attempt in progress, if any. Returns whether there was one.
    pub(crate) fn cancel(&self) -> bool {
        match self.lock().take() {
            Some(a) => {
                let _ = a.cancel.send(true);
                true
            }
            None => false,
        }
    }

    /// The authorization URL of the attempt in progress (it carries `state` and `nonce`).
    pub(crate) fn link(&self) -> Option<Url> {
        self.lock().as_ref().and_then(|a| a.url.clone())
    }

    pub(crate) fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    fn set_url(&self, id: u64, url: &Url) {
        if let Some(current) = self.lock().as_mut().filter(|a| a.id == id) {
            current.url = Some(url.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Attempt>> {
        self.attempt.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs attempt `id` from the authorization request to a checked session. `on_waiting` is
    /// called once the browser has been asked to open.
    pub(crate) async fn authorize(
        &self,
        ctx: &Context,
        id: u64,
        method: SignInMethod,
        on_waiting: impl FnOnce(&SignInWaiting),
        cancelled: &mut watch::Receiver<bool>,
    ) -> Result<Authorized, AuthError> {
        let provider = tokio::select! {
            p = ctx.provider() => p?,
            _ = cancelled.changed() => return Err(AuthError::Cancelled),
        };
        let listener = Loopback::bind()?;
        let redirect_uri = listener.redirect_uri();
        let (url, pending) = authorization_request(&provider, &ctx.config, &redirect_uri, method)?;
        tracing::info!(
            port = listener.port(),
            ?method,
            "waiting for the browser on the loopback redirect"
        );

        let browser_error = ctx.open_browser(&url).await.err().map(|e| match e {
            AuthError::Browser(why) => why,
            other => other.to_string(),
        });
        if let Some(e) = &browser_error {
            tracing::warn!(error = %e, "the browser could not be opened");
        }
        self.set_url(id, &url);
        let timeout = ctx.config.sign_in_timeout;
        let deadline = crate::exchange::unix_now().saturating_add(timeout.as_secs());
        on_waiting(&SignInWaiting {
            url,
            deadline,
            browser_error,
        });

        let expect = Expectation {
            state: openidconnect::CsrfToken::new(pending.state.secret().clone()),
            issuer: provider.issuer().to_string(),
            requires_iss: provider.requires_iss,
            language: ctx.language,
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
        match exchange(ctx, &provider, pending, code, cancelled).await {
            Ok(session) => Ok(Authorized {
                session,
                provider,
                reply: arrival.reply,
            }),
            Err(e) => {
                arrival
                    .reply
                    .answer(pages::not_completed(ctx.language))
                    .await;
                Err(e)
            }
        }
    }
}

/// The code for tokens, checked. The exchange runs as a task of its own, so that a cancel in the
/// middle of it can let it finish and revoke what it brings: by then the code may be tokens at
/// Logto.
async fn exchange(
    ctx: &Context,
    provider: &Arc<Provider>,
    pending: PendingSignIn,
    code: AuthorizationCode,
    cancelled: &mut watch::Receiver<bool>,
) -> Result<Session, AuthError> {
    let http = ctx.http()?.clone();
    let mut exchange = tokio::spawn({
        let (http, mut provider, config) = (http.clone(), provider.clone(), ctx.config.clone());
        let discovered = ctx.discovered.clone();
        async move {
            let source = Source {
                http: &http,
                config: &config,
                discovered: &discovered,
            };
            exchange_code(&source, &mut provider, pending, code).await
        }
    });
    tokio::select! {
        joined = &mut exchange => joined
            .map_err(|_| AuthError::Token("the code exchange stopped unexpectedly".into()))?,
        _ = cancelled.changed() => {
            let revoker = ctx.revoker(&http, provider);
            tokio::spawn(async move {
                if let Ok(Ok(session)) = exchange.await {
                    revoker.drop_session(&session, "the sign-in was cancelled").await;
                }
            });
            Err(AuthError::Cancelled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_attempt_cancels_the_one_before_and_only_the_current_one_counts() {
        let flow = SignInFlow::default();
        let (first, cancelled) = flow.begin();
        assert!(flow.is_current(first) && !*cancelled.borrow());
        let (second, _) = flow.begin();
        assert!(*cancelled.borrow(), "the first attempt was told to stop");
        assert!(!flow.is_current(first) && flow.is_current(second));
        // The first one ending does not end the second.
        flow.end(first);
        assert!(flow.is_running());
        assert!(flow.cancel());
        assert!(!flow.cancel(), "nothing left to cancel");
        assert!(!flow.is_current(second) && flow.link().is_none());
    }
}
