//! What the core needs to know about the tenant: endpoint, app id, extra scopes, API resources,
//! the optional post-logout redirect, and how long a sign-in may wait. Read from the environment,
//! or from the config file the first-run screen saves (the environment wins); nothing in this
//! module touches the network. It also owns the one way the core writes a file
//! (`write_atomically`: whole or not at all, 0600, never through a symlink), which the signed-out
//! marks and the tenant check's cache use too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::error::AuthError;

/// Scopes every sign-in asks for. `offline_access` needs `prompt=consent` at Logto.
pub const BASE_SCOPES: [&str; 5] = ["openid", "profile", "offline_access", "email", "identities"];

/// How long a sign-in waits for the browser by default.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The settings of one Logto application. [`Config::new`] checks the endpoint and app id; the
/// other fields may be set freely after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Logto endpoint, e.g. `https://tenant.logto.app` (no trailing slash, no `/oidc`).
    pub endpoint: Url,
    /// The app id of the Logto application (a Native app: public, no secret), sent as
    /// `client_id`.
    pub app_id: String,
    /// Extra scopes beyond [`BASE_SCOPES`].
    pub scopes: Vec<String>,
    /// API resource indicators (RFC 8707) to ask for at sign-in.
    pub resources: Vec<String>,
    /// Sent to the end-session endpoint only when set: Logto matches it exactly, port included.
    pub post_logout_redirect_uri: Option<Url>,
    /// Whether sign-out opens the end-session page in the browser.
    pub end_browser_session: bool,
    /// How long a sign-in waits for the browser to come back, counted from when the browser was
    /// asked to open; after it the sign-in fails with [`AuthError::TimedOut`].
    pub sign_in_timeout: Duration,
    /// Passed as `ui_locales` so Logto's pages speak the app's language.
    pub ui_locales: Option<String>,
    /// The keychain service the session is filed under (its account is `<app id>@<issuer>`), and
    /// the name its entry lock is made from: the program's own, so two programs signing in to
    /// their own Logto apps never write under each other's name. By default
    /// [`default_keychain_service`] of the app id; Logto Desktop sets `logto-desktop`.
    pub keychain_service: String,
}

/// The keychain service a program gets unless it names its own: `logto-native/<app id>`.
pub fn default_keychain_service(app_id: &str) -> String {
    format!("logto-native/{app_id}")
}

/// The one folder name a program's files (signed-out marks, the tenant check's cache) are kept
/// under, made from its keychain service so that each program has its own and programs sharing
/// an entry share them: `logto-desktop` stays `logto-desktop`; anything but letters, digits,
/// `.`, `_` and `-` becomes `_`, and a leading `.` gets a `_` before it, so no service names a
/// path outside the folder or a hidden one.
pub(crate) fn folder_of(keychain_service: &str) -> String {
    let name: String = keychain_service
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("_{name}")
    } else {
        name
    }
}

