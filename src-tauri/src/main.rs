// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    match logto_desktop::cli::main() {
        logto_desktop::cli::Run::Window => logto_desktop::run(),
        logto_desktop::cli::Run::Exit(code) => std::process::exit(code),
    }
}
