//! The commands the page may call. Thin: each hands the work to the core and turns the outcome
//! into a new [`AuthView`]. Errors reach the page as `{ code, message, detail }` and never carry a
//! secret. The authorization URL (it holds `state` and `nonce`) never reaches the page or the
//! logs: "Copy link" puts it on the clipboard from here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Runtime, State};
use url::Url;

use super::view::{
    AuthView, Notice, Snapshot, UserView, SIGNED_OUT_ELSEWHERE, SIGN_OUT_ENTRY_KEPT,
    SIGN_OUT_ENTRY_STUCK, SIGN_OUT_INCOMPLETE, SIGN_OUT_RETRY_LATER,
};
use super::{focus_main, make_service, replace_view_if, restore, Shell, FIRST_STATE_WAIT};
use crate::auth::config::{write_config_file, SavedConfig};
use crate::auth::{AuthError, AuthService, Browser, Config, Language, SignInMethod, SystemBrowser};

/// Codes of the shell's own errors (the core's are in `auth::error`); the page words each one.
pub const NOT_SIGNING_IN: &str = "sign_in.not_in_progress";
pub const CLIPBOARD_UNAVAILABLE: &str = "clipboard.unavailable";
pub const CONFIG_SAVE_FAILED: &str = "config.save_failed";
pub const SETUP_NOT_NEEDED: &str = "setup.not_needed";
pub const SHELL_CODES: [&str; 9] = [
    NOT_SIGNING_IN,
    CLIPBOARD_UNAVAILABLE,
    CONFIG_SAVE_FAILED,
    SETUP_NOT_NEEDED,
    SIGN_OUT_INCOMPLETE,
    SIGN_OUT_ENTRY_KEPT,
    SIGN_OUT_ENTRY_STUCK,
    SIGN_OUT_RETRY_LATER,
    SIGNED_OUT_ELSEWHERE,
];

#[derive(Debug, Serialize)]
pub struct CommandError {
    pub code: String,
    pub message: String,
    /// The specific part (a host, a provider's words), shown as text.
    pub detail: Option<String>,
}

impl CommandError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        CommandError {
            code: code.to_string(),
            message: message.into(),
            detail: None,
        }
    }
}

impl From<&AuthError> for CommandError {
    fn from(error: &AuthError) -> Self {
        let notice = Notice::from_error(error);
        CommandError {
            code: notice.code,
            message: error.to_string(),
            detail: notice.detail,
        }
    }
}

impl From<AuthError> for CommandError {
    fn from(error: AuthError) -> Self {
        CommandError::from(&error)
    }
}

fn not_configured(shell: &Shell) -> CommandError {
    match shell.view() {
        AuthView::Error {
            code,
            message,
            detail,
        } => CommandError {
            code,
            message,
            detail,
        },
        _ => CommandError::new("config.invalid", "Logto is not configured."),
    }
}

fn not_signing_in() -> CommandError {
    CommandError::new(NOT_SIGNING_IN, "No sign-in is waiting for the browser.")
}

/// The state and the language the shell picked for the window. The page asks once, as it
/// loads; the answer waits for the stored session to be read (bounded by
/// [`FIRST_STATE_WAIT`]), so the first screen drawn is the signed-in one, not a loading screen.
#[tauri::command]
pub async fn get_state(shell: State<'_, Shell>) -> Result<Snapshot, ()> {
    Ok(shell.settled_snapshot(FIRST_STATE_WAIT).await)
}

/// The states the page may report having drawn (anything else is logged as `unknown`).
const PAGE_STATES: [&str; 6] = [
    "loading",
    "setup",
    "signed-out",
    "signing-in",
    "signed-in",
    "error",
];

/// The page has drawn its first screen: logged, so the start-up benchmark and the tests can see
/// when the window became useful and which screen a person saw first.
#[tauri::command]
pub fn first_screen_drawn(state: String) {
    let state = PAGE_STATES
        .iter()
        .find(|known| **known == state)
        .copied()
        .unwrap_or("unknown");
    tracing::info!("first screen drawn: {state}");
}

/// Starts a sign-in and returns at once; progress arrives as state events.
#[tauri::command]
pub fn sign_in<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    method: Option<SignInMethod>,
) -> Result<(), CommandError> {
    let service = shell.service().ok_or_else(|| not_configured(&shell))?;
    start_sign_in(app, service, method.unwrap_or_default());
    Ok(())
}

