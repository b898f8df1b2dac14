//! The shell: adapts the sign-in core to the window. It owns the one state the window, the app
//! menu and the tests all see ([`view::AuthView`]), the commands the page may call, and the app
//! menu. Everything the page receives passes through [`view`], which holds no secret.

pub mod commands;
pub mod menu;
pub mod view;

use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::auth::{AuthError, AuthService, Config, KeyringStore, SystemBrowser};
use view::AuthView;

/// The event that carries every change of [`AuthView`] to the page.
pub const STATE_EVENT: &str = "auth-state";

/// What the shell keeps between commands.
pub struct Shell {
    /// `None` when the configuration is missing or invalid (the view then says why).
    pub service: Option<Arc<AuthService>>,
    pub view: Mutex<AuthView>,
}

impl Shell {
    /// Builds the shell from the environment's configuration, with the OS keychain and browser.
    pub fn from_env() -> Self {
        match Config::from_env() {
            Ok(Some(mut config)) => {
                if config.ui_locales.is_none() {
                    config.ui_locales = Some(system_language());
                }
                let store = Arc::new(KeyringStore::new(&config.issuer(), &config.app_id));
                match AuthService::new(config, store, Arc::new(SystemBrowser)) {
                    Ok(service) => Shell::with_service(Arc::new(service)),
                    Err(e) => Shell::failed(&e),
                }
            }
            Ok(None) => Shell::failed(&AuthError::Config(
                "no Logto endpoint and app id are configured".into(),
            )),
            Err(e) => Shell::failed(&e),
        }
    }

    pub fn with_service(service: Arc<AuthService>) -> Self {
        Shell {
            service: Some(service),
            view: Mutex::new(AuthView::Loading),
        }
    }

    fn failed(error: &AuthError) -> Self {
        Shell {
            service: None,
            view: Mutex::new(AuthView::from_error(error)),
        }
    }

    pub fn view(&self) -> AuthView {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Sets the state, tells the page and the menu.
pub fn set_view<R: Runtime>(app: &AppHandle<R>, view: AuthView) {
    let shell = app.state::<Shell>();
    *shell.view.lock().unwrap_or_else(|p| p.into_inner()) = view.clone();
    menu::sync(app, &view);
    if let Err(e) = app.emit(STATE_EVENT, &view) {
        tracing::warn!(error = %e, "could not send the state to the window");
    }
}

/// Reads the stored session (no network) and shows what it holds.
pub async fn restore<R: Runtime>(app: AppHandle<R>) {
    let Some(service) = app.state::<Shell>().service.clone() else {
        let view = app.state::<Shell>().view();
        set_view(&app, view);
        return;
    };
    let view = match service.restore().await {
        Ok(Some(user)) => AuthView::SignedIn { user: user.into() },
        Ok(None) => AuthView::SignedOut { notice: None },
        Err(AuthError::CorruptSession) => AuthView::SignedOut {
            notice: Some(AuthError::CorruptSession.to_string()),
        },
        Err(e) => AuthView::from_error(&e),
    };
    set_view(&app, view);
}

/// Brings the main window to the front (after the browser hands back, the person's attention is
/// in the browser).
pub fn focus_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// The language for Logto's pages and the loopback page: `LANGUAGE`/`LC_ALL`/`LC_MESSAGES`/`LANG`.
fn system_language() -> String {
    ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
        .map(|v| {
            let tag = v.split([':', '.']).next().unwrap_or("en").replace('_', "-");
            if tag.to_ascii_lowercase().starts_with("ja") {
                "ja".to_string()
            } else {
                "en".to_string()
            }
        })
        .unwrap_or_else(|| "en".to_string())
}

/// Builds the app on any builder; `run()` passes the real one, tests pass Tauri's mock.
pub fn build_app<R: Runtime>(builder: tauri::Builder<R>, shell: Shell) -> tauri::Builder<R> {
    builder
        .manage(shell)
        .invoke_handler(tauri::generate_handler![
            commands::get_state,
            commands::sign_in,
            commands::cancel_sign_in,
            commands::sign_out,
        ])
        .menu(menu::build)
        .on_menu_event(menu::on_event)
        .setup(|app| {
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(restore(handle));
            Ok(())
        })
}

pub fn run() {
    init_logging();
    let shell = Shell::from_env();
    let app = build_app(tauri::Builder::default(), shell).run(tauri::generate_context!());
    if let Err(e) = app {
        tracing::error!(error = %e, "the app could not start");
        std::process::exit(1);
    }
}

/// Logs go to stderr; `RUST_LOG` sets the level. No secret is ever logged (see `auth::error`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
