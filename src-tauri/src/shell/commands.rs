//! The commands the page may call. Thin: each hands the work to the core and turns the outcome
//! into a new [`AuthView`]. Errors reach the page as `{ code, message }` and never carry a secret.

use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use super::view::AuthView;
use super::{focus_main, set_view, Shell};
use crate::auth::SignInMethod;

#[derive(Debug, Serialize)]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

fn not_configured(shell: &Shell) -> CommandError {
    match shell.view() {
        AuthView::Error { code, message } => CommandError { code, message },
        _ => CommandError {
            code: "config.invalid".into(),
            message: "Logto is not configured.".into(),
        },
    }
}

#[tauri::command]
pub fn get_state(shell: State<'_, Shell>) -> AuthView {
    shell.view()
}

/// Starts a sign-in and returns at once; progress arrives as state events.
#[tauri::command]
pub fn sign_in<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    method: Option<SignInMethod>,
) -> Result<(), CommandError> {
    let service = shell
        .service
        .clone()
        .ok_or_else(|| not_configured(&shell))?;
    start_sign_in(app, service, method.unwrap_or_default());
    Ok(())
}

/// Shared by the command and the app menu.
pub fn start_sign_in<R: Runtime>(
    app: AppHandle<R>,
    service: std::sync::Arc<crate::auth::AuthService>,
    method: SignInMethod,
) {
    tauri::async_runtime::spawn(async move {
        let waiting_app = app.clone();
        let result = service
            .sign_in(method, move |waiting| {
                set_view(
                    &waiting_app,
                    AuthView::SigningIn {
                        method,
                        deadline: waiting.deadline,
                        browser_error: waiting.browser_error.clone(),
                    },
                );
            })
            .await;
        match result {
            Ok(user) => {
                set_view(&app, AuthView::SignedIn { user: user.into() });
                focus_main(&app);
            }
            // A newer sign-in replaced this one: its own events tell the story.
            Err(crate::auth::AuthError::Cancelled) if service.is_signing_in() => {}
            Err(crate::auth::AuthError::Cancelled) => {
                let view = match service.current_user().await {
                    Some(user) => AuthView::SignedIn { user: user.into() },
                    None => AuthView::SignedOut { notice: None },
                };
                set_view(&app, view);
            }
            Err(e) => {
                set_view(&app, AuthView::from_error(&e));
                focus_main(&app);
            }
        }
    });
}

#[tauri::command]
pub fn cancel_sign_in(shell: State<'_, Shell>) -> bool {
    shell.service.as_ref().is_some_and(|s| s.cancel_sign_in())
}

#[tauri::command]
pub async fn sign_out<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
) -> Result<(), CommandError> {
    let service = shell
        .service
        .clone()
        .ok_or_else(|| not_configured(&shell))?;
    do_sign_out(app, service).await;
    Ok(())
}

/// Shared by the command and the app menu.
pub async fn do_sign_out<R: Runtime>(
    app: AppHandle<R>,
    service: std::sync::Arc<crate::auth::AuthService>,
) {
    let view = match service.sign_out().await {
        Ok(report) => AuthView::SignedOut {
            notice: report.warning,
        },
        Err(e) => AuthView::from_error(&e),
    };
    set_view(&app, view);
}
