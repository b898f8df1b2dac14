//! Integration and end-to-end tests, compiled as one binary.
//!
//! They run the real parts: the Logto-faithful provider from `tests/idp` (Node), Debian's
//! Chromium through chromedriver as the system browser, GNOME Keyring's Secret Service as the
//! keychain, and (in `app_window`) the real app binary under Xvfb through tauri-driver.
//! `scripts/test.sh` provides Xvfb, D-Bus and an unlocked keyring; run them through it.
//!
//! - `support`: starting and stopping the provider, the browser, the window driver; log capture.
//! - `core_flow`: the sign-in core against the provider: sign-in, Amazon, restore, sign-out,
//!   cancel, timeout, forged callbacks, refusals, RS256 tenants, a corrupt keychain entry, no
//!   grant left behind and no entry deleted that is not the app's (with the provider's request log).
//! - `token_flow`: refresh on expiry, single-flight refresh across resources, a stolen refresh
//!   token, a failing or unreachable provider, a restart mid-session, organization tokens, signing
//!   keys rotated at the provider, 8 and 16 KB ID tokens.
//! - `app_window`: the app binary, driven through its window (what it may call, what it receives).
//! - `example`: the core's terminal example (`cargo run -p logto-native --example sign_in`) as a
//!   process: sign-in with its countdown, restore, sign-out, Ctrl-C, no browser, bad settings.
//! - `cli`: `logto-desktop status | token | sign-out | completions` as scripts run them: stdout,
//!   stderr, exit codes, what Logto is told; twenty `token` processes and the window refreshing
//!   one sign-in at once.
//! - `package`: the `.deb` checked by lintian and installed with apt-get, its AppStream file, menu
//!   entry and man page, the installed app's first screen, the purge; the `.rpm`; the icons made
//!   from their one source image.
//! - `a11y`: axe-core on every state of the page in Chromium, English and Japanese, light and dark.

mod support;

mod a11y;
mod app_window;
mod cli;
mod core_flow;
mod example;
mod package;
mod token_flow;
