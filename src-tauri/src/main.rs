//! `logto-desktop-window`: the window. People start it through `logto-desktop` (the menu entry,
//! the packages, a terminal), which also serves the command line without loading any of this.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    logto_desktop::run();
}
