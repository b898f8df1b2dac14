//! The app menu: Account (Sign in with Amazon, Sign in, Sign out) and Quit, with accelerators.
//! Its items are enabled from the same [`AuthView`] the window shows, so they always agree.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::{AppHandle, Manager, Runtime};

use super::commands::{do_sign_out, start_sign_in};
use super::view::AuthView;
use super::Shell;
use crate::auth::SignInMethod;

pub const SIGN_IN_AMAZON: &str = "sign-in-amazon";
pub const SIGN_IN: &str = "sign-in";
pub const SIGN_OUT: &str = "sign-out";
pub const QUIT: &str = "quit";

pub fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Menu<R>> {
    let amazon = MenuItem::with_id(
        app,
        SIGN_IN_AMAZON,
        "Sign in with Amazon",
        false,
        Some("CmdOrCtrl+Shift+A"),
    )?;
    let sign_in = MenuItem::with_id(app, SIGN_IN, "Sign in", false, Some("CmdOrCtrl+Shift+I"))?;
    let sign_out = MenuItem::with_id(app, SIGN_OUT, "Sign out", false, Some("CmdOrCtrl+Shift+O"))?;
    let quit = MenuItem::with_id(app, QUIT, "Quit", true, Some("CmdOrCtrl+Q"))?;
    let separator = PredefinedMenuItem::separator(app)?;
    let account = Submenu::with_items(
        app,
        "Account",
        true,
        &[&amazon, &sign_in, &sign_out, &separator, &quit],
    )?;
    let menu = Menu::with_items(app, &[&account])?;
    app.manage(Items {
        amazon,
        sign_in,
        sign_out,
    });
    Ok(menu)
}

/// The items whose enabled state follows the view.
struct Items<R: Runtime> {
    amazon: MenuItem<R>,
    sign_in: MenuItem<R>,
    sign_out: MenuItem<R>,
}

/// Enables the items that make sense in `view`.
pub fn sync<R: Runtime>(app: &AppHandle<R>, view: &AuthView) {
    let Some(items) = app.try_state::<Items<R>>() else {
        return;
    };
    let can_sign_in = matches!(view, AuthView::SignedOut { .. } | AuthView::Error { .. })
        && app.state::<Shell>().service.is_some();
    for (item, enabled) in [
        (&items.amazon, can_sign_in),
        (&items.sign_in, can_sign_in),
        (&items.sign_out, view.is_signed_in()),
    ] {
        let _ = item.set_enabled(enabled);
    }
}

pub fn on_event<R: Runtime>(app: &AppHandle<R>, event: tauri::menu::MenuEvent) {
    handle(app, event.id().as_ref());
}

/// What each item does; also reachable from tests without a display.
pub fn handle<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(service) = app.state::<Shell>().service.clone() else {
        return;
    };
    match id {
        SIGN_IN_AMAZON => start_sign_in(app.clone(), service, SignInMethod::Amazon),
        SIGN_IN => start_sign_in(app.clone(), service, SignInMethod::Logto),
        SIGN_OUT => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move { do_sign_out(app, service).await });
        }
        QUIT => app.exit(0),
        _ => {}
    }
}
