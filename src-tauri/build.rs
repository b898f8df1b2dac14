//! Generates Tauri's context and the permissions for the app's own commands, so the window's
//! capability can name exactly the commands it may call.
fn main() {
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(&[
            "get_state",
            "first_screen_drawn",
            "sign_in",
            "cancel_sign_in",
            "open_browser_again",
            "copy_sign_in_link",
            "sign_out",
            "save_setup",
            "open_help",
            "is_authenticated",
            "get_access_token",
            "get_organization_token",
            "get_id_token_claims",
            "fetch_user_info",
        ]));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {error:#}");
    }
}
