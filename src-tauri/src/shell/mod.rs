//! The shell: adapts the sign-in core to the window. It owns the one state the window, the app
//! menu and the tests all see ([`view::AuthView`]), the commands the page may call, the app menu,
//! the language, and the window's behaviour (one instance, remembered size and position, to the
//! front when the browser hands back). Everything the page receives passes through [`view`],
//! which holds no secret.

pub mod commands;
#[cfg(target_os = "linux")]
pub mod instance;
pub mod menu;
pub mod tokens;
pub mod view;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::auth::config::{config_file_path, ConfigSource};
use crate::auth::{AuthError, AuthService, Config, Language, SignedOutWhy, Status};
use view::{AuthView, Notice, Snapshot};

/// The keychain service of the app's entry, shared with the command line (src-tauri/cli).
pub const KEYCHAIN_SERVICE: &str = "logto-desktop";

/// The event that carries every change of [`AuthView`] to the page.
pub const STATE_EVENT: &str = "auth-state";

/// What the shell keeps between commands.
pub struct Shell {
    /// `None` until there is a valid configuration (the first-run screen can supply one later,
    /// so it can be set once the app runs).
    service: RwLock<Option<Arc<AuthService>>>,
    /// The view and how many times it changed; watched, so the page's first question can wait
    /// for the restored state instead of drawing a loading screen first.
    view: tokio::sync::watch::Sender<(u64, AuthView)>,
    /// The language of the window, the menu, Logto's pages and the loopback page.
    pub language: Language,
    /// Where the first-run screen saves the endpoint and app id.
    pub config_path: Option<PathBuf>,
    /// One first-run check at a time.
    pub(crate) setup_lock: tokio::sync::Mutex<()>,
}

/// How long the page's first `get_state` waits for the stored session to be read. The keychain
/// answers in milliseconds; one that asks to be unlocked can take as long as the person does,
/// and then the page shows its loading screen meanwhile.
pub const FIRST_STATE_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

