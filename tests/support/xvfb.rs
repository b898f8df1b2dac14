//! An X display of its own for each app window under test: Xvfb picks a free display number and
//! reports it (`-displayfd`). One window per display means no window manager is needed to know
//! which window has the keyboard, screenshots of one window never catch another test's, and
//! tests running side by side cannot type into each other's windows.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub struct Xvfb {
    /// `:N`
    pub display: String,
    child: Child,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb (apt-get install xvfb)");
        let stdout = child.stdout.take().expect("Xvfb's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if !line.trim().is_empty() => Xvfb {
                display: format!(":{}", line.trim()),
                child,
            },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Xvfb did not report a display");
            }
        }
    }

    /// Runs an X client (xdotool, import) on this display.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .env_remove("XAUTHORITY")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }

    /// The visible top-level window titled `title`, waiting for it to be mapped.
    pub async fn window(&self, title: &str) -> String {
        let pattern = format!("^{title}$");
        for _ in 0..100 {
            let out = self.run("xdotool", &["search", "--onlyvisible", "--name", &pattern]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(id) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no window titled {title:?} on {}", self.display);
    }

    /// Presses keys the way a person does (XTEST), into `window` given the keyboard focus.
    pub fn key(&self, window: &str, keys: &str) {
        let focus = self.run("xdotool", &["windowfocus", "--sync", window]);
        assert!(focus.status.success(), "xdotool windowfocus: {focus:?}");
        let press = self.run("xdotool", &["key", "--clearmodifiers", keys]);
        assert!(press.status.success(), "xdotool key {keys}: {press:?}");
    }

    /// A PNG of one window, as it is on the screen.
    pub fn screenshot(&self, window: &str, path: &Path) {
        let path = path.to_string_lossy();
        let out = self.run("import", &["-window", window, &path]);
        assert!(out.status.success(), "import -window {window}: {out:?}");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