impl Config {
    /// Builds a config, checking what can be checked offline: the endpoint must be an `https` URL
    /// with a host (`http` only on loopback) and no query, fragment or user name, and a trailing
    /// `/` or `/oidc` is dropped; the app id must be 1 to 128 ASCII letters, digits, `-`, `_` or
    /// `.`. Fails with [`AuthError::Config`]. The rest starts empty, with
    /// [`DEFAULT_SIGN_IN_TIMEOUT`] and `end_browser_session` on.
    pub fn new(endpoint: &str, app_id: &str) -> Result<Self, AuthError> {
        let app_id = parse_app_id(app_id)?;
        Ok(Config {
            endpoint: parse_endpoint(endpoint)?,
            keychain_service: default_keychain_service(&app_id),
            app_id,
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

    /// The issuer Logto uses for this endpoint: `<endpoint>/oidc`.
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
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An environment made of pairs, for `from_lookup`-style functions.
    pub(crate) fn lookup<'a>(
        pairs: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Option<String> + 'a {
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

/// The part of the configuration the first-run screen saves: `<config dir>/logto-desktop/config.json`.
/// Neither value is a secret (the app id of a Native app is public), so a plain file is enough.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedConfig {
    /// The endpoint as the person gave it, or as [`SavedConfig::from_config`] normalised it;
    /// checked again when read back through [`Config::from_saved`].
    pub endpoint: String,
    /// The app id, checked again when read back.
    pub app_id: String,
}

impl SavedConfig {
    /// What to save for a config that has passed its checks (the endpoint as normalised).
    pub fn from_config(config: &Config) -> Self {
        SavedConfig {
            endpoint: config.endpoint.as_str().trim_end_matches('/').to_string(),
            app_id: config.app_id.clone(),
        }
    }
}

/// Where Logto Desktop's settings file lives (its first-run screen writes it, and its window and
/// command line read it): `<OS config dir>/logto-desktop/config.json` (on Linux
/// `$XDG_CONFIG_HOME/logto-desktop/config.json`). `None` when the OS has no config dir. Another
/// program keeps its settings where it likes, with [`read_config_file`] and [`write_config_file`].
pub fn config_file_path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("logto-desktop").join("config.json"))
}

/// Reads the config file. A missing file is `Ok(None)`; one that cannot be read or parsed is a
/// [`AuthError::Config`] naming the file.
pub fn read_config_file(path: &Path) -> Result<Option<SavedConfig>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::Config(format!(
                "{} could not be read ({e})",
                path.display()
            )))
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        AuthError::Config(format!(
            "{} is not a valid config file ({e})",
            path.display()
        ))
    })
}

/// Writes the config file atomically: a temporary file in the same folder, flushed to disk, then
/// renamed over the old one, so a crash leaves either the old file or the new one, never half
/// (see `write_atomically`: 0600, and never through a planted symlink).
pub fn write_config_file(path: &Path, saved: &SavedConfig) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(saved).map_err(std::io::Error::other)? + "\n";
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to `path` whole or not at all, readable by this user only. Used for every file
/// the core keeps (the config file, the signed-out marks, the tenant check's answer).
///
/// The temp file is made by `tempfile` in the same folder with `O_EXCL` and a random name, so a
/// file or symlink someone planted there in advance is never opened; it is mode 0600 on Unix
/// from the start, flushed to disk, then renamed over `path`. The rename replaces whatever is at
/// `path`, a symlink included, and never writes through it: the file a link pointed to is left as
/// it was. Folders made on the way are 0700 on Unix (existing ones are left as they are). A
/// failure leaves the old file as it was and removes the temp file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |file| {
        use std::io::Write;
        file.write_all(bytes)
    })
}

/// [`write_atomically`] with the writing itself given, so tests can make it fail half-way.
fn write_atomically_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        // A bare file name is in the current folder.
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return Err(std::io::Error::other("the file has no folder")),
    };
    create_private_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    // Dropping `temp` on any error below removes the temp file.
    let mut temp = builder.tempfile_in(dir)?;
    fill(temp.as_file_mut())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable where the OS allows opening a folder.
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// Makes `dir` and its missing parents, each 0700 on Unix: they hold this user's files only.
pub(crate) fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Where the configuration in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// `LOGTO_ENDPOINT` and `LOGTO_APP_ID` (the environment wins over the file).
    Environment,
    /// The config file the first-run screen saved ([`config_file_path`]).
    File,
}

impl Config {
    /// A config from the saved endpoint and app id, with the optional settings (scopes,
    /// resources, timeout...) still read from `get`.
    pub fn from_saved(
        get: impl Fn(&str) -> Option<String>,
        saved: &SavedConfig,
    ) -> Result<Self, AuthError> {
        let config = Self::from_lookup(|name| match name {
            "LOGTO_ENDPOINT" => Some(saved.endpoint.clone()),
            "LOGTO_APP_ID" => Some(saved.app_id.clone()),
            other => get(other),
        })?;
        config.ok_or_else(|| AuthError::Config("the endpoint and app id are empty".into()))
    }

