//! The token commands, named as in Logto's SDKs. The page never receives a token: an access token
//! is described by its non-secret parts (audience, scopes, expiry, and a JWT's other claims), and
//! ID token claims come without the nonce. A session that Logto has ended turns the window back
//! to the signed-out screen, with the reason, through the core's status (`shell::render`).

use tauri::State;

use super::commands::CommandError;
use super::Shell;
use crate::auth::{AuthError, TokenInfo};

fn service(shell: &Shell) -> Result<std::sync::Arc<crate::auth::AuthService>, CommandError> {
    shell
        .service()
        .ok_or_else(|| CommandError::from(&AuthError::NotSignedIn))
}

#[tauri::command]
pub async fn is_authenticated(shell: State<'_, Shell>) -> Result<bool, CommandError> {
    match shell.service() {
        Some(service) => Ok(service.is_authenticated().await),
        None => Ok(false),
    }
}

#[tauri::command]
pub async fn get_access_token(
    shell: State<'_, Shell>,
    resource: Option<String>,
) -> Result<TokenInfo, CommandError> {
    let service = service(&shell)?;
    let token = service
        .get_access_token(resource.as_deref(), None)
        .await
        .map_err(|e| CommandError::from(&e))?;
    Ok(token.info(resource, None))
}

#[tauri::command]
pub async fn get_organization_token(
    shell: State<'_, Shell>,
    organization_id: String,
) -> Result<TokenInfo, CommandError> {
    let service = service(&shell)?;
    let token = service
        .get_organization_token(&organization_id)
        .await
        .map_err(|e| CommandError::from(&e))?;
    Ok(token.info(None, Some(organization_id)))
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
pub async fn fetch_user_info(shell: State<'_, Shell>) -> Result<serde_json::Value, CommandError> {
    service(&shell)?
        .fetch_user_info()
        .await
        .map_err(|e| CommandError::from(&e))
}
