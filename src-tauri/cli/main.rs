//! `logto-desktop`: the command line, built on the sign-in core alone (no Tauri, GTK or WebKit),
//! so that a script's `logto-desktop token` costs about what reading the keychain costs. With no
//! command it starts the window program installed beside it, `logto-desktop-window`, so the menu
//! entry, the packages, `make run` and a terminal all open the window with the same command.
//!
//! A console program on Windows too (no `windows_subsystem` here): what the commands print
//! reaches the terminal.

mod args;
mod commands;
mod stop;
mod window;

fn main() {
    std::process::exit(commands::main());
}
