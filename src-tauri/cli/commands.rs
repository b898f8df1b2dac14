//! What the commands do: `status`, `token` (an access token on stdout, and nothing else),
//! `sign-out` and `completions`, like `gh auth token`, for the scripts of the person signed in
//! through the window. `--status` is the older spelling of `status --json`, kept as it was.
//!
//! The commands open no window and share the window's keychain entry through the core built the
//! way the window builds it ([`service`]), so a refresh here takes the same cross-process lock as
//! the window's and never races it. They print no refresh token or ID token, and write nothing but
//! the keychain entry (the lock file holds nothing).

use std::io::Write;

use clap::Parser;
use logto_native::{AuthError, AuthService, Config, Language, User};
use serde_json::json;

use crate::args::{self, exit, Cli, Command};
use crate::{stop, window};

/// Parses the command line and runs a command, or starts the window when none was asked for;
/// returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; mistakes to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    if cli.status {
        return block_on(status());
    }
    let Some(command) = cli.command else {
        // Everything after the program's name goes to the window as it came (WebKitWebDriver's
        // `--automation` among it).
        return window::open(std::env::args_os().skip(1));
    };
    if let Command::Completions { shell } = command {
        // Made in memory, then written with errors handled: clap_complete panics on a write
        // error, and with `panic = "abort"` a closed pipe would abort the process.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut args::command(), "logto-desktop", &mut script);
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&script).and_then(|_| out.flush()).is_ok();
        return if written { exit::OK } else { exit::FAILED };
    }
    init_logging();
    block_on(async {
        match command {
            Command::Status { json } => status_command(json).await,
            Command::Token {
                resource,
                organization,
                json,
            } => token(resource.as_deref(), organization.as_deref(), json).await,
            Command::SignOut => sign_out().await,
            Command::Completions { .. } => exit::OK,
        }
    })
}

/// Runs a command on a runtime of its own (one thread: a command does one thing at a time).
fn block_on(command: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(command),
        Err(e) => {
            eprintln!("logto-desktop: could not start ({e}).");
            exit::FAILED
        }
    }
}

/// What `status --json` and `--status` print for a session read from the keychain.
fn state_json(user: Option<User>) -> serde_json::Value {
    match user {
        // The window's view of the user: no `sub`, and the picture only as the window fetched it.
        Some(user) => json!({ "state": "signed-in", "user": {
            "name": user.name,
            "username": user.username,
            "email": user.email,
            "picture": null,
            "identities": user.identities,
        } }),
        None => json!({ "state": "signed-out" }),
    }
}

/// Logs on stderr at `warn` unless `RUST_LOG` asks for more (levels per target, as the window
/// reads it), so that a script sees only what needs a person's attention.
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.trim().parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // No colour codes in what a script captures.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .try_init();
}

/// Why a command did not do its work.
enum Failure {
    /// No endpoint and app id anywhere: the window's first-run screen has not been through.
    NotSetUp,
    Auth(AuthError),
    /// A stop signal ended the command; the exit code it gets.
    Stopped(i32),
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Auth(e)
    }
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::NotSetUp => AuthError::NotSignedIn.code(),
            Failure::Auth(e) => e.code(),
            Failure::Stopped(_) => "stopped",
        }
    }

    /// One sentence: what happened and what to do.
    fn message(&self) -> String {
        match self {
            Failure::NotSetUp => "You are not signed in: Logto Desktop is not set up yet. Open it (run `logto-desktop`) to connect it to Logto and sign in.".into(),
            Failure::Auth(AuthError::NotSignedIn) => {
                "You are not signed in. Open Logto Desktop (run `logto-desktop`) and sign in.".into()
            }
            Failure::Auth(e) => e.to_string(),
            Failure::Stopped(_) => "Stopped.".into(),
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Failure::Stopped(code) => *code,
            Failure::NotSetUp => exit::NOT_SIGNED_IN,
            Failure::Auth(e) => match e {
                // The entry could not be read and was removed: nobody is signed in now.
                AuthError::NotSignedIn | AuthError::CorruptSession => exit::NOT_SIGNED_IN,
                AuthError::SessionEnded(_) | AuthError::GrantEnded(_) | AuthError::Provider(_) => {
                    exit::REFUSED
                }
                _ => exit::FAILED,
            },
        }
    }

    /// Says so on stderr, and returns the exit code.
    fn report(&self) -> i32 {
        // Stopped on request: nothing to explain.
        if !matches!(self, Failure::Stopped(_)) {
            eprintln!("logto-desktop: {}", self.message());
        }
        self.exit_code()
    }
}

/// The core, built as the window builds it: the same configuration (the environment, else the
/// config file), keychain entry, entry lock and tenant cache.
fn service() -> Result<AuthService, Failure> {
    let (config, _) = Config::resolve_from_system()?.ok_or(Failure::NotSetUp)?;
    Ok(make_service(config)?)
}

fn make_service(mut config: Config) -> Result<AuthService, AuthError> {
    // The window's entry (`shell::KEYCHAIN_SERVICE` there): one sign-in for both programs.
    config.keychain_service = "logto-desktop".to_string();
    if config.ui_locales.is_none() {
        config.ui_locales = Some(Language::default().tag().to_string());
    }
    AuthService::on_this_system(config)
}

