//! `make bench`, the command line's part (issue 17): `logto-desktop token` (a cached access token:
//! no network, it prints what the keychain holds) and `logto-desktop status`, from spawn to exit
//! and at their peak memory, against `secret-tool lookup` of the same keychain entry, the floor of
//! any program that reads it. The programs alternate run by run (token, secret-tool, status,
//! secret-tool, `--version`, secret-tool), in one run, in the same D-Bus session, GNOME Keyring
//! and environment. `logto-desktop --version` is the floor of the program's own start-up.
//!
//! `--cli PATH` names the command line (by default the debug build beside this build's window
//! program, which `cargo test --workspace` makes); `--smoke` runs each once (for `make test`),
//! `--rounds N` N times (20 by default); `--json PATH` writes the comparisons for the chart the
//! core benchmark draws.
//!
//! The programs are started by a small launcher (this binary again, with `--launcher`), not by
//! the benchmark: the kernel counts in a child's peak memory (`ru_maxrss`) the memory it had
//! before its exec, which is its parent's (vfork, as `posix_spawn` does) or a copy of the
//! parent's private pages (fork), so a child of this process (a tokio runtime, a signed-in core)
//! would report this process's memory. The launcher forks, and what an empty program (`true`)
//! shows through it is printed as the floor of the measure.

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logto_desktop::auth::{AuthService, Config, KeyringStore, SignInMethod, TokenStore};
use serde_json::{json, Value};

mod common;
// The provider launcher calls `crate::support::http()`.
use common::support;

use common::{arg, machine, BenchBrowser, Comparison, Goal, Samples, Scripted, Unit};

/// The argument that makes this binary the launcher.
const LAUNCHER: &str = "--launcher";

/// The keychain service the core files its entries under (keyring's `service` attribute).
const SERVICE: &str = "logto-desktop";

/// One program's run, as the launcher measured it.
struct Run {
    wall: Duration,
    peak_kib: u64,
    code: i32,
    stdout: String,
}

/// The launcher, started once: it runs each command line it is sent and answers with one line.
struct Launcher {
    io: (ChildStdin, BufReader<ChildStdout>),
    child: Child,
}

impl Launcher {
    fn start(env: &[(String, String)]) -> Launcher {
        let exe = std::env::current_exe().expect("this benchmark's own path");
        let mut child = Command::new(exe)
            .arg(LAUNCHER)
            // The command line's default logging (warnings only), whatever this shell has.
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the launcher");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Launcher {
            io: (stdin, stdout),
            child,
        }
    }

    fn run(&mut self, argv: &[String]) -> Run {
        writeln!(self.io.0, "{}", json!(argv)).expect("to the launcher");
        let mut line = String::new();
        self.io.1.read_line(&mut line).expect("from the launcher");
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the launcher said {line:?}: {e}"));
        let number = |key: &str| answer[key].as_u64().unwrap_or_default();
        Run {
            wall: Duration::from_nanos(number("ns")),
            peak_kib: number("maxrss_kib"),
            code: answer["code"].as_i64().unwrap_or(-1) as i32,
            stdout: answer["stdout"].as_str().unwrap_or_default().to_string(),
        }
    }

    fn stop(mut self) {
        drop(self.io);
        let _ = self.child.wait();
    }
}

