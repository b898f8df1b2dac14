//! logto-native: sign in to Logto from a native program through the system browser, the way
//! RFC 8252 says a native app should, and stay signed in with the tokens in the OS keychain.
//! Everything about OpenID Connect, Logto, the loopback redirect and the keychain, and nothing
//! about any window: logto-desktop's Tauri shell adapts it, and a command-line program can use
//! it as it is.
//!
//! The public surface is what a program does with it:
//! - [`AuthService`], the front door: [`restore`](AuthService::restore),
//!   [`sign_in`](AuthService::sign_in), [`get_access_token`](AuthService::get_access_token),
//!   [`sign_out`](AuthService::sign_out) and the rest, each with an example; its status as a
//!   stream ([`Status`]); and its builder methods (`with_*`).
//! - [`Config`] and the [`config`] module: the endpoint and app id, from code, the environment or
//!   the settings file.
//! - [`AuthError`] and the [`error`] module: one error type, a sentence and a stable code.
//! - The seams a program may fill itself: [`TokenStore`] (with [`KeyringStore`] and
//!   [`MemoryStore`]) and [`Browser`] (with [`SystemBrowser`]); [`EntryLock`] and
//!   [`SignedOutMarks`] to share the entry safely; [`StoredSession`] to read what was stored.
//!
//! Everything else is private, so it can change. One sign-in walks the private files in this
//! order:
//! 1. `config.rs`: endpoint, app id, scopes, resources.
//! 2. `discovery.rs`: fetch and check the provider's metadata and keys.
//! 3. `authorize.rs`: PKCE S256, `state`, `nonce`, the authorization URL.
//! 4. `loopback.rs`: a one-time listener on `127.0.0.1:<port>`; `browser.rs` opens the system
//!    browser; `pages.rs` is what the browser sees when it comes back.
//! 5. `callback.rs`: path, `state`, `iss`, then `error` or `code`.
//! 6. `exchange.rs`: code for tokens, then `id_token.rs` validation (keys fetched again after a
//!    rotation), then userinfo. `http.rs` caps every answer.
//! 7. `store.rs`: the session, encoded by `session.rs`, into the OS keychain; `lock.rs` and
//!    `notice.rs` share that entry with other programs.
//! 8. `service.rs`: the front door, [`AuthService`]; the one-shot flow of a sign-in (steps 2 to
//!    6) is `flow.rs`, the signed-in state that keeps, refreshes and ends the session is
//!    `state.rs`, and what both publish is `status.rs`.
//! 9. `tokens.rs` and `refresh.rs`: access tokens per API resource and organization, refreshed
//!    one at a time shortly before they expire; `revoke.rs` ends them.
//!
//! Beside the walk, `tenant.rs` reads which social sign-in methods the tenant offers, so a
//! window offers "Continue with Amazon" only where it leads to Amazon, and `picture.rs` fetches
//! the user's picture. The crate's own test suites are under `tests/`.

#![deny(missing_docs)]
#![warn(unnameable_types)]

mod authorize;
mod browser;
mod callback;
pub mod config;
mod context;
mod discovery;
pub mod error;
mod exchange;
mod flow;
mod http;
mod id_token;
mod lock;
mod loopback;
mod notice;
mod pages;
mod picture;
mod refresh;
mod revoke;
mod service;
mod session;
mod state;
mod status;
mod store;
mod tenant;
mod tokens;

// The crate's own suites, apart from the walk of a sign-in above.
#[cfg(test)]
mod tests;

pub use authorize::SignInMethod;
pub use browser::Browser;
#[cfg(feature = "system-browser")]
pub use browser::SystemBrowser;
pub use config::Config;
pub use error::{AuthError, ProviderRefusal};
pub use lock::EntryLock;
pub use pages::Language;
pub use service::AuthService;
pub use session::User;
pub use status::{SignInWaiting, SignOutReport, SignedOutWhy, Status};
#[cfg(feature = "os-keychain")]
pub use store::KeyringStore;
pub use store::{MemoryStore, SignedOutMarks, StoredSession, TokenStore};
pub use tokens::{CachedToken, TokenInfo};

/// README.md's examples, compiled by `cargo test --doc` so that they keep up with the API. Only
/// under doctest (with the default features, which the example uses): the crate's own docs stay
/// the overview above.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "os-keychain", feature = "system-browser"))]
pub struct ReadmeDoctests;