/// Writes `text` and a newline to stdout; false when stdout is gone (a closed pipe).
fn print(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|_| out.flush()).is_ok()
}

fn printed(text: &str, code: i32) -> i32 {
    if print(text) {
        code
    } else {
        exit::FAILED
    }
}

/// `logto-desktop --status`: prints the stored session's user as JSON and exits, with no window,
/// no network and no change to the keychain. Exits 0 when signed out, 1 on an error, as it
/// always has.
pub async fn status() -> i32 {
    let result = async {
        // The same configuration the window uses: the environment, else the config file.
        let (config, _) = Config::resolve_from_system()?.ok_or_else(|| {
            AuthError::Config("no Logto endpoint and app id are configured".into())
        })?;
        let service = make_service(config)?;
        // Read-only: a status command changes nothing, not even an entry it cannot read.
        service.peek().await
    }
    .await;
    let (output, code) = match result {
        Ok(user) => (state_json(user), exit::OK),
        Err(e) => (
            json!({ "state": "error", "code": e.code(), "message": e.to_string() }),
            exit::FAILED,
        ),
    };
    printed(&output.to_string(), code)
}

/// `status [--json]`: who is signed in, read-only and with no network (like `--status`), exiting
/// 3 when nobody is.
async fn status_command(as_json: bool) -> i32 {
    let result = match service() {
        Ok(service) => service.peek().await.map_err(Failure::from),
        Err(failure) => match failure {
            Failure::NotSetUp => Ok(None),
            other => Err(other),
        },
    };
    match result {
        Ok(Some(user)) => {
            let text = if as_json {
                state_json(Some(user)).to_string()
            } else {
                let who = match (&user.name, &user.email, &user.username) {
                    (Some(name), Some(email), _) => format!("{name} <{email}>"),
                    (Some(name), None, _) => name.clone(),
                    (None, Some(email), _) => email.clone(),
                    (None, None, Some(username)) => username.clone(),
                    (None, None, None) => user.sub.clone(),
                };
                format!("Signed in as {who}.")
            };
            printed(&text, exit::OK)
        }
        Ok(None) => {
            let text = if as_json {
                state_json(None).to_string()
            } else {
                "Not signed in. Open Logto Desktop (run `logto-desktop`) to sign in.".to_string()
            };
            printed(&text, exit::NOT_SIGNED_IN)
        }
        Err(failure) => {
            if as_json {
                let text = json!({ "state": "error", "code": failure.code(), "message": failure.message() });
                print(&text.to_string());
            }
            failure.report()
        }
    }
}

/// `token [--resource R] [--organization O] [--json]`.
async fn token(resource: Option<&str>, organization: Option<&str>, as_json: bool) -> i32 {
    let result = async {
        let service = service()?;
        // As a start of the window: the entry, with no network.
        service.restore().await?.ok_or(AuthError::NotSignedIn)?;
        let work = async {
            let token = service.get_access_token(resource, organization).await;
            if let Err(AuthError::Keychain(_)) = &token {
                keep_the_rotated_token(&service).await;
            }
            token
        };
        match stop::deferred(&service, work).await {
            Ok(token) => Ok::<_, Failure>(token?),
            Err(code) => Err(Failure::Stopped(code)),
        }
    }
    .await;
    match result {
        Ok(token) if as_json => {
            let info = token.info(
                resource.map(str::to_string),
                organization.map(str::to_string),
            );
            match serde_json::to_string(&info) {
                Ok(text) => printed(&text, exit::OK),
                Err(e) => {
                    eprintln!(
                        "logto-desktop: the token's claims could not be written as JSON ({e})."
                    );
                    exit::FAILED
                }
            }
        }
        Ok(token) => printed(token.secret(), exit::OK),
        Err(failure) => {
            if as_json && !matches!(failure, Failure::Stopped(_)) {
                let text =
                    json!({ "error": { "code": failure.code(), "message": failure.message() } });
                print(&text.to_string());
            }
            failure.report()
        }
    }
}

/// A refresh whose rotated token the keychain would not take: the window would write it at its
/// next request, but this process is about to end, and the entry holds a token Logto has used
/// up. Try a few more times over a few seconds (a keychain being unlocked, a D-Bus hiccup).
async fn keep_the_rotated_token(service: &AuthService) {
    for attempt in 0..5 {
        match service.flush().await {
            Ok(()) => return,
            Err(e) if attempt == 4 => eprintln!(
                "logto-desktop: Logto's new refresh token could not be saved ({e}); the sign-in will end at its next use."
            ),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(800)).await,
        }
    }
}

/// `sign-out`: what the window's Sign out does.
async fn sign_out() -> i32 {
    let result = async {
        let service = service()?;
        // Not signed in, or an entry that is not this version's to remove: nothing is touched.
        service.restore().await?.ok_or(AuthError::NotSignedIn)?;
        Ok::<_, Failure>(service.sign_out().await?)
    }
    .await;
    match result {
        Ok(report) => match report.warning {
            Some(warning) => {
                eprintln!("logto-desktop: {warning}");
                exit::FAILED
            }
            None => {
                eprintln!("Signed out.");
                exit::OK
            }
        },
        Err(failure) => failure.report(),
    }
}
