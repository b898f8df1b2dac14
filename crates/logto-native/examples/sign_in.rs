//! `cargo run -p logto-native --example sign_in`: signs in to Logto from a terminal with the
//! system browser, shows who is signed in, and exits. A session already in the keychain is shown
//! without the browser (and without the network); `--sign-out` ends it.
//!
//! It reads `LOGTO_ENDPOINT` and `LOGTO_APP_ID` (and the other `LOGTO_*` variables of
//! `Config::from_env`). It shares the keychain entry with Logto Desktop for the same tenant and
//! app id, and takes the same lock file, so the two never refresh over each other.
//!
//! Exit codes: 0 signed in (or signed out), 1 the sign-in or sign-out failed (the sentence is on
//! stderr), 2 wrong arguments or no configuration, 130 cancelled with Ctrl-C. Nothing secret is
//! ever printed: no token, and the sign-in link (it holds `state` and `nonce`) only when the
//! browser could not be opened, because then the person needs it.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};
use logto_native::{AuthError, AuthService, Config, SignInMethod, SignInWaiting, User};

const USAGE: &str = "\
Usage: sign_in [--amazon | --sign-out]

Signs in to Logto through your browser and shows who you are. A sign-in saved in your
keychain is shown without opening the browser.

  --amazon    go straight to Amazon (Logto's Amazon connector) instead of Logto's sign-in page
  --sign-out  sign out: revoke the saved sign-in at Logto and remove it from the keychain
  -h, --help  show this

Reads LOGTO_ENDPOINT (e.g. https://your-tenant.logto.app) and LOGTO_APP_ID (a Native app in
Logto's console, with the redirect URI http://127.0.0.1/callback).";

/// What the command line asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    SignIn(SignInMethod),
    SignOut,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Action>, String> {
    let mut action = Action::SignIn(SignInMethod::Logto);
    let mut chosen = false;
    for arg in args {
        let next = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--amazon" => Action::SignIn(SignInMethod::Amazon),
            "--sign-out" => Action::SignOut,
            other => return Err(format!("unknown argument {other:?}")),
        };
        if chosen && next != action {
            return Err("--amazon and --sign-out cannot be used together".into());
        }
        action = next;
        chosen = true;
    }
    Ok(Some(action))
}

#[tokio::main]
async fn main() -> ExitCode {
    let action = match parse_args(std::env::args().skip(1)) {
        Ok(Some(action)) => action,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("sign_in: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::from_env() {
        Ok(Some(config)) => config,
        Ok(None) => {
            eprintln!(
                "Set LOGTO_ENDPOINT (your Logto endpoint, e.g. https://your-tenant.logto.app) and \
                 LOGTO_APP_ID (the app id of a Native application in Logto's console), then run \
                 this again."
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Logto Desktop's keychain service: this example shares the desktop app's sign-in (a program
    // of your own keeps the default, its own entry).
    config.keychain_service = "logto-desktop".into();
    // The OS keychain, the system browser, and the lock Logto Desktop takes for the same entry.
    let service = match AuthService::on_this_system(config) {
        Ok(service) => service,
        Err(e) => return failed(&e),
    };
    match action {
        Action::SignIn(method) => sign_in(&service, method).await,
        Action::SignOut => sign_out(&service).await,
    }
}

async fn sign_in(service: &AuthService, method: SignInMethod) -> ExitCode {
    match service.restore().await {
        Ok(Some(user)) => {
            println!("Already signed in (the sign-in saved in your keychain; no browser needed).");
            show(&user);
            println!("Run with --sign-out to sign out.");
            return ExitCode::SUCCESS;
        }
        Ok(None) => {}
        // It has been removed; a new sign-in replaces it.
        Err(e @ AuthError::CorruptSession) => eprintln!("{e}"),
        Err(e) => return failed(&e),
    }

    println!("Opening your browser… (Ctrl-C cancels)");
    let countdown = OnceLock::new();
    let signing_in = service.sign_in(method, |waiting: &SignInWaiting| {
        if let Some(why) = &waiting.browser_error {
            // The link is what the person needs now; it is printed nowhere else.
            println!("Your browser could not be opened ({why}). Open this link to sign in:");
            println!("{}", waiting.url);
        }
        let _ = countdown.set(Countdown::start(waiting.deadline));
    });
    tokio::pin!(signing_in);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let mut tick = tokio::time::interval(Countdown::period());
    let result = loop {
        tokio::select! {
            result = &mut signing_in => break result,
            _ = tick.tick() => {
                if let Some(countdown) = countdown.get() {
                    countdown.update();
                }
            }
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                // The sign-in ends with `Cancelled` and closes its listener; before it has
                // started there is nothing to wait for.
                if !service.cancel_sign_in() {
                    break Err(AuthError::Cancelled);
                }
            }
        }
    };
    if let Some(countdown) = countdown.get() {
        countdown.finish();
    }
    settle().await;
    match result {
        Ok(user) => {
            println!("Signed in.");
            show(&user);
            ExitCode::SUCCESS
        }
        Err(e @ AuthError::Cancelled) if interrupted => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => failed(&e),
    }
}

async fn sign_out(service: &AuthService) -> ExitCode {
    match service.restore().await {
        Ok(Some(_)) | Ok(None) | Err(AuthError::CorruptSession) => {}
        Err(e) => return failed(&e),
    }
    let had_session = service.is_authenticated().await;
    match service.sign_out().await {
        Ok(report) => {
            if let Some(warning) = &report.warning {
                eprintln!("{warning}");
            }
            println!(
                "{}",
                if had_session {
                    "Signed out."
                } else {
                    "You were not signed in."
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

/// Who is signed in: the claims a person recognises, never a token.
fn show(user: &User) {
    println!(
        "  name:     {}",
        user.name.as_deref().unwrap_or("(no name)")
    );
    if let Some(username) = &user.username {
        println!("  username: {username}");
    }
    println!(
        "  email:    {}",
        user.email.as_deref().unwrap_or("(no email)")
    );
    println!("  user id:  {}", user.sub);
    if !user.identities.is_empty() {
        println!("  through:  {}", user.identities.join(", "));
    }
}

/// Lets the core finish what it started before `main` returns and the runtime drops every task:
/// a sign-in cancelled during the code exchange (Ctrl-C) revokes what the exchange brings in a
/// task of its own, after `sign_in` has returned. (The browser's tab needs no wait: `sign_in`
/// returns once the tab has its answer.) At most [`SETTLE`].
async fn settle() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let start = Instant::now();
    while metrics.num_alive_tasks() > 0 && start.elapsed() < SETTLE {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A revocation is one request (at most 20 s of timeout, but this example does not wait that long).
const SETTLE: Duration = Duration::from_secs(5);

fn failed(error: &AuthError) -> ExitCode {
    eprintln!("{error}");
    ExitCode::FAILURE
}

/// The time left until the sign-in's deadline, drawn by indicatif: a shrinking bar and a spinner
/// on a terminal; a plain line every few seconds when stderr is a file or a pipe (where indicatif
/// would otherwise draw nothing), so a log shows the wait too.
struct Countdown {
    bar: ProgressBar,
    deadline: u64,
}

impl Countdown {
    fn start(deadline: u64) -> Countdown {
        let total = deadline.saturating_sub(unix_now()).max(1);
        let tty = std::io::stderr().is_terminal();
        let left = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&m_ss(deadline.saturating_sub(unix_now())));
        };
        let (target, template) = if tty {
            (
                ProgressDrawTarget::stderr(),
                // 69 columns: one line on an 80-column terminal.
                "{spinner} Finish signing in in your browser: {left} left [{bar:20}]",
            )
        } else {
            (
                ProgressDrawTarget::term_like(Box::new(Lines::default())),
                "Finish signing in in your browser: {left} left",
            )
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("left", left)
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total), target).with_style(style);
        if tty {
            // Only the spinner moves between the updates of `update`.
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        let countdown = Countdown { bar, deadline };
        countdown.update();
        countdown
    }

    /// How often [`Self::update`] runs: every second on a terminal, every 5 s into a log.
    fn period() -> Duration {
        if std::io::stderr().is_terminal() {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        }
    }

    fn update(&self) {
        self.bar
            .set_position(self.deadline.saturating_sub(unix_now()));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A "terminal" that turns each frame indicatif draws into one line on stderr: no cursor moves,
/// no clearing, nothing but the text.
#[derive(Debug, Default)]
struct Lines {
    frame: Mutex<String>,
}

impl Lines {
    fn emit(&self) {
        let mut frame = self.frame.lock().unwrap_or_else(|p| p.into_inner());
        let line = frame.trim();
        if !line.is_empty() {
            eprintln!("{line}");
        }
        frame.clear();
    }
}

impl TermLike for Lines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)?;
        self.emit();
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut frame = self.frame.lock().unwrap_or_else(|p| p.into_inner());
        frame.push_str(&s.replace('\r', ""));
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        self.emit();
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `4:59`.
fn m_ss(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}
