//! `make bench`, the window's part (issue 9): start-up to a useful window, memory at idle and
//! the binary's size, the app against a bare Tauri 2 window (`benches/bare`) built with the same
//! profile and launched the same way, alternating, in one run.
//!
//! - Start-up: from spawning the process to the page saying it drew its first screen (both pages
//!   report it two animation frames after their first render; the app logs which screen it was,
//!   and the app starts with a stored session, so that screen must be the signed-in one).
//! - Memory: two seconds later, the PSS of the process and every process it started (WebKit's
//!   web and network processes).
//! - Size: the two binaries' bytes on disk.
//!
//! `--app PATH` and `--bare PATH` name the binaries (by default this build's app and the
//! bare window beside it); `--smoke` launches each once (for `make test`), `--rounds N` N times
//! (10 by default); `--json PATH` writes the comparisons for the chart the core benchmark draws.

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logto_desktop::auth::{AuthService, Config, KeyringStore, SignInMethod, TokenStore};
use serde_json::{json, Value};

mod common;
// The provider launcher calls `crate::support::http()`.
use common::support;

use common::{arg, machine, BenchBrowser, Comparison, Goal, Samples, Scripted, Unit};

/// What both pages log once their first screen is on the window.
const DRAWN: &str = "first screen drawn: ";

/// A launched window and the lines of its stderr, each with when it arrived.
struct Launched {
    child: Child,
    started: Instant,
    lines: Receiver<(Instant, String)>,
}

fn launch(bin: &Path, env: &[(String, String)]) -> Launched {
    let mut command = Command::new(bin);
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("launching {}: {e}", bin.display()));
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    Launched {
        child,
        started,
        lines,
    }
}

impl Launched {
    /// How long the first screen took, and which screen it was.
    fn first_screen(&self, bin: &Path) -> (Duration, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok((at, line)) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Some(i) = line.find(DRAWN) {
                // The name alone, without any colour codes after it.
                let screen = line[i + DRAWN.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                return (at - self.started, screen);
            }
            seen.push(line);
        }
        panic!(
            "{} drew no first screen within 60 s; it said:\n{}",
            bin.display(),
            seen.join("\n")
        );
    }

    /// Each process of the tree: its name, PSS, and the anonymous and file-backed parts, in MB.
    fn breakdown(&self) -> Vec<String> {
        tree(self.child.id())
            .iter()
            .map(|pid| {
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                let field = |key: &str| rollup(*pid, key) as f64 * 1024.0 / 1e6;
                format!(
                    "{:<16} {:>7.1} MB (anonymous {:.1}, files {:.1})",
                    name.trim(),
                    field("Pss:"),
                    field("Pss_Anon:"),
                    field("Pss_File:")
                )
            })
            .collect()
    }

    /// The PSS of the process and all its descendants, in MB.
    fn pss_mb(&self) -> f64 {
        let kib: u64 = tree(self.child.id())
            .iter()
            .map(|pid| rollup(*pid, "Pss:"))
            .sum();
        kib as f64 * 1024.0 / 1e6
    }

