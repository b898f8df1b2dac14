//! What the core needs to know about the tenant: endpoint, app id, extra scopes, API resources,
//! the optional post-logout redirect, and how long a sign-in may wait. Read from the environment
//! here; nothing in this module touches the network.

use std::time::Duration;

use url::Url;

use super::error::AuthError;

/// Scopes every sign-in asks for. `offline_access` needs `prompt=consent` at Logto.
pub const BASE_SCOPES: [&str; 5] = ["openid", "profile", "offline_access", "email", "identities"];

/// How long a sign-in waits for the browser by default.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Logto endpoint, e.g. `https://tenant.logto.app` (no trailing slash, no `/oidc`).
    pub endpoint: Url,
    pub app_id: String,
    /// Extra scopes beyond [`BASE_SCOPES`].
    pub scopes: Vec<String>,
    /// API resource indicators (RFC 8707) to ask for at sign-in.
    pub resources: Vec<String>,
    /// Sent to the end-session endpoint only when set: Logto matches it exactly, port included.
    pub post_logout_redirect_uri: Option<Url>,
    /// Whether sign-out opens the end-session page in the browser.
    pub end_browser_session: bool,
    pub sign_in_timeout: Duration,
    /// Passed as `ui_locales` so Logto's pages speak the app's language.
    pub ui_locales: Option<String>,
}

impl Config {
    /// Builds a config, checking what can be checked offline.
    pub fn new(endpoint: &str, app_id: &str) -> Result<Self, AuthError> {
        Ok(Config {
            endpoint: parse_endpoint(endpoint)?,
            app_id: parse_app_id(app_id)?,
            scopes: Vec::new(),
            resources: Vec::new(),
            post_logout_redirect_uri: None,
            end_browser_session: true,
            sign_in_timeout: DEFAULT_SIGN_IN_TIMEOUT,
            ui_locales: None,
        })
    }

    /// Reads `LOGTO_ENDPOINT` and `LOGTO_APP_ID` (required) and the optional
    /// `LOGTO_SCOPES`, `LOGTO_RESOURCES` (space or comma separated),
    /// `LOGTO_POST_LOGOUT_REDIRECT_URI`, `LOGTO_END_BROWSER_SESSION` (`false` to skip) and
    /// `LOGTO_SIGN_IN_TIMEOUT_SECS`. Returns `Ok(None)` when neither required variable is set.
    pub fn from_env() -> Result<Option<Self>, AuthError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any lookup, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, AuthError> {
        let endpoint = get("LOGTO_ENDPOINT").filter(|v| !v.trim().is_empty());
        let app_id = get("LOGTO_APP_ID").filter(|v| !v.trim().is_empty());
        let (endpoint, app_id) = match (endpoint, app_id) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(AuthError::Config("LOGTO_APP_ID is not set".into())),
            (None, Some(_)) => return Err(AuthError::Config("LOGTO_ENDPOINT is not set".into())),
            (Some(e), Some(a)) => (e, a),
        };
        let mut config = Config::new(&endpoint, &app_id)?;
        config.scopes = split_list(get("LOGTO_SCOPES"));
        config.resources = split_list(get("LOGTO_RESOURCES"));
        if let Some(uri) = get("LOGTO_POST_LOGOUT_REDIRECT_URI").filter(|v| !v.is_empty()) {
            let url = Url::parse(&uri).map_err(|_| {
                AuthError::Config("LOGTO_POST_LOGOUT_REDIRECT_URI is not a URL".into())
            })?;
            config.post_logout_redirect_uri = Some(url);
        }
        if let Some(value) = get("LOGTO_END_BROWSER_SESSION") {
            config.end_browser_session = !matches!(value.trim(), "0" | "false" | "no" | "off");
        }
        if let Some(secs) = get("LOGTO_SIGN_IN_TIMEOUT_SECS") {
            let secs: u64 = secs.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                AuthError::Config("LOGTO_SIGN_IN_TIMEOUT_SECS must be a positive number".into())
            })?;
            config.sign_in_timeout = Duration::from_secs(secs);
        }
        Ok(Some(config))
    }

    /// The issuer Logto uses for this endpoint.
    pub fn issuer(&self) -> String {
        format!("{}/oidc", self.endpoint.as_str().trim_end_matches('/'))
    }

    /// All scopes for the authorization request, base ones first, without repeats.
    pub fn all_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = BASE_SCOPES.iter().map(|s| s.to_string()).collect();
        for scope in &self.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }
}

