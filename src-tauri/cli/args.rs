//! The command line's definition, and nothing else: what `logto-desktop` accepts, its help and its
//! exit codes, with no code that runs a command. It depends on clap alone (and clap_complete's
//! list of shells), so that the man page (`packaging/man`) is made from this very file.
//!
//! A placeholder for the split of the program into `logto-desktop` and `logto-desktop-window`:
//! a copy of the definitions in `src-tauri/src/cli.rs` as they are, which the command-line
//! program's own `args.rs` replaces. What reads it uses [`command`] only.

use clap::{CommandFactory, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  something else failed (no keychain, no network, ...): see the message on stderr
  2  the command line was not understood
  3  not signed in: open Logto Desktop (run `logto-desktop`) and sign in
  4  Logto refused: the sign-in has ended (sign in again), or Logto will not issue that token";

/// Sign in to Logto through the system browser, and use that sign-in from scripts.
///
/// Without a command, opens the window.
#[derive(Debug, Parser)]
#[command(
    name = "logto-desktop",
    version,
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The older spelling of `status --json` (exits 0 when signed out).
    #[arg(long, hide = true)]
    pub status: bool,

    /// WebKitWebDriver starts the browser it drives (this app, under test) with `--automation`;
    /// the window has nothing to do with it.
    #[arg(long, hide = true)]
    pub automation: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show who is signed in (exit code 3 when nobody is). No network.
    #[command(after_help = EXIT_CODES)]
    Status {
        /// Print JSON: {"state":"signed-in","user":{...}}, {"state":"signed-out"} or
        /// {"state":"error","code":...,"message":...}.
        #[arg(long)]
        json: bool,
    },
    /// Print an access token for Logto's default audience, an API resource or an organization.
    ///
    /// Only the token goes to stdout, so `$(logto-desktop token --resource URL)` is the token.
    /// A fresh cached token is printed at once; otherwise it is refreshed, one program at a time
    /// (the window included), and the rotated refresh token is kept in the keychain.
    #[command(after_help = EXIT_CODES)]
    Token {
        /// The API resource indicator (RFC 8707), as registered in Logto's console.
        #[arg(long, value_name = "URL")]
        resource: Option<String>,
        /// An organization id: prints an organization token.
        #[arg(long, value_name = "ID")]
        organization: Option<String>,
        /// Print the token's non-secret parts as JSON instead of the token: resource,
        /// organization_id, expires_at (Unix seconds), scope and, for a JWT, its claims.
        #[arg(long)]
        json: bool,
    },
    /// Sign out: revoke the sign-in at Logto and remove it from the keychain.
    ///
    /// Like the window's Sign out, this also opens Logto's end-session page in the browser
    /// (unless LOGTO_END_BROWSER_SESSION=false). The window, if open, notices at its next token
    /// request.
    #[command(after_help = EXIT_CODES)]
    SignOut,
    /// Print a shell completion script (for example: `logto-desktop completions bash`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

/// The whole command line, for help, completions and the man page.
pub fn command() -> clap::Command {
    Cli::command()
}