    fn stop(mut self) {
        let family = tree(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        // WebKit's processes leave with their parent; make sure, so no round sees the last.
        for pid in family.into_iter().skip(1) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

/// `root` and every process below it.
fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The name may hold spaces and parentheses; the fields after the last ')' do not.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut family = vec![root];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    family
}

/// One line of the process's `smaps_rollup`, in KiB.
fn rollup(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn size_mb(bin: &Path) -> f64 {
    std::fs::metadata(bin)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let rounds = arg(&args, "--rounds")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if smoke { 1 } else { 10 });
    let settle = Duration::from_millis(if smoke { 300 } else { 2000 });
    let app = arg(&args, "--app")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_logto-desktop-window")));
    let bare = arg(&args, "--bare")
        .map(PathBuf::from)
        .unwrap_or_else(|| app.with_file_name("bare-window"));
    assert!(
        bare.is_file(),
        "no bare window at {}: build it with `cargo build -p bare-window` (make bench does)",
        bare.display()
    );

    // A stored session, as a person who signed in yesterday has: the app restores it from the
    // keychain at start-up, with no network.
    let idp = common::idp::Idp::start();
    let scripted = Arc::new(Scripted::start());
    let mut config = Config::new(&idp.info.endpoint, &idp.info.app_id).expect("config");
    config.end_browser_session = false;
    let store = Arc::new(KeyringStore::new(
        KEYCHAIN_SERVICE,
        &config.issuer(),
        &config.app_id,
    ));
    let service =
        AuthService::new(config, store.clone(), BenchBrowser::new(&scripted)).expect("service");
    service
        .sign_in(SignInMethod::Logto, |_| {})
        .await
        .expect("signed in, for the app to restore");

    let sandbox = tempfile::tempdir().expect("a sandbox");
    let dir = |name: &str| sandbox.path().join(name).display().to_string();
    let env: Vec<(String, String)> = [
        ("LOGTO_ENDPOINT", idp.info.endpoint.clone()),
        ("LOGTO_APP_ID", idp.info.app_id.clone()),
        ("XDG_CONFIG_HOME", dir("config")),
        ("XDG_DATA_HOME", dir("data")),
        ("XDG_CACHE_HOME", dir("cache")),
        ("RUST_LOG", "info".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // One untimed launch each: the libraries are in the page cache for both from here on.
    for bin in [&app, &bare] {
        let warm = launch(bin, &env);
        warm.first_screen(bin);
        warm.stop();
    }
    let mut app_start = Samples::new("the app, to the restored signed-in screen");
    let mut bare_start = Samples::new("a bare Tauri 2 window, to its text");
    let mut app_memory = Samples::of("the app, signed in", Unit::Mb);
    let mut bare_memory = Samples::of("a bare Tauri 2 window", Unit::Mb);
    let mut screens = Vec::new();
    let mut breakdowns = Vec::new();
    for round in 0..rounds {
        for (bin, start, memory) in [
            (&app, &mut app_start, &mut app_memory),
            (&bare, &mut bare_start, &mut bare_memory),
        ] {
            let launched = launch(bin, &env);
            let (took, screen) = launched.first_screen(bin);
            start.push(took);
            if bin == &app {
                screens.push(screen);
            }
            std::thread::sleep(settle);
            memory.values.push(launched.pss_mb());
            if round + 1 == rounds {
                breakdowns.push((bin.clone(), launched.breakdown()));
            }
            launched.stop();
        }
    }
    let _ = store.delete();

    let signed_in_first = screens.iter().filter(|s| *s == "signed-in").count();
    // Judged on the p10s: in about half of its launches here, the bare window's WebKit waits
    // half a second between creating the webview and starting the page load (the app's launches
    // never did), which makes the bare median flip between two modes from run to run.
    let start_up = Comparison {
        title: "3. Start-up to a useful window",
        measure: app_start,
        baseline: bare_start,
        goal: Goal::FastRatio(1.05),
    };
    let memory = Comparison {
        title: "4. Memory at idle (PSS, with WebKit's processes)",
        measure: app_memory,
        baseline: bare_memory,
        goal: Goal::Ratio(1.05),
    };
    let mut app_size = Samples::of("the app", Unit::Mb);
    app_size.values.push(size_mb(&app));
    let mut bare_size = Samples::of("a bare Tauri 2 window", Unit::Mb);
    bare_size.values.push(size_mb(&bare));
    let size = Comparison {
        title: "5. Binary size, stripped",
        measure: app_size,
        baseline: bare_size,
        goal: Goal::Plus(3.0),
    };

    let machine = machine();
    println!("\nlogto-desktop window benchmarks, {rounds} launches each, on {machine}");
    println!(
        "  the app:  {}\n  the bare: {}",
        app.display(),
        bare.display()
    );
    for c in [&start_up, &memory, &size] {
        c.print();
    }
    println!("\nWhere the memory is (PSS, the last launch of each):");
    for (bin, lines) in &breakdowns {
        println!("  {}", bin.display());
        for line in lines {
            println!("    {line}");
        }
    }
    println!(
        "\nThe first screen the app drew was the signed-in one in {signed_in_first} of {} launches{}",
        screens.len(),
        if signed_in_first == screens.len() {
            ""
        } else {
            ": MISSED"
        }
    );
    if let Some(path) = arg(&args, "--json") {
        let mut start_json = start_up.json();
        start_json["first_screens"] = json!(screens);
        let results: Value = json!({
            "machine": machine,
            "rounds": rounds,
            "comparisons": [start_json, memory.json(), size.json()],
        });
        std::fs::write(&path, serde_json::to_string_pretty(&results).expect("JSON"))
            .expect("writing the results");
    }
    if smoke {
        // The measure is of the restored session: a launch that showed anything else measured
        // something else.
        assert_eq!(
            signed_in_first,
            screens.len(),
            "the app's first screen was not the signed-in one: {screens:?}"
        );
        println!("bench smoke: 3 passed, 0 failed");
    }
}
