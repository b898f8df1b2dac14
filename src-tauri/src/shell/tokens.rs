//! The token commands, named as in Logto's SDKs. The page never receives a token: an access token
//! is described by its non-secret parts (audience, scopes, expiry, and a JWT's other claims), and
//! ID token claims come without the nonce. A session that Logto has ended turns the window back
//! to the signed-out screen, with the reason.

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State};

use super::commands::CommandError;
use super::view::Notice;
use super::{show_signed_out, Shell};
use crate::auth::tokens::{jwt_claims, CachedToken};
use crate::auth::AuthError;

/// What the page may know about an access token.
#[derive(Debug, Serialize)]
pub struct AccessTokenInfo {
    pub resource: Option<String>,
    pub organization_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    pub scope: Option<String>,
    /// The claims of a JWT access token (an API's or an organization's); `None` when opaque.
    pub claims: Option<serde_json::Value>,
}

impl AccessTokenInfo {
    /// What may be shown of `token` (the window's Call an API panel, `logto-desktop token --json`).
    pub fn new(
        token: &CachedToken,
        resource: Option<String>,
        organization_id: Option<String>,
    ) -> Self {
        AccessTokenInfo {
            resource,
            organization_id,
            expires_at: token.expires_at,
            scope: token.scope.clone(),
            claims: jwt_claims(token.token.secret()),
        }
    }
}

fn service(shell: &Shell) -> Result<std::sync::Arc<crate::auth::AuthService>, CommandError> {
    shell
        .service()
        .ok_or_else(|| CommandError::from(&AuthError::NotSignedIn))
}

/// Turns a core error into the page's, and a session Logto ended into the signed-out screen.
fn fail<R: Runtime>(app: &AppHandle<R>, error: AuthError) -> CommandError {
    if matches!(error, AuthError::SessionEnded(_) | AuthError::GrantEnded(_)) {
        if let Some(service) = app.state::<Shell>().service() {
            show_signed_out(app, service, Some(Notice::from_error(&error)));
        }
    }
    CommandError::from(&error)
}

#[tauri::command]
pub async fn is_authenticated(shell: State<'_, Shell>) -> Result<bool, CommandError> {
    match shell.service() {
        Some(service) => Ok(service.is_authenticated().await),
        None => Ok(false),
    }
}

#[tauri::command]
pub async fn get_access_token<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    resource: Option<String>,
) -> Result<AccessTokenInfo, CommandError> {
    let service = service(&shell)?;
    let token = service
        .get_access_token(resource.as_deref(), None)
        .await
        .map_err(|e| fail(&app, e))?;
    Ok(AccessTokenInfo::new(&token, resource, None))
}

#[tauri::command]
pub async fn get_organization_token<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    organization_id: String,
) -> Result<AccessTokenInfo, CommandError> {
    let service = service(&shell)?;
    let token = service
        .get_organization_token(&organization_id)
        .await
        .map_err(|e| fail(&app, e))?;
    Ok(AccessTokenInfo::new(&token, None, Some(organization_id)))
}

#[tauri::command]
pub async fn get_id_token_claims(
    shell: State<'_, Shell>,
) -> Result<serde_json::Value, CommandError> {
    service(&shell)?
        .get_id_token_claims()
        .await
        .map_err(|e| CommandError::from(&e))
}

#[tauri::command]
pub async fn fetch_user_info<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
) -> Result<serde_json::Value, CommandError> {
    service(&shell)?
        .fetch_user_info()
        .await
        .map_err(|e| fail(&app, e))
}
