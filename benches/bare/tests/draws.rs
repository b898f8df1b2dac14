//! The window benchmark's baseline must work as the app's page does: the bare window starts and
//! its page reports its first drawn screen. (This test also has `cargo test --workspace` build the
//! bare window with the app's own feature set, so the benchmark's smoke run finds it.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_bare_window_reports_its_first_screen() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bare-window"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bare window starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let drawn = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("first screen drawn: hello") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(drawn, "no first screen within 60 s; it said: {seen:#?}");
}