/// Shared by the command and the app menu.
pub fn start_sign_in<R: Runtime>(
    app: AppHandle<R>,
    service: Arc<AuthService>,
    method: SignInMethod,
) {
    // The core's status carries each step to the window (see `render`); here only what the
    // status does not: the window to the front, and the picture.
    tauri::async_runtime::spawn(async move {
        match service.sign_in(method, |_| {}).await {
            Ok(user) => {
                focus_main(&app);
                // Initials first; the picture follows when the app has fetched it.
                match service.load_picture().await {
                    Ok(Some(_)) => replace_view_if(&app, |view| match view {
                        AuthView::SignedIn { user: shown, .. }
                            if *shown == UserView::from(user.clone()) =>
                        {
                            Some(AuthView::signed_in(&service, user))
                        }
                        _ => None,
                    }),
                    Ok(None) => {}
                    Err(e) => tracing::info!(code = e.code(), "the picture was not shown"),
                }
            }
            Err(AuthError::Cancelled) => {}
            Err(_) => focus_main(&app),
        }
    });
}

#[tauri::command]
pub fn cancel_sign_in(shell: State<'_, Shell>) -> bool {
    shell.service().is_some_and(|s| s.cancel_sign_in())
}

/// Opens the sign-in in progress in the browser once more.
#[tauri::command]
pub async fn open_browser_again(shell: State<'_, Shell>) -> Result<(), CommandError> {
    let service = shell.service().ok_or_else(not_signing_in)?;
    if service.sign_in_link().is_none() {
        return Err(not_signing_in());
    }
    service.open_browser_again().await?;
    Ok(())
}

/// Puts the sign-in link on the clipboard, for a browser the app could not open. The link never
/// travels to the page, and is never logged.
#[tauri::command]
pub async fn copy_sign_in_link<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
) -> Result<(), CommandError> {
    let link = shell
        .service()
        .and_then(|s| s.sign_in_link())
        .ok_or_else(not_signing_in)?;
    write_clipboard(&app, link.to_string()).await?;
    tracing::info!("copied the sign-in link to the clipboard");
    Ok(())
}

/// On Linux, GTK's own clipboard, which the window already has: it serves X11 and Wayland
/// natively and hands the text to the desktop's clipboard manager when the app quits (a
/// clipboard crate would add its own X11 and Wayland clients and an image decoder to the binary).
#[cfg(target_os = "linux")]
async fn write_clipboard<R: Runtime>(app: &AppHandle<R>, text: String) -> Result<(), CommandError> {
    let (done, written) = tokio::sync::oneshot::channel();
    app.run_on_main_thread(move || {
        let clipboard = gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD);
        clipboard.set_text(&text);
        clipboard.store();
        let _ = done.send(());
    })
    .map_err(|e| CommandError::new(CLIPBOARD_UNAVAILABLE, e.to_string()))?;
    tokio::time::timeout(std::time::Duration::from_secs(5), written)
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| CommandError::new(CLIPBOARD_UNAVAILABLE, "the window did not take the text"))
}

#[cfg(not(target_os = "linux"))]
async fn write_clipboard<R: Runtime>(app: &AppHandle<R>, text: String) -> Result<(), CommandError> {
    use tauri_plugin_clipboard_manager::ClipboardExt;
    app.clipboard()
        .write_text(text)
        .map_err(|e| CommandError::new(CLIPBOARD_UNAVAILABLE, e.to_string()))
}

#[tauri::command]
pub async fn sign_out<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
) -> Result<(), CommandError> {
    let service = shell.service().ok_or_else(|| not_configured(&shell))?;
    do_sign_out(app, service).await;
    Ok(())
}

/// Shared by the command and the app menu.
pub async fn do_sign_out<R: Runtime>(_app: AppHandle<R>, service: Arc<AuthService>) {
    // The status shows the signed-out screen with what the report says, or the error.
    if let Err(e) = service.sign_out().await {
        tracing::warn!(code = e.code(), "sign-out failed");
    }
}