impl Shell {
    /// Builds the shell from the environment, then the config file, with the OS keychain and
    /// browser. Without either it shows the first-run screen.
    pub fn from_system() -> Self {
        let env = |name: &str| std::env::var(name).ok();
        let language = system_language(env);
        let config_path = config_file_path();
        let env_is_set = ["LOGTO_ENDPOINT", "LOGTO_APP_ID"]
            .iter()
            .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()));
        let shell = |service, view| Shell::new(service, view, language, config_path.clone());
        match Config::resolve(env, config_path.as_deref()) {
            Ok(Some((config, source))) => match make_service(config, language) {
                Ok(service) => {
                    if source == ConfigSource::File {
                        tracing::info!("using the endpoint and app id from the config file");
                    }
                    shell(Some(Arc::new(service)), AuthView::Loading)
                }
                Err(e) => shell(None, AuthView::from_error(&e)),
            },
            Ok(None) => shell(None, setup_view(&config_path, None)),
            // A broken environment is the person's to fix where they set it; a broken file is
            // replaced through the first-run screen.
            Err(e) if env_is_set => shell(None, AuthView::from_error(&e)),
            Err(e) => shell(None, setup_view(&config_path, Some(Notice::from_error(&e)))),
        }
    }

    /// A shell around a ready service (tests, and whatever embeds the core differently).
    pub fn with_service(service: Arc<AuthService>, language: Language) -> Self {
        Shell::new(Some(service), AuthView::Loading, language, None)
    }

    fn new(
        service: Option<Arc<AuthService>>,
        view: AuthView,
        language: Language,
        config_path: Option<PathBuf>,
    ) -> Self {
        Shell {
            service: RwLock::new(service),
            view: tokio::sync::watch::Sender::new((0, view)),
            language,
            config_path,
            setup_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The service, when the app is configured.
    pub fn service(&self) -> Option<Arc<AuthService>> {
        self.service
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs the service the first-run screen made.
    pub fn set_service(&self, service: Arc<AuthService>) {
        *self.service.write().unwrap_or_else(|p| p.into_inner()) = Some(service);
    }

    pub fn view(&self) -> AuthView {
        self.view.borrow().1.clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let (version, view) = self.view.borrow().clone();
        Snapshot {
            version,
            language: self.language.tag(),
            view,
        }
    }

    /// The snapshot once the stored session has been read, or after `wait` at most.
    pub async fn settled_snapshot(&self, wait: std::time::Duration) -> Snapshot {
        // The view is `Loading` only until the stored session has been read.
        let mut view = self.view.subscribe();
        let settled = view.wait_for(|(_, view)| !matches!(view, AuthView::Loading));
        // Err: the wait ran out (or the sender is gone, which it cannot be while `self` is).
        let _ = tokio::time::timeout(wait, settled).await;
        self.snapshot()
    }
}

fn setup_view(path: &Option<PathBuf>, problem: Option<Notice>) -> AuthView {
    AuthView::Setup {
        config_path: path.as_ref().map(|p| p.display().to_string()),
        problem,
    }
}

/// The core's service for `config`, speaking `language` on Logto's pages and the loopback page,
/// with the OS keychain and the system browser.
pub fn make_service(mut config: Config, language: Language) -> Result<AuthService, AuthError> {
    // The keychain service the app has always filed its entry under (and the command line too).
    config.keychain_service = KEYCHAIN_SERVICE.to_string();
    if config.ui_locales.is_none() {
        config.ui_locales = Some(language.tag().to_string());
    }
    // The window and `logto-desktop token` share the entry: they refresh one at a time.
    AuthService::on_this_system(config)
}

/// Sets the state, tells the page and the menu.
pub fn set_view<R: Runtime>(app: &AppHandle<R>, view: AuthView) {
    let shell = app.state::<Shell>();
    let mut version = 0;
    shell.view.send_modify(|current| {
        version = current.0 + 1;
        *current = (version, view.clone());
    });
    announce(app, version, &view);
}

/// Tells the menu and the page about a new view.
fn announce<R: Runtime>(app: &AppHandle<R>, version: u64, view: &AuthView) {
    menu::sync(app, view);
    let change = view::Change { version, view };
    if let Err(e) = app.emit(STATE_EVENT, &change) {
        tracing::warn!(error = %e, "could not send the state to the window");
    }
}

/// Starts drawing the core's status, follows what other programs do to the sign-in, and reads
/// the stored session (no network), which the status then shows.
pub async fn restore<R: Runtime>(app: AppHandle<R>) {
    let Some(service) = app.state::<Shell>().service() else {
        let view = app.state::<Shell>().view();
        set_view(&app, view);
        return;
    };
    tauri::async_runtime::spawn(render(app.clone(), service.clone(), service.subscribe()));
    if let Err(e) = service.follow_other_programs() {
        tracing::warn!(code = e.code(), error = %e, "a sign-out or sign-in in another program shows here only at the next token request");
    }
    // The status says how it went; the renderer draws it.
    let _ = service.restore().await;
}

/// Draws the core's status: the one place the session's screens come from, whichever program
/// made the change. Only the newest status counts.
async fn render<R: Runtime>(
    app: AppHandle<R>,
    service: Arc<AuthService>,
    mut status: tokio::sync::watch::Receiver<Status>,
) {
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        match now {
            Status::Unknown => {}
            Status::SignedOut(why) => show_signed_out(
                &app,
                service.clone(),
                why.as_ref().and_then(signed_out_notice),
            ),
            Status::SigningIn {
                method,
                deadline,
                browser_error,
            } => set_view(
                &app,
                AuthView::SigningIn {
                    method,
                    deadline,
                    browser_error,
                },
            ),
            Status::SignedIn(user) => set_view(&app, AuthView::signed_in(&service, user)),
            Status::Failed(e) => set_view(&app, AuthView::from_error(&e)),
            // A status this version does not know draws nothing new.
            _ => {}
        }
    }
}

/// What the signed-out screen says about why.
fn signed_out_notice(why: &SignedOutWhy) -> Option<Notice> {
    match why {
        SignedOutWhy::SignOut(report) => view::sign_out_notice(report),
        SignedOutWhy::Elsewhere => Some(Notice {
            code: view::SIGNED_OUT_ELSEWHERE.to_string(),
            detail: None,
        }),
        SignedOutWhy::Ended(e) => Some(Notice::from_error(e)),
        _ => None,
    }
}

/// Shows the signed-out screen, then readies what its buttons need: discovery and the keys, so
/// no round trip stands between a click and the browser, and the tenant check, which may take
/// "Continue with Amazon" away (only while the signed-out screen still shows). A sign-in never
/// waits for either. Signed in, nothing is fetched (a restore uses no network).
pub fn show_signed_out<R: Runtime>(
    app: &AppHandle<R>,
    service: Arc<AuthService>,
    notice: Option<Notice>,
) {
    set_view(app, AuthView::signed_out(&service, notice));
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let (checked, prefetched) =
            tokio::join!(service.check_sign_in_experience(), service.prefetch());
        if let Err(e) = prefetched {
            tracing::debug!(
                code = e.code(),
                "discovery not fetched ahead; the sign-in will"
            );
        }
        match checked {
            Ok(true) => replace_view_if(&app, |view| match view {
                AuthView::SignedOut { notice, .. } => {
                    Some(AuthView::signed_out(&service, notice.clone()))
                }
                _ => None,
            }),
            Ok(false) => {}
            Err(e) => tracing::info!(
                code = e.code(),
                "the tenant's sign-in experience was not read; every sign-in button stays"
            ),
        }
    });
}

