//! logto-native: sign in to Logto from a native program through the system browser, the way
//! RFC 8252 says a native app should, and stay signed in with the tokens in the OS keychain.
//! Everything about OpenID Connect, Logto, the loopback redirect and the keychain, and nothing
//! about any window: logto-desktop's Tauri shell adapts it, and a command-line program can use
//! it as it is.
//!
//! One sign-in walks the files in this order:
//! 1. [`config`]: endpoint, app id, scopes, resources.
//! 2. [`discovery`]: fetch and check the provider's metadata and keys.
//! 3. [`authorize`]: PKCE S256, `state`, `nonce`, the authorization URL.
//! 4. [`loopback`]: a one-time listener on `127.0.0.1:<port>`; [`browser`] opens the system
//!    browser; [`pages`] is what the browser sees when it comes back.
//! 5. [`callback`]: path, `state`, `iss`, then `error` or `code`.
//! 6. [`exchange`]: code for tokens, then [`id_token`] validation (keys fetched again after a
//!    rotation), then userinfo. [`http`] caps every answer.
//! 7. [`store`]: the session, encoded by [`session`], into the OS keychain.
//! 8. [`service`]: the front door, [`AuthService`]; the one-shot flow of a sign-in (steps 2 to 6)
//!    is `flow`, the signed-in state that keeps, refreshes and ends the session is `state`.
//! 9. [`tokens`] and [`refresh`]: access tokens per API resource and organization, refreshed
//!    one at a time shortly before they expire.
//!
//! Beside the walk, [`tenant`] reads which social sign-in methods the tenant offers, so the
//! window offers "Continue with Amazon" only where it leads to Amazon.
//!
//! [`error`] holds the one error type.

#![deny(missing_docs)]

pub mod authorize;
pub mod browser;
pub mod callback;
pub mod config;
mod context;
pub mod discovery;
pub mod error;
pub mod exchange;
mod flow;
pub mod http;
pub mod id_token;
pub mod lock;
pub mod loopback;
mod notice;
pub mod pages;
pub mod picture;
pub mod refresh;
pub mod revoke;
pub mod service;
pub mod session;
mod state;
pub mod status;
pub mod store;
pub mod tenant;
pub mod tokens;

// The crate's own suites, apart from the walk of a sign-in above.
#[cfg(test)]
mod tests;

pub use authorize::SignInMethod;
pub use browser::Browser;
#[cfg(feature = "system-browser")]
pub use browser::SystemBrowser;
pub use config::Config;
pub use error::AuthError;
pub use lock::EntryLock;
pub use service::AuthService;
pub use session::User;
pub use status::{SignInWaiting, SignOutReport, SignedOutWhy, Status};
#[cfg(feature = "os-keychain")]
pub use store::KeyringStore;
pub use store::{MemoryStore, TokenStore};
pub use tokens::{CachedToken, TokenInfo};

/// README.md's examples, compiled by `cargo test --doc` so that they keep up with the API. Only
/// under doctest (with the default features, which the example uses): the crate's own docs stay
/// the overview above.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "os-keychain", feature = "system-browser"))]
pub struct ReadmeDoctests;