/// The launcher's side: reads command lines (JSON arrays), runs each with its output captured,
/// and writes how long it took from spawn to exit and its peak memory.
fn launcher() {
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let argv: Vec<String> = serde_json::from_str(&line).expect("a JSON array of arguments");
        let started = Instant::now();
        let (code, usage, stdout) = run_to_exit(&argv);
        let took = started.elapsed();
        let answer = json!({
            "ns": took.as_nanos() as u64,
            // KiB on Linux.
            "maxrss_kib": usage.ru_maxrss,
            "code": code,
            "stdout": String::from_utf8_lossy(&stdout),
        });
        if writeln!(out, "{answer}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}

/// Spawns `argv`, reads its stdout to the end and reaps it with `wait4` for its resource usage
/// (std's `wait` does not give it). Its stderr is this process's, so a complaint shows.
#[allow(clippy::zombie_processes)] // reaped by wait4 below
fn run_to_exit(argv: &[String]) -> (i32, libc::rusage, Vec<u8>) {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // A fork, not std's vfork (`posix_spawn`): the memory a vforked child counts before its exec
    // is all of the launcher's peak (its mapped binary included); a forked one's is only the
    // private pages it copied.
    // SAFETY: the closure does nothing, which is safe between fork and exec.
    unsafe {
        command.pre_exec(|| Ok(()));
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", argv[0]));
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("the program's output");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is this process's child, not yet reaped; both pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            panic!("waiting for {}: {error}", argv[0]);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (code, usage, stdout)
}

/// The attributes of the keychain item of `account` under [`SERVICE`], as `secret-tool search`
/// finds it (never the secret it also prints).
fn entry_attributes(env: &[(String, String)], account: &str) -> BTreeMap<String, String> {
    let output = Command::new("secret-tool")
        .args(["search", "--all", "service", SERVICE, "username", account])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("secret-tool (libsecret-tools; `make test` installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // One `[path]` line per item found on stdout, with its label and dates; the attributes come
    // on stderr.
    let items = stdout.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(
        items, 1,
        "secret-tool found {items} keychain items of service {SERVICE} for {account}, not one"
    );
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(stdout.lines())
        .filter_map(|line| line.strip_prefix("attribute.")?.split_once(" = "))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// How many shared libraries `ldd` says the program loads (its own file excluded).
fn shared_libraries(bin: &Path) -> Option<usize> {
    let output = Command::new("ldd").arg(bin).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Some(
        text.lines()
            .filter(|l| l.contains(" => /") || l.trim_start().starts_with('/'))
            .count(),
    )
}

/// `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn size_mb(bin: &Path) -> f64 {
    std::fs::metadata(bin)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == LAUNCHER) {
        // Before anything else, so that the launcher stays small.
        launcher();
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    bench(&runtime, &args);
}

fn bench(runtime: &tokio::runtime::Runtime, args: &[String]) {
    let smoke = args.iter().any(|a| a == "--smoke");
    let rounds = arg(args, "--rounds")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if smoke { 1 } else { 20 });
    let cli = arg(args, "--cli").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_BIN_EXE_logto-desktop-window"))
            .with_file_name(format!("logto-desktop{}", std::env::consts::EXE_SUFFIX))
    });
    assert!(
        cli.is_file(),
        "no command line at {}: build it with `cargo build -p logto-desktop-cli` \
         (`cargo test --workspace` and `make test` do), or name one with --cli",
        cli.display()
    );

    // A stored session, as a person who signed in in the window has, with an access token that
    // stays fresh for the whole run (a day), so `token` prints it without the network.
    let idp = common::idp::Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "86400")]);
    let scripted = Arc::new(Scripted::start());
    let mut config = Config::new(&idp.info.endpoint, &idp.info.app_id).expect("config");
    config.end_browser_session = false;
    let account = format!("{}@{}", config.app_id, config.issuer());
    let store = Arc::new(KeyringStore::new(
        KEYCHAIN_SERVICE,
        &config.issuer(),
        &config.app_id,
    ));
    let service =
        AuthService::new(config, store.clone(), BenchBrowser::new(&scripted)).expect("service");
    let stored = runtime.block_on(async {
        service
            .sign_in(SignInMethod::Logto, |_| {})
            .await
            .expect("signed in, for the command line to read");
        service
            .get_access_token(None, None)
            .await
            .expect("the stored access token")
            .secret()
            .to_string()
    });

    let sandbox = tempfile::tempdir().expect("a sandbox");
    let dir = |name: &str| sandbox.path().join(name).display().to_string();
    let env: Vec<(String, String)> = [
        ("LOGTO_ENDPOINT", idp.info.endpoint.clone()),
        ("LOGTO_APP_ID", idp.info.app_id.clone()),
        ("XDG_CONFIG_HOME", dir("config")),
        ("XDG_DATA_HOME", dir("data")),
        ("XDG_CACHE_HOME", dir("cache")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // The entry as the Secret Service holds it: `secret-tool lookup` asks for exactly its
    // attributes.
    let attributes = entry_attributes(&env, &account);
    let mut lookup = vec!["secret-tool".to_string(), "lookup".to_string()];
    for (name, value) in &attributes {
        lookup.push(name.clone());
        lookup.push(value.clone());
    }
    let cli_path = cli.display().to_string();
    let token = vec![cli_path.clone(), "token".to_string()];
    let status = vec![cli_path.clone(), "status".to_string()];
    let version = vec![cli_path.clone(), "--version".to_string()];

    let mut launcher = Launcher::start(&env);
    // What each run must have done; a run that did anything else measured something else.
    let check = |what: &[String], run: &Run| {
        assert_eq!(run.code, 0, "{} exited with {}", what.join(" "), run.code);
        if what == token.as_slice() {
            assert_eq!(
                run.stdout.trim_end(),
                stored,
                "`token` printed another token than the stored one"
            );
        } else if what == status.as_slice() {
            assert!(
                run.stdout.starts_with("Signed in as "),
                "`status` said {:?}",
                run.stdout
            );
        } else if what == lookup.as_slice() {
            assert!(
                run.stdout.contains(&stored),
                "secret-tool's entry holds another token than the stored one"
            );
        }
    };
    // One untimed run each: the programs and their libraries are in the page cache from here on.
    for what in [&token, &lookup, &status, &version] {
        check(what, &launcher.run(what));
    }

    // Each program in turn, secret-tool between them.
    let programs = [&token, &status, &version, &lookup];
    let names = [
        "`logto-desktop token`",
        "`logto-desktop status`",
        "`logto-desktop --version`",
        "`secret-tool lookup` of the same entry",
    ];
    let mut walls = names.map(Samples::new);
    let mut peaks = names.map(|name| Samples::of(name, Unit::Mib));
    for _ in 0..rounds {
        for i in [0, 3, 1, 3, 2, 3] {
            let run = launcher.run(programs[i]);
            check(programs[i], &run);
            walls[i].push(run.wall);
            peaks[i].values.push(run.peak_kib as f64 / 1024.0);
        }
    }
    // The measure's own floor: an empty program, started the same way.
    let empty = vec!["true".to_string()];
    let mut empty_wall = Samples::new("`true`");
    let mut empty_peak = Samples::of("`true`", Unit::Mib);
    for _ in 0..rounds.max(3) {
        let run = launcher.run(&empty);
        check(&empty, &run);
        empty_wall.push(run.wall);
        empty_peak.values.push(run.peak_kib as f64 / 1024.0);
    }
    launcher.stop();
    let _ = store.delete();

    let [token_wall, status_wall, version_wall, floor_wall] = walls;
    let [token_peak, status_peak, version_peak, floor_peak] = peaks;
    let copy = |s: &Samples| Samples {
        name: s.name,
        unit: s.unit,
        values: s.values.clone(),
    };
    let comparisons = [
        Comparison {
            title: "9. `logto-desktop token`, spawn to exit",
            measure: token_wall,
            baseline: copy(&floor_wall),
            goal: Goal::Ratio(1.5),
        },
        Comparison {
            title: "9b. `logto-desktop status`, spawn to exit",
            measure: status_wall,
            baseline: copy(&floor_wall),
            goal: Goal::Ratio(1.5),
        },
        Comparison {
            title: "9c. `logto-desktop --version`, spawn to exit",
            measure: version_wall,
            baseline: floor_wall,
            goal: Goal::None,
        },
        Comparison {
            title: "10. `logto-desktop token`, peak memory",
            measure: token_peak,
            baseline: copy(&floor_peak),
            goal: Goal::AtMost(15.0),
        },
        Comparison {
            title: "10b. `logto-desktop status`, peak memory",
            measure: status_peak,
            baseline: copy(&floor_peak),
            goal: Goal::AtMost(15.0),
        },
        Comparison {
            title: "10c. `logto-desktop --version`, peak memory",
            measure: version_peak,
            baseline: floor_peak,
            goal: Goal::None,
        },
    ];

    let machine = machine();
    let secret_tool = on_path("secret-tool");
    let libraries = |bin: Option<&Path>| {
        bin.and_then(shared_libraries)
            .map_or("?".to_string(), |n| n.to_string())
    };
    println!(
        "\nlogto-desktop command-line benchmarks, {rounds} rounds (each program in turn, \
         secret-tool between them), on {machine}"
    );
    println!(
        "  the command line: {} ({:.2} MB, {} shared libraries)",
        cli.display(),
        size_mb(&cli),
        libraries(Some(&cli))
    );
    println!(
        "  the floor: {} ({} shared libraries)",
        lookup
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        libraries(secret_tool.as_deref())
    );
    for c in &comparisons {
        c.print();
    }
    println!(
        "\nThe floor of the measure: an empty program (`true`) started the same way takes \
         {:.2} ms and peaks at {:.2} MiB (medians).",
        empty_wall.median(),
        empty_peak.median()
    );
    if let Some(path) = arg(args, "--json") {
        let results = json!({
            "machine": machine,
            "rounds": rounds,
            "cli": cli.display().to_string(),
            "cli_size_mb": size_mb(&cli),
            "empty_program": { "ms": empty_wall.median(), "peak_mib": empty_peak.median() },
            "comparisons": comparisons.iter().map(|c| c.json()).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&results).expect("JSON"))
            .expect("writing the results");
    }
    if smoke {
        // Every run was checked above: exit codes, `token`'s token, `status`'s words.
        println!("bench smoke: {} passed, 0 failed", comparisons.len());
    }
}
