//! What the sign-in flow ([`crate::flow`]) and the signed-in state ([`crate::state`]) share: the
//! configuration, the HTTP client, the provider's discovery, the system browser and the language
//! of the pages the browser is shown.

use std::sync::{Arc, OnceLock};

use url::Url;

use crate::browser::Browser;
use crate::config::Config;
use crate::discovery::{Discovered, Provider};
use crate::error::AuthError;
use crate::http::{self, Http};
use crate::id_token::Source;
use crate::pages::Language;
use crate::revoke::{self, Revoker};
use crate::session::Session;

pub(crate) struct Context {
    pub(crate) config: Config,
    /// Built on first use: it reads the system's certificate store (a hundred files and more),
    /// which a start-up that restores a stored session, and makes no request, need not wait for.
    http: OnceLock<Http>,
    /// Discovery and the keys, once fetched and checked, fetched again when a token shows them
    /// stale; shared with tasks that outlive a call (a code exchange).
    pub(crate) discovered: Arc<Discovered>,
    browser: Arc<dyn Browser>,
    pub(crate) language: Language,
}

impl Context {
    pub(crate) fn new(config: Config, browser: Arc<dyn Browser>) -> Self {
        let language = config
            .ui_locales
            .as_deref()
            .map(Language::from_tag)
            .unwrap_or_default();
        Context {
            config,
            http: OnceLock::new(),
            discovered: Arc::new(Discovered::new()),
            browser,
            language,
        }
    }

    /// The HTTP client, built the first time a request is made.
    pub(crate) fn http(&self) -> Result<&Http, AuthError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let built = http::client()?;
        Ok(self.http.get_or_init(|| built))
    }

    /// Discovery, fetched once and kept; a failure is not kept, so the next call tries again.
    pub(crate) async fn provider(&self) -> Result<Arc<Provider>, AuthError> {
        self.discovered.get(self.http()?, &self.config).await
    }

    /// What an ID token's checks need to fetch discovery again.
    pub(crate) fn source(&self) -> Result<Source<'_>, AuthError> {
        Ok(Source {
            http: self.http()?,
            config: &self.config,
            discovered: &self.discovered,
        })
    }

    /// Opens a URL in the system browser, off the async threads (`xdg-open` is a process).
    pub(crate) async fn open_browser(&self, url: &Url) -> Result<(), AuthError> {
        let browser = self.browser.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || browser.open(&url))
            .await
            .map_err(|_| AuthError::Browser("the browser task failed".into()))?
            .map_err(AuthError::Browser)
    }

    /// Something that can revoke a session's grant later, on its own (a task outliving a
    /// cancelled sign-in).
    pub(crate) fn revoker(&self, http: &Http, provider: &Arc<Provider>) -> Revoker {
        Revoker {
            http: http.clone(),
            provider: provider.clone(),
            client_id: self.config.app_id.clone(),
        }
    }

    /// Revokes the grant of a session that is not kept, best effort and bounded in time (see
    /// [`Revoker::drop_session`]).
    pub(crate) async fn drop_session(
        &self,
        provider: &Arc<Provider>,
        session: &Session,
        why: &str,
    ) {
        if let Ok(http) = self.http() {
            self.revoker(http, provider)
                .drop_session(session, why)
                .await;
        }
    }

    /// Revokes what proves `session`. Revoking the refresh token revokes the whole grant at
    /// Logto, access tokens included.
    pub(crate) async fn revoke(
        &self,
        provider: &Provider,
        session: &Session,
    ) -> Result<(), AuthError> {
        match revoke::grant_token(session) {
            Some((token, hint)) => self.revoke_token(provider, token, hint).await,
            None => Ok(()),
        }
    }

    pub(crate) async fn revoke_token(
        &self,
        provider: &Provider,
        token: &str,
        hint: &str,
    ) -> Result<(), AuthError> {
        revoke::revoke(self.http()?, provider, &self.config.app_id, token, hint).await
    }

    /// The end-session URL. It carries `client_id` rather than `id_token_hint`, so the ID token
    /// never lands in the browser's history.
    pub(crate) fn end_session_url(&self, provider: &Provider) -> Option<Url> {
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
