//! Tauri's context for the bare window.
fn main() {
    tauri_build::build()
}
