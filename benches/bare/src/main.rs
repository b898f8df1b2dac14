//! A bare Tauri 2 window, launched beside the app by the start-up and memory benchmarks. Its page
//! reports its first drawn frame through one command, as the app's page does, so both are timed
//! the same way: from process start to the line `first screen drawn` on stderr.

#[tauri::command]
fn drawn() {
    eprintln!("first screen drawn: hello");
}

fn main() {
    let app = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![drawn])
        .run(tauri::generate_context!());
    if let Err(e) = app {
        eprintln!("the bare window could not start: {e}");
        std::process::exit(1);
    }
}
