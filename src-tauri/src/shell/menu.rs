//! The app menu: Account (Sign in with Amazon, Sign in, Sign out, and Quit), each with an
//! accelerator, in the shell's language; on macOS the standard app, Edit and Window menus too.
//! Its items are enabled from the same [`AuthView`] the window shows, so they always agree.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::{AppHandle, Manager, Runtime};

use super::commands::{do_sign_out, start_sign_in};
use super::view::AuthView;
use super::Shell;
use crate::auth::{Language, SignInMethod};

pub const SIGN_IN_AMAZON: &str = "sign-in-amazon";
pub const SIGN_IN: &str = "sign-in";
pub const SIGN_OUT: &str = "sign-out";
pub const QUIT: &str = "quit";

/// The menu's words. The page's copy of them is `menu` in ui/i18n.js; a test keeps both equal.
pub struct Labels {
    pub account: &'static str,
    pub sign_in_amazon: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub quit: &'static str,
}

pub fn labels(language: Language) -> Labels {
    match language {
        Language::Ja => Labels {
            account: "アカウント",
            sign_in_amazon: "Amazon でサインイン",
            sign_in: "サインイン",
            sign_out: "サインアウト",
            quit: "終了",
        },
        _ => Labels {
            account: "Account",
            sign_in_amazon: "Sign in with Amazon",
            sign_in: "Sign in",
            sign_out: "Sign out",
            quit: "Quit",
        },
    }
}

pub fn build<R: Runtime>(app: &AppHandle<R>, language: Language) -> tauri::Result<Menu<R>> {
    let text = labels(language);
    let amazon = MenuItem::with_id(
        app,
        SIGN_IN_AMAZON,
        text.sign_in_amazon,
        false,
        Some("CmdOrCtrl+Shift+A"),
    )?;
    let sign_in = MenuItem::with_id(app, SIGN_IN, text.sign_in, false, Some("CmdOrCtrl+Shift+I"))?;
    let sign_out = MenuItem::with_id(
        app,
        SIGN_OUT,
        text.sign_out,
        false,
        Some("CmdOrCtrl+Shift+O"),
    )?;
    let separator = PredefinedMenuItem::separator(app)?;

    #[cfg(not(target_os = "macos"))]
    let menu = {
        let quit = MenuItem::with_id(app, QUIT, text.quit, true, Some("CmdOrCtrl+Q"))?;
        let account = Submenu::with_items(
            app,
            text.account,
            true,
            &[&amazon, &sign_in, &sign_out, &separator, &quit],
        )?;
        Menu::with_items(app, &[&account])?
    };

    // macOS: Quit lives in the app menu (with the standard items); Edit makes copy and paste
    // work in the window's fields; Window is what people look for to minimise.
    #[cfg(target_os = "macos")]
    let menu = {
        let name = app.package_info().name.clone();
        let app_menu = Submenu::with_items(
            app,
            &name,
            true,
            &[
                &PredefinedMenuItem::about(app, None, None)?,
                &PredefinedMenuItem::separator(app)?,
                &PredefinedMenuItem::services(app, None)?,
                &PredefinedMenuItem::separator(app)?,
                &PredefinedMenuItem::hide(app, None)?,
                &PredefinedMenuItem::hide_others(app, None)?,
                &PredefinedMenuItem::show_all(app, None)?,
                &PredefinedMenuItem::separator(app)?,
                &MenuItem::with_id(app, QUIT, text.quit, true, Some("CmdOrCtrl+Q"))?,
            ],
        )?;
        let edit = Submenu::with_items(
            app,
            "Edit",
            true,
            &[
                &PredefinedMenuItem::undo(app, None)?,
                &PredefinedMenuItem::redo(app, None)?,
                &PredefinedMenuItem::separator(app)?,
                &PredefinedMenuItem::cut(app, None)?,
                &PredefinedMenuItem::copy(app, None)?,
                &PredefinedMenuItem::paste(app, None)?,
                &PredefinedMenuItem::select_all(app, None)?,
            ],
        )?;
        let account = Submenu::with_items(
            app,
            text.account,
            true,
            &[&amazon, &sign_in, &separator, &sign_out],
        )?;
        let window = Submenu::with_items(
            app,
            "Window",
            true,
            &[
                &PredefinedMenuItem::minimize(app, None)?,
                &PredefinedMenuItem::close_window(app, None)?,
            ],
        )?;
        Menu::with_items(app, &[&app_menu, &edit, &account, &window])?
    };

    app.manage(Items {
        amazon,
        sign_in,
        sign_out,
    });
    // The view may have been set before the menu existed.
    if let Some(shell) = app.try_state::<Shell>() {
        sync(app, &shell.view());
    }
    Ok(menu)
}