fn split_list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_endpoint(raw: &str) -> Result<Url, AuthError> {
    let raw = raw.trim();
    let url = Url::parse(raw)
        .map_err(|_| AuthError::Config(format!("the endpoint {raw:?} is not a URL")))?;
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(AuthError::Config(format!(
            "the endpoint {raw:?} has no host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(AuthError::Config(
            "the endpoint must be a plain origin such as https://your-tenant.logto.app".into(),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => {
            return Err(AuthError::Config(
                "the endpoint must use https (http is allowed only on this machine's loopback)"
                    .into(),
            ))
        }
    }
    // People paste the issuer or a trailing slash; the endpoint is the part before `/oidc`.
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_string();
    let path = path.strip_suffix("/oidc").unwrap_or(&path).to_string();
    url.set_path(&path);
    Ok(url)
}

fn parse_app_id(raw: &str) -> Result<String, AuthError> {
    let id = raw.trim();
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(AuthError::Config(
            "the app id must be the letters, digits and dashes shown in Logto's console".into(),
        ))
    }
}

/// True for `http://127.0.0.1`, other 127/8 addresses, `[::1]` and `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_set_means_no_config() {
        assert_eq!(Config::from_lookup(lookup(&[])).ok().flatten(), None);
    }

    #[test]
    fn one_variable_alone_is_an_error() {
        let err = Config::from_lookup(lookup(&[("LOGTO_ENDPOINT", "https://a.logto.app")]));
        assert!(matches!(err, Err(AuthError::Config(m)) if m.contains("LOGTO_APP_ID")));
    }

    #[test]
    fn issuer_is_endpoint_plus_oidc_and_pasted_issuer_is_trimmed() {
        for raw in [
            "https://a.logto.app",
            "https://a.logto.app/",
            "https://a.logto.app/oidc/",
        ] {
            let config = Config::new(raw, "abc123").unwrap();
            assert_eq!(config.issuer(), "https://a.logto.app/oidc", "from {raw}");
        }
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        assert!(Config::new("http://a.logto.app", "abc").is_err());
        assert!(Config::new("http://127.0.0.1:3001", "abc").is_ok());
        assert!(Config::new("ftp://a.logto.app", "abc").is_err());
        assert!(Config::new("not a url", "abc").is_err());
        assert!(Config::new("https://a.logto.app?x=1", "abc").is_err());
    }

    #[test]
    fn app_id_is_checked() {
        assert!(Config::new("https://a.logto.app", "").is_err());
        assert!(Config::new("https://a.logto.app", "a b").is_err());
        assert!(Config::new("https://a.logto.app", "a&redirect_uri=x").is_err());
        assert!(Config::new("https://a.logto.app", "x9f-1_2").is_ok());
    }

    #[test]
    fn lists_and_options_are_read() {
        let config = Config::from_lookup(lookup(&[
            ("LOGTO_ENDPOINT", "https://a.logto.app"),
            ("LOGTO_APP_ID", "abc"),
            ("LOGTO_SCOPES", "roles, email custom_data"),
            ("LOGTO_RESOURCES", "https://api.example.com"),
            ("LOGTO_END_BROWSER_SESSION", "false"),
            ("LOGTO_SIGN_IN_TIMEOUT_SECS", "7"),
        ]))
        .unwrap()
        .unwrap();
        let scopes = config.all_scopes();
        assert_eq!(
            scopes,
            [
                "openid",
                "profile",
                "offline_access",
                "email",
                "identities",
                "roles",
                "custom_data"
            ]
        );
        assert_eq!(config.resources, ["https://api.example.com"]);
        assert!(!config.end_browser_session);
        assert_eq!(config.sign_in_timeout, Duration::from_secs(7));
        let bad = Config::from_lookup(lookup(&[
            ("LOGTO_ENDPOINT", "https://a.logto.app"),
            ("LOGTO_APP_ID", "abc"),
            ("LOGTO_SIGN_IN_TIMEOUT_SECS", "soon"),
        ]));
        assert!(bad.is_err());
    }
}