/// Replaces the view with what `next` makes of it, when it makes something; checked and replaced
/// in one step, so a change in between (a sign-in starting) is never overwritten.
pub fn replace_view_if<R: Runtime>(
    app: &AppHandle<R>,
    next: impl FnOnce(&AuthView) -> Option<AuthView>,
) {
    let shell = app.state::<Shell>();
    let mut changed = None;
    shell
        .view
        .send_if_modified(|current| match next(&current.1) {
            Some(view) => {
                current.0 += 1;
                current.1 = view;
                changed = Some(current.clone());
                true
            }
            None => false,
        });
    if let Some((version, view)) = changed {
        announce(app, version, &view);
    }
}

/// Brings the main window to the front (after the browser hands back, the person's attention is
/// in the browser; and when a second launch asks for it).
pub fn focus_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// The language for the window, the menu, Logto's pages and the loopback page, from
/// `LANGUAGE`, `LC_ALL`, `LC_MESSAGES`, `LANG` in that order (as gettext reads them). The first
/// one set (and not the C locale) decides; in `LANGUAGE`'s list the first language the app
/// speaks wins. Anything else is English.
pub fn system_language(get: impl Fn(&str) -> Option<String>) -> Language {
    for name in ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"] {
        let Some(value) = get(name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let entries: Vec<&str> = value.split(':').filter(|e| !e.is_empty()).collect();
        if entries.iter().all(|e| is_c_locale(e)) {
            continue;
        }
        return entries
            .iter()
            .find_map(|e| supported(e))
            .unwrap_or(Language::En);
    }
    Language::En
}

fn is_c_locale(tag: &str) -> bool {
    let base = tag.split(['.', '@']).next().unwrap_or(tag);
    base == "C" || base == "POSIX"
}