    /// The configuration in use: `LOGTO_ENDPOINT`/`LOGTO_APP_ID` when either is set (the
    /// environment wins), else the config file at `file`, else `Ok(None)` (the window then shows
    /// its first-run screen).
    pub fn resolve(
        get: impl Fn(&str) -> Option<String>,
        file: Option<&Path>,
    ) -> Result<Option<(Self, ConfigSource)>, AuthError> {
        if let Some(config) = Self::from_lookup(&get)? {
            return Ok(Some((config, ConfigSource::Environment)));
        }
        let Some(saved) = file.map(read_config_file).transpose()?.flatten() else {
            return Ok(None);
        };
        Ok(Some((Self::from_saved(get, &saved)?, ConfigSource::File)))
    }

    /// [`Config::resolve`] over the process environment and Logto Desktop's settings file
    /// ([`config_file_path`]): what its window and command line sign in with.
    pub fn resolve_from_system() -> Result<Option<(Self, ConfigSource)>, AuthError> {
        Self::resolve(
            |name| std::env::var(name).ok(),
            config_file_path().as_deref(),
        )
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    use super::tests::lookup as env;

    fn saved(endpoint: &str, app_id: &str) -> SavedConfig {
        SavedConfig {
            endpoint: endpoint.into(),
            app_id: app_id.into(),
        }
    }

    #[test]
    fn the_file_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logto-desktop").join("config.json");
        assert_eq!(read_config_file(&path).unwrap(), None, "missing is None");
        write_config_file(&path, &saved("https://a.logto.app", "app1")).unwrap();
        write_config_file(&path, &saved("https://b.logto.app", "app2")).unwrap();
        assert_eq!(
            read_config_file(&path).unwrap(),
            Some(saved("https://b.logto.app", "app2"))
        );
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["config.json"]);
    }

    /// The names in `dir`, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_atomically(&path, b"old").unwrap();
        // The disk fills up half-way through the new content.
        let err = write_atomically_with(&path, |file| {
            use std::io::Write;
            file.write_all(b"ha")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names_in(dir.path()), ["config.json"]);
        // The rename fails (a folder stands where the file goes): no temp file is left either.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_atomically(&blocked, b"new").is_err());
        assert!(blocked.join("inside").is_dir());
        assert_eq!(names_in(dir.path()), ["blocked", "config.json"]);
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_for_this_user_only_and_so_are_the_folders_made_for_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("config").join("logto-desktop");
        let path = folder.join("config.json");
        write_config_file(&path, &saved("https://a.logto.app", "app1")).unwrap();
        assert_eq!(mode(&path), 0o600, "the file");
        assert_eq!(mode(&folder), 0o700, "the folder made for it");
        assert_eq!(
            mode(&dir.path().join("config")),
            0o700,
            "its parent, made too"
        );
        // A file an older version left readable by all is replaced by a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_the_old_temp_name_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // Before issue 16 the temp file was `.<name>.<pid>.tmp`, opened following symlinks.
        let old_temp = dir
            .path()
            .join(format!(".config.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_temp).unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_file_is_replaced_and_what_it_points_to_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        // A dangling link does not make the app create the file it names.
        let elsewhere = dir.path().join("elsewhere");
        let marks = dir.path().join("signed-out");
        std::os::unix::fs::symlink(&elsewhere, &marks).unwrap();
        write_atomically(&marks, b"mark").unwrap();
        assert!(!elsewhere.exists());
        assert_eq!(std::fs::read(&marks).unwrap(), b"mark");
    }

    #[test]
    fn a_broken_file_is_a_config_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = read_config_file(&path).unwrap_err();
        assert_eq!(err.code(), "config.invalid");
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_config_file(&path, &saved("https://file.logto.app", "from-file")).unwrap();
        let vars = [
            ("LOGTO_ENDPOINT", "https://env.logto.app"),
            ("LOGTO_APP_ID", "from-env"),
        ];
        let (config, source) = Config::resolve(env(&vars), Some(&path)).unwrap().unwrap();
        assert_eq!(source, ConfigSource::Environment);
        assert_eq!(config.app_id, "from-env");
        // Half an environment is an error, not a silent fall-back to the file.
        let half = [("LOGTO_ENDPOINT", "https://env.logto.app")];
        assert!(Config::resolve(env(&half), Some(&path)).is_err());
    }

    #[test]
    fn the_file_is_used_without_the_environment_and_options_still_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(Config::resolve(env(&[]), Some(&path)).unwrap(), None);
        assert_eq!(Config::resolve(env(&[]), None).unwrap(), None);
        write_config_file(&path, &saved("https://file.logto.app/oidc", "from-file")).unwrap();
        let vars = [("LOGTO_SIGN_IN_TIMEOUT_SECS", "9")];
        let (config, source) = Config::resolve(env(&vars), Some(&path)).unwrap().unwrap();
        assert_eq!(source, ConfigSource::File);
        assert_eq!(config.issuer(), "https://file.logto.app/oidc");
        assert_eq!(config.sign_in_timeout, Duration::from_secs(9));
    }

    #[test]
    fn a_file_with_a_bad_endpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_config_file(&path, &saved("http://evil.example", "x")).unwrap();
        assert!(Config::resolve(env(&[]), Some(&path)).is_err());
    }

    #[test]
    fn what_is_saved_is_the_normalised_endpoint() {
        let config = Config::new("https://a.logto.app/oidc/", "app").unwrap();
        assert_eq!(
            SavedConfig::from_config(&config),
            saved("https://a.logto.app", "app")
        );
    }
}

