//! logto-desktop: sign in to Logto through the system browser, the way RFC 8252 says a native
//! app should, and stay signed in with the tokens in the OS keychain.
//!
//! Layout:
//! - [`auth`]: the sign-in core (OIDC, Logto, loopback, keychain). Knows no Tauri.
//! - [`shell`]: the Tauri side: the state the window sees, commands, events, the app menu.
//!
//! `run()` is what the binary calls; `build_app()` takes any builder so tests can pass Tauri's
//! mock builder.

pub mod auth;
pub mod cli;
pub mod shell;

pub use shell::run;