fn supported(tag: &str) -> Option<Language> {
    let base = tag
        .split(['_', '-', '.', '@'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase();
    match base.as_str() {
        "ja" => Some(Language::Ja),
        "en" => Some(Language::En),
        _ => None,
    }
}

/// The D-Bus name behind "one running window" on Linux: the app's identifier plus a hash of the
/// config folder. The session bus is per login, so this is one window per person, as usual;
/// a second profile (another `XDG_CONFIG_HOME`, as each end-to-end test sandbox has) is a
/// different app state and gets its own window.
pub fn instance_id(identifier: &str, config_dir: Option<&std::path::Path>) -> String {
    // FNV-1a: stable across builds and Rust versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let dir = config_dir
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    for byte in dir.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{identifier}.p{hash:016x}")
}

/// Builds the app on any builder; `run()` passes the real one with the window plugins.
pub fn build_app<R: Runtime>(builder: tauri::Builder<R>, shell: Shell) -> tauri::Builder<R> {
    let language = shell.language;
    // Copy link writes the sign-in URL to the clipboard from Rust; the page has no access. On
    // Linux through GTK itself (`commands::write_clipboard`), elsewhere through the plugin.
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(tauri_plugin_clipboard_manager::init());
    builder
        .manage(shell)
        .invoke_handler(tauri::generate_handler![
            commands::get_state,
            commands::first_screen_drawn,
            commands::sign_in,
            commands::cancel_sign_in,
            commands::open_browser_again,
            commands::copy_sign_in_link,
            commands::sign_out,
            commands::save_setup,
            commands::open_help,
            tokens::is_authenticated,
            tokens::get_access_token,
            tokens::get_organization_token,
            tokens::get_id_token_claims,
            tokens::fetch_user_info,
        ])
        .menu(move |app| menu::build(app, language))
        .on_menu_event(menu::on_event)
        .setup(|app| {
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(restore(handle.clone()));
            #[cfg(unix)]
            tauri::async_runtime::spawn(quit_on_signal(handle));
            Ok(())
        })
}

pub fn run() {
    init_logging();
    // GTK names the window's WM_CLASS after the program: people start `logto-desktop` (the menu
    // entry's Exec and StartupWMClass), which starts this program, so docks match it by that name.
    #[cfg(target_os = "linux")]
    gtk::glib::set_prgname(Some("logto-desktop"));
    let shell = Shell::from_system();
    let context = tauri::generate_context!();
    // First, so a second launch hands over before anything else starts.
    #[cfg(target_os = "linux")]
    let owner = match instance::claim(&instance_id(
        &context.config().identifier,
        dirs::config_dir().as_deref(),
    )) {
        instance::Launch::First(owner) => Some(owner),
        instance::Launch::HandedOver => {
            tracing::info!("the app is already running: its window was brought to the front");
            return;
        }
        instance::Launch::OwnerSilent(e) => {
            tracing::error!(error = %e, "the app is already running, but its window did not answer; close it and try again");
            std::process::exit(1);
        }
        instance::Launch::Unguarded(e) => {
            tracing::warn!(error = %e, "no session bus: a second launch will open a second window");
            None
        }
    };
    #[cfg(not(target_os = "linux"))]
    let builder = tauri::Builder::default().plugin(
        tauri_plugin_single_instance::Builder::new()
            .callback(|app, _argv, _cwd| {
                tracing::info!("a second launch asked for the window");
                focus_main(app);
            })
            .build(),
    );
    #[cfg(target_os = "linux")]
    let builder = tauri::Builder::default();
    let builder = builder.plugin(
        tauri_plugin_window_state::Builder::new()
            .with_state_flags(
                tauri_plugin_window_state::StateFlags::SIZE
                    | tauri_plugin_window_state::StateFlags::POSITION
                    | tauri_plugin_window_state::StateFlags::MAXIMIZED,
            )
            .build(),
    );
    let app = match build_app(builder, shell).build(context) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "the app could not start");
            std::process::exit(1);
        }
    };
    #[cfg(target_os = "linux")]
    if let Some(owner) = owner {
        let handle = app.handle().clone();
        owner.serve(move || {
            tracing::info!("a second launch asked for the window");
            focus_main(&handle);
        });
    }
    // Asked once per run: a second request after the wait (or a refusal) quits whatever is left.
    let waited = std::sync::atomic::AtomicBool::new(false);
    app.run(move |app, event| {
        if let tauri::RunEvent::ExitRequested { api, .. } = event {
            if !waited.swap(true, std::sync::atomic::Ordering::SeqCst) && keep_before_exit(app) {
                api.prevent_exit();
            }
        }
    });
}

/// SIGTERM (a logout, `systemctl stop`, `kill`), SIGHUP and SIGINT quit as the menu's Quit does,
/// so that [`keep_before_exit`] runs: by default they would end the process on the spot.
#[cfg(unix)]
async fn quit_on_signal<R: Runtime>(app: AppHandle<R>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("stop signals cannot be watched; they end the app without saving");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: quitting"),
        _ = hup.recv() => tracing::info!("SIGHUP: quitting"),
        _ = int.recv() => tracing::info!("SIGINT: quitting"),
    }
    app.exit(0);
}

/// How long quitting waits for a refresh under way to be kept: its request's own bound (20 s)
/// and a keychain write.
const KEEP_BEFORE_EXIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Quitting while a refresh is at Logto (or its rotated refresh token is not in the keychain
/// yet): the window goes away at once, and the app waits for the refresh, under the entry's lock,
/// writes what it brought, then quits, so the next program does not use a refresh token Logto has
/// already rotated, which would revoke the whole grant. Returns whether quitting waits.
fn keep_before_exit<R: Runtime>(app: &AppHandle<R>) -> bool {
    let Some(service) = app.state::<Shell>().service() else {
        return false;
    };
    if !service.has_unkept_answer() {
        return false;
    }
    tracing::info!("quitting once Logto's answer is kept");
    for window in app.webview_windows().values() {
        let _ = window.hide();
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        match tokio::time::timeout(KEEP_BEFORE_EXIT, service.flush()).await {
            Ok(Ok(())) => tracing::info!("Logto's answer is kept"),
            Ok(Err(e)) => tracing::warn!(
                code = e.code(),
                "Logto's answer could not be kept before quitting"
            ),
            Err(_) => {
                tracing::warn!("Logto's answer was not kept before quitting: it took too long")
            }
        }
        app.exit(0);
    });
    true
}