#[cfg(test)]
mod keychain_service_tests {
    use super::*;

    /// Issue 18: a program's entry is its own unless it names the desktop app's.
    #[test]
    fn the_keychain_service_is_the_programs_own_by_default() {
        let one = Config::new("https://tenant.example.com", "app-1").unwrap();
        let two = Config::new("https://tenant.example.com", "app-2").unwrap();
        assert_eq!(one.keychain_service, "logto-native/app-1");
        assert_ne!(one.keychain_service, two.keychain_service);
        assert_ne!(one.keychain_service, "logto-desktop");
    }

    /// Issue 18: the files a program keeps beside its entry are in a folder of its own, Logto
    /// Desktop's where they always were, and no service names a path outside that folder.
    #[test]
    fn each_program_keeps_its_files_in_a_folder_named_for_its_service() {
        assert_eq!(folder_of("logto-desktop"), "logto-desktop");
        assert_eq!(folder_of("logto-native/app-1"), "logto-native_app-1");
        assert_ne!(
            folder_of("logto-native/app-1"),
            folder_of("logto-native/app-2")
        );
        for hostile in [
            "..",
            ".",
            "",
            "../../etc",
            "a/../../b",
            "/abs",
            "c:\\x",
            ".hidden",
        ] {
            let name = folder_of(hostile);
            assert!(
                !name.is_empty() && !name.starts_with('.'),
                "{hostile:?} -> {name:?}"
            );
            assert!(!name.contains(['/', '\\', ':']), "{hostile:?} -> {name:?}");
        }
        let marks: Vec<_> = crate::SignedOutMarks::default_path("logto-native/app-1")
            .into_iter()
            .collect();
        #[cfg(all(feature = "os-keychain", feature = "system-browser"))]
        let marks = marks
            .into_iter()
            .chain(crate::tenant::OfferCache::default_path(
                "logto-native/app-1",
            ));
        for path in marks {
            let parent = path.parent().and_then(|p| p.file_name());
            assert_eq!(parent.and_then(|n| n.to_str()), Some("logto-native_app-1"));
        }
    }
}
