//! logto-desktop: sign in to Logto through the system browser, the way RFC 8252 says a native
//! app should, and stay signed in with the tokens in the OS keychain.
//!
//! Layout:
//! - [`auth`]: the sign-in core, the `logto-native` crate (crates/logto-native): OIDC, Logto,
//!   loopback, keychain. Knows no Tauri.
//! - [`shell`]: the Tauri side: the state the window sees, commands, events, the app menu.
//!
//! The command line is its own program (src-tauri/cli), on the core alone.
//!
//! `run()` is what the window program calls; `build_app()` takes any builder so tests can pass Tauri's
//! mock builder.

pub use logto_native as auth;
pub mod shell;

pub use shell::run;

#[cfg(test)]
mod tests {
    /// Cargo.toml promises MIT or Apache-2.0; the texts are at the top level, where people and
    /// packaging tools look for them.
    #[test]
    fn the_licences_cargo_toml_names_are_at_the_top_level() {
        let manifest = include_str!("../../Cargo.toml");
        assert!(
            manifest.contains("\nlicense = \"MIT OR Apache-2.0\"\n"),
            "the licence expression changed: update the files and this test"
        );
        let mit = include_str!("../../LICENSE-MIT");
        assert!(mit.starts_with("MIT License") && mit.contains("Permission is hereby granted"));
        let apache = include_str!("../../LICENSE-APACHE");
        assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
        assert!(apache.contains("END OF TERMS AND CONDITIONS"));
    }
}