/// The first-run screen: checks the endpoint and app id by fetching Logto's discovery document,
/// then saves them to the config file and starts the service. Nothing is saved when a check
/// fails.
#[tauri::command]
pub async fn save_setup<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    endpoint: String,
    app_id: String,
) -> Result<(), CommandError> {
    let _one_at_a_time = shell.setup_lock.lock().await;
    if shell.service().is_some() {
        return Err(CommandError::new(
            SETUP_NOT_NEEDED,
            "The app is already configured.",
        ));
    }
    let path = shell.config_path.clone().ok_or_else(|| {
        CommandError::new(
            CONFIG_SAVE_FAILED,
            "This system has no folder for settings.",
        )
    })?;
    // The offline checks first (URL shape, https, app id characters), with their own words.
    Config::new(&endpoint, &app_id)?;
    let saved = SavedConfig {
        endpoint: endpoint.trim().to_string(),
        app_id: app_id.trim().to_string(),
    };
    let config = Config::from_saved(|name| std::env::var(name).ok(), &saved)?;
    let service = Arc::new(make_service(config.clone(), shell.language)?);
    // The tenant check beside discovery and the keys, so the screen after this one already
    // knows whether Amazon is offered; only discovery decides whether the settings are good.
    let (discovered, checked) =
        tokio::join!(service.prefetch(), service.check_sign_in_experience());
    discovered?;
    match checked {
        Ok(_) if service.amazon_missing() => tracing::warn!(
            "this tenant's sign-in experience has no Amazon connector: \
             \"Continue with Amazon\" is not offered until one is added"
        ),
        Ok(_) => {}
        Err(e) => tracing::info!(
            code = e.code(),
            "the tenant's sign-in experience was not read; every sign-in button stays"
        ),
    }
    write_config_file(&path, &SavedConfig::from_config(&config)).map_err(|e| CommandError {
        code: CONFIG_SAVE_FAILED.to_string(),
        message: format!("The settings could not be saved: {e}."),
        detail: Some(format!("{}: {e}", path.display())),
    })?;
    tracing::info!(path = %path.display(), "saved the endpoint and app id");
    shell.set_service(service);
    restore(app).await;
    Ok(())
}

/// Help the first-run screen links to, opened in the system browser (never in the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HelpTopic {
    /// Logto's docs on application types, the Native app among them.
    NativeApp,
    /// Logto Cloud's console, where the app is created.
    Console,
    /// Logto's guide to the Amazon connector (the signed-out screen, when the tenant has none).
    AmazonConnector,
}

impl HelpTopic {
    pub fn url(self, language: Language) -> &'static str {
        match (self, language) {
            (HelpTopic::NativeApp, Language::Ja) => {
                "https://docs.logto.io/ja/integrate-logto/application-data-structure"
            }
            (HelpTopic::NativeApp, _) => {
                "https://docs.logto.io/integrate-logto/application-data-structure"
            }
            (HelpTopic::Console, _) => "https://cloud.logto.io/",
            (HelpTopic::AmazonConnector, Language::Ja) => {
                "https://docs.logto.io/ja/integrations/amazon"
            }
            (HelpTopic::AmazonConnector, _) => "https://docs.logto.io/integrations/amazon",
        }
    }
}

/// Opens one of a fixed set of help pages in the system browser: the page names a topic, never
/// a URL.
#[tauri::command]
pub async fn open_help(shell: State<'_, Shell>, topic: HelpTopic) -> Result<(), CommandError> {
    let url = Url::parse(topic.url(shell.language))
        .map_err(|e| CommandError::new("browser.open_failed", e.to_string()))?;
    tokio::task::spawn_blocking(move || SystemBrowser.open(&url))
        .await
        .map_err(|_| CommandError::new("browser.open_failed", "the browser task failed"))?
        .map_err(|e| AuthError::Browser(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_urls_are_https_pages_of_logto() {
        for topic in [
            HelpTopic::NativeApp,
            HelpTopic::Console,
            HelpTopic::AmazonConnector,
        ] {
            for language in [Language::En, Language::Ja] {
                let url = Url::parse(topic.url(language)).unwrap();
                assert_eq!(url.scheme(), "https");
                assert!(url.host_str().unwrap().ends_with("logto.io"), "{url}");
            }
        }
        assert!(HelpTopic::NativeApp.url(Language::Ja).contains("/ja/"));
        assert!(HelpTopic::AmazonConnector
            .url(Language::Ja)
            .contains("/ja/"));
    }

    #[test]
    fn a_command_error_carries_the_code_and_the_detail() {
        let error = CommandError::from(AuthError::Network("127.0.0.1: connection failed".into()));
        assert_eq!(error.code, "network.unreachable");
        assert_eq!(
            error.detail.as_deref(),
            Some("127.0.0.1: connection failed")
        );
    }
}
