// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if std::env::args().skip(1).any(|a| a == "--status") {
        std::process::exit(logto_desktop::cli::status());
    }
    logto_desktop::run();
}
