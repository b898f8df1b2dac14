//! `logto-desktop --status`: prints the stored session's user as JSON and exits, with no window,
//! no network and no change to the keychain. Scripts (and the tests) use it to see what a new
//! process restores.

use serde_json::json;

use crate::auth::pages::Language;
use crate::auth::{AuthError, Config};

/// Runs the status command; returns the process exit code.
pub fn status() -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("could not start: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        // The same configuration the window uses: the environment, else the config file.
        let (config, _) = Config::resolve_from_system()?.ok_or_else(|| {
            AuthError::Config("no Logto endpoint and app id are configured".into())
        })?;
        let service = crate::shell::make_service(config, Language::default())?;
        // Read-only: a status command changes nothing, not even an entry it cannot read.
        service.peek().await
    });
    let (output, code) = match result {
        Ok(Some(user)) => (
            json!({ "state": "signed-in", "user": crate::shell::view::UserView::from(user) }),
            0,
        ),
        Ok(None) => (json!({ "state": "signed-out" }), 0),
        Err(e) => (
            json!({ "state": "error", "code": e.code(), "message": e.to_string() }),
            1,
        ),
    };
    println!("{output}");
    code
}