/// The items whose enabled state follows the view.
struct Items<R: Runtime> {
    amazon: MenuItem<R>,
    sign_in: MenuItem<R>,
    sign_out: MenuItem<R>,
}

/// Enables the items that make sense in `view`: signing in from signed-out or an error (when
/// configured), signing out only when signed in.
pub fn sync<R: Runtime>(app: &AppHandle<R>, view: &AuthView) {
    let Some(items) = app.try_state::<Items<R>>() else {
        return;
    };
    let service = app.try_state::<Shell>().and_then(|shell| shell.service());
    let can_sign_in =
        service.is_some() && matches!(view, AuthView::SignedOut { .. } | AuthView::Error { .. });
    // Not offered where the tenant has no Amazon connector (the page hides its button too).
    let amazon_offered = service.is_some_and(|s| !s.amazon_missing());
    for (item, enabled) in [
        (&items.amazon, can_sign_in && amazon_offered),
        (&items.sign_in, can_sign_in),
        (&items.sign_out, view.is_signed_in()),
    ] {
        let _ = item.set_enabled(enabled);
    }
}

pub fn on_event<R: Runtime>(app: &AppHandle<R>, event: tauri::menu::MenuEvent) {
    handle(app, event.id().as_ref());
}

/// What each item does; also reachable from tests without a display. The item's enabled state
/// is checked here as well, so an accelerator or a stale event cannot act against the view.
pub fn handle<R: Runtime>(app: &AppHandle<R>, id: &str) {
    if id == QUIT {
        app.exit(0);
        return;
    }
    let shell = app.state::<Shell>();
    let Some(service) = shell.service() else {
        return;
    };
    let view = shell.view();
    let can_sign_in = matches!(view, AuthView::SignedOut { .. } | AuthView::Error { .. });
    match id {
        SIGN_IN_AMAZON if can_sign_in && !service.amazon_missing() => {
            start_sign_in(app.clone(), service, SignInMethod::Amazon)
        }
        SIGN_IN if can_sign_in => start_sign_in(app.clone(), service, SignInMethod::Logto),
        SIGN_OUT if view.is_signed_in() => {
            tracing::info!("sign-out from the app menu");
            let app = app.clone();
            tauri::async_runtime::spawn(async move { do_sign_out(app, service).await });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_and_the_page_use_the_same_words() {
        let page = include_str!("../../../ui/i18n.js");
        let (en, ja) = page.split_once("\n  ja: {").expect("the ja table");
        for (language, table) in [(Language::En, en), (Language::Ja, ja)] {
            let menu_line = table
                .lines()
                .find(|line| line.trim_start().starts_with("menu: {"))
                .expect("a menu line per language");
            let text = labels(language);
            for (key, label) in [
                ("account", text.account),
                ("signInAmazon", text.sign_in_amazon),
                ("signIn", text.sign_in),
                ("signOut", text.sign_out),
                ("quit", text.quit),
            ] {
                let entry = format!("{key}: \"{label}\"");
                assert!(
                    menu_line.contains(&entry),
                    "ui/i18n.js's menu lacks {entry}"
                );
            }
        }
    }
}