/// Logs go to stderr; `RUST_LOG` sets the level. No secret is ever logged (see `auth::error`).
/// `RUST_LOG` takes levels per target (`debug`, `logto_desktop=trace,info`), read without a
/// regex engine (a full `EnvFilter` would add one to the binary for span and field filters
/// nobody sets here).
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let (filter, unreadable) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
    if unreadable {
        tracing::warn!("RUST_LOG was not understood (levels per target, such as `debug` or `logto_desktop=trace`); logging at info");
    }
}

/// The filter `RUST_LOG` asks for, or info (and whether it could not be read).
fn log_filter(spec: Option<&str>) -> (tracing_subscriber::filter::Targets, bool) {
    use tracing_subscriber::filter::Targets;
    let info = || Targets::new().with_default(tracing::Level::INFO);
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        None => (info(), false),
        Some(spec) => match spec.parse::<Targets>() {
            Ok(targets) => (targets, false),
            Err(_) => (info(), true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment made of pairs.
    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    /// The colours one `:root` block of ui/style.css sets (`--name: #rrggbb;`).
    fn colours(block: &str) -> std::collections::HashMap<String, [f64; 3]> {
        block
            .lines()
            .filter_map(|line| {
                let (name, value) = line.trim().strip_prefix("--")?.split_once(':')?;
                let hex = value.trim().strip_suffix(';')?.strip_prefix('#')?;
                let channel = |i: usize| {
                    u8::from_str_radix(hex.get(i..i + 2)?, 16)
                        .ok()
                        .map(|c| f64::from(c) / 255.0)
                };
                Some((name.to_string(), [channel(0)?, channel(2)?, channel(4)?]))
            })
            .collect()
    }

    /// WCAG 2.1's contrast ratio.
    fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
        let luminance = |c: [f64; 3]| {
            let linear = |v: f64| {
                if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * linear(c[0]) + 0.7152 * linear(c[1]) + 0.0722 * linear(c[2])
        };
        let (hi, lo) = {
            let (x, y) = (luminance(a), luminance(b));
            (x.max(y), x.min(y))
        };
        (hi + 0.05) / (lo + 0.05)
    }

    #[test]
    fn fields_and_placeholders_meet_wcag_contrast_in_light_and_dark() {
        let css = include_str!("../../../ui/style.css");
        let light_start = css.find(":root {").expect("the light colours");
        let light = &css[light_start..light_start + css[light_start..].find("\n}").expect("end")];
        let dark_start = css
            .find("@media (prefers-color-scheme: dark) {")
            .expect("the dark colours");
        let dark = &css[dark_start..dark_start + css[dark_start..].find("\n}").expect("end")];
        for (scheme, block) in [("light", light), ("dark", dark)] {
            let c = colours(block);
            let get = |name: &str| *c.get(name).unwrap_or_else(|| panic!("{scheme}: --{name}"));
            for (against, ratio) in [
                ("card", contrast(get("field-border"), get("card"))),
                ("field", contrast(get("field-border"), get("field"))),
            ] {
                assert!(ratio >= 3.0, "{scheme}: a field's border against the {against} is {ratio:.2}:1 (1.4.11 asks 3:1)");
            }
            let placeholder = contrast(get("muted"), get("field"));
            assert!(
                placeholder >= 4.5,
                "{scheme}: the placeholder is {placeholder:.2}:1 (1.4.3 asks 4.5:1)"
            );
        }
        // The rules use those colours, at full strength.
        let rule = |selector: &str| {
            let start = css.find(selector).unwrap_or_else(|| panic!("{selector}"));
            &css[start..start + css[start..].find('}').expect("the rule's end")]
        };
        assert!(rule("\ninput {").contains("border: 1px solid var(--field-border)"));
        assert!(rule(".api-row select {").contains("border: 1px solid var(--field-border)"));
        let placeholder = rule("input::placeholder {");
        assert!(placeholder.contains("color: var(--muted)") && placeholder.contains("opacity: 1"));
    }

    #[test]
    fn rust_log_sets_levels_per_target_and_falls_back_to_info() {
        use tracing::Level;
        use tracing_subscriber::filter::LevelFilter;
        let (none, bad) = log_filter(None);
        assert_eq!(none.default_level(), Some(LevelFilter::INFO));
        assert!(!bad);
        let (all, _) = log_filter(Some("trace"));
        assert!(all.would_enable("logto_desktop::auth", &Level::TRACE));
        let (one, _) = log_filter(Some("logto_desktop=debug,warn"));
        assert!(one.would_enable("logto_desktop::shell", &Level::DEBUG));
        assert!(!one.would_enable("tao", &Level::INFO));
        let (fallback, bad) = log_filter(Some("[span{field=1}]=trace"));
        assert!(bad, "a span filter is not understood");
        assert_eq!(fallback.default_level(), Some(LevelFilter::INFO));
    }

    #[test]
    fn the_language_follows_gettexts_order() {
        assert_eq!(system_language(env(&[])), Language::En);
        assert_eq!(
            system_language(env(&[("LANG", "ja_JP.UTF-8")])),
            Language::Ja
        );
        assert_eq!(
            system_language(env(&[("LANGUAGE", "fr:ja:en"), ("LANG", "en_US.UTF-8")])),
            Language::Ja
        );
        assert_eq!(
            system_language(env(&[("LANGUAGE", "en"), ("LANG", "ja_JP.UTF-8")])),
            Language::En
        );
        assert_eq!(
            system_language(env(&[("LC_ALL", "C.UTF-8"), ("LANG", "ja_JP.UTF-8")])),
            Language::Ja,
            "the C locale says nothing about language"
        );
        assert_eq!(
            system_language(env(&[("LANG", "de_DE.UTF-8")])),
            Language::En
        );
        assert_eq!(system_language(env(&[("LANG", "ja-JP")])), Language::Ja);
    }

    #[test]
    fn the_shell_and_the_loopback_page_agree_on_the_language() {
        // The loopback page picks its language from `ui_locales` with the core's own parser.
        for tag in ["ja_JP.UTF-8", "en_GB.UTF-8", "ja", "fr_FR"] {
            let picked = system_language(env(&[("LANG", tag)]));
            assert_eq!(Language::from_tag(picked.tag()), picked, "{tag}");
        }
    }

    #[test]
    fn the_instance_id_is_a_valid_dbus_name_per_config_folder() {
        let a = instance_id("io.logto.desktop-sample", Some("/home/a/.config".as_ref()));
        let b = instance_id(
            "io.logto.desktop-sample",
            Some("/tmp/sandbox/config".as_ref()),
        );
        assert_ne!(a, b);
        assert_eq!(
            a,
            instance_id("io.logto.desktop-sample", Some("/home/a/.config".as_ref()))
        );
        // Each element starts with a letter; only letters, digits, '-', '_' and dots.
        for element in a.split('.') {
            assert!(
                element.starts_with(|c: char| c.is_ascii_alphabetic()),
                "{a}"
            );
            assert!(element
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }

    /// The keys of one language's table in ui/i18n.js (`key:` or `"key":` at the start of a line).
    fn keys_of(block: &str) -> std::collections::BTreeSet<String> {
        block
            .lines()
            .filter_map(|line| {
                let line = line.trim_start();
                let (key, _) = line.split_once(':')?;
                let key = key.trim_matches('"');
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                plain.then(|| key.to_string())
            })
            .collect()
    }

    fn language_blocks() -> (&'static str, &'static str) {
        let page = include_str!("../../../ui/i18n.js");
        let en = page.find("\n  en: {").expect("the en table");
        let ja = page.find("\n  ja: {").expect("the ja table");
        let end = page[ja..].find("\n};").expect("the end of the tables") + ja;
        // Each block starts after its own `en: {` / `ja: {` line.
        let (en_start, ja_start) = (en + "\n  en: {".len(), ja + "\n  ja: {".len());
        (&page[en_start..ja], &page[ja_start..end])
    }

    #[test]
    fn every_error_code_has_words_in_both_languages() {
        let core = include_str!("../../../crates/logto-native/src/error.rs");
        let mut codes: Vec<String> = core
            .split("=> \"")
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(code, _)| code.to_string()))
            .filter(|code| code.contains('.'))
            .collect();
        assert!(codes.len() >= 15, "found the core's codes: {codes:?}");
        codes.extend(commands::SHELL_CODES.iter().map(|c| c.to_string()));
        let (en, ja) = language_blocks();
        for code in codes {
            let entry = format!("\"{code}\": {{ title: ");
            assert!(
                en.contains(&entry),
                "ui/i18n.js has no English words for {code}"
            );
            assert!(
                ja.contains(&entry),
                "ui/i18n.js has no Japanese words for {code}"
            );
        }
    }

    #[test]
    fn both_languages_have_the_same_strings() {
        let (en, ja) = language_blocks();
        let (en, ja) = (keys_of(en), keys_of(ja));
        assert!(en.len() > 40, "{en:?}");
        assert_eq!(
            en.symmetric_difference(&ja).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "keys in one language only"
        );
    }
}
