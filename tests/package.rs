//! The packages as a person installs them, and as a distribution would take them.
//!
//! `scripts/package.sh bundle` makes the `.deb` (packaging/deb.sh, with dpkg-dev's tools) and the
//! `.rpm` (Tauri's bundler) of the two programs, the way `make package` does; lintian finds no
//! error or warning in the `.deb`; `apt-get install` puts it on this machine; its AppStream file
//! and desktop entry validate, its man page renders, the installed `logto-desktop --version` runs,
//! and the menu entry's `Exec` opens the window under Xvfb against the provider until it reaches
//! `signed-out`, drawn by the window program in `/usr/lib/logto-desktop` that `logto-desktop`
//! started; its window's WM_CLASS is the desktop entry's `StartupWMClass`; the package is purged
//! again, also when the test fails. The `.rpm` of the same run is read with `rpm -qp` (this is a
//! Debian machine): the same programs, licence and dependencies. Also: the icons checked in are
//! the ones `make icons` makes from `src-tauri/icons/icon.svg`.
//!
//! The packages hold the debug build `cargo test` made, stripped (a release build ships stripped
//! too; unstripped it is a 75 MB package that takes 8 s to compress), not a release build of their
//! own: `make package` makes the release ones the same way.
//!
//! The machine is left as it was found: the test refuses to run when `logto-desktop` is known to
//! dpkg already (it does not replace or remove someone's install), installs without Recommends so
//! that apt adds nothing else (the dependencies are runtime libraries the build already needs),
//! and checks that dpkg's list of packages after the purge is the list from before.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::support::idp::Idp;
use crate::support::xvfb::Xvfb;
use crate::support::STEP_BOUND;

const PACKAGE: &str = "logto-desktop";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const INSTALLED_BIN: &str = "/usr/bin/logto-desktop";
/// The window program: no command of its own, so not in /usr/bin (Debian policy 9.1.1).
const INSTALLED_WINDOW: &str = "/usr/lib/logto-desktop/logto-desktop-window";
/// The desktop entry and the AppStream file are named after the app id (tauri.conf.json's
/// `identifier`).
const DESKTOP_FILE: &str = "/usr/share/applications/io.logto.desktop-sample.desktop";
const METAINFO: &str = "/usr/share/metainfo/io.logto.desktop-sample.metainfo.xml";
const MAN_PAGE: &str = "/usr/share/man/man1/logto-desktop.1.gz";
/// Tauri's bundler, which makes the `.rpm`, names its desktop entry after `productName`.
const RPM_DESKTOP_FILE: &str = "/usr/share/applications/Logto Desktop.desktop";
const DOC_DIR: &str = "/usr/share/doc/logto-desktop";
/// The hicolor sizes the icons of tauri.conf.json fill, in pixels.
const ICON_SIZES: [u32; 5] = [32, 64, 128, 256, 512];

/// The window program as cargo built it.
fn window_binary() -> &'static str {
    env!("CARGO_BIN_EXE_logto-desktop-window")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tauri_cli() -> PathBuf {
    let cli = repo().join("packaging/node_modules/.bin/tauri");
    assert!(
        cli.exists(),
        "the Tauri CLI is missing: run `make test` (or `npm --prefix packaging ci`)"
    );
    cli
}

fn run(command: &mut Command, what: &str) -> Output {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `program` as root: directly when the tests run as root, else through `sudo -n` (which fails
/// rather than asks for a password).
fn as_root(program: &str) -> Command {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        Command::new(program)
    } else {
        let mut command = Command::new("sudo");
        command.args(["-n", program]);
        command
    }
}

/// apt-get, waiting for dpkg's lock rather than failing when something else holds it.
fn apt_get(args: &[&str]) -> Command {
    let mut command = as_root("apt-get");
    command
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-y", "-q", "-o", "DPkg::Lock::Timeout=120"])
        .args(args);
    command
}

/// dpkg's record of `package` (`ii`, `rc`, ...), or `None` when dpkg has never heard of it.
fn dpkg_status(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", package])
        .output()
        .expect("dpkg-query");
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !status.is_empty() && !status.starts_with("un")).then_some(status)
}

/// Every package dpkg knows, with its version and state, one a line, sorted.
fn dpkg_list() -> Vec<String> {
    let out = run(
        Command::new("dpkg-query").args([
            "-W",
            "-f=${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\\n",
        ]),
        "dpkg-query -W",
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    lines.sort();
    lines
}

/// Purges the package when dropped, so a failing test leaves nothing installed.
struct Installed {
    purged: bool,
}

impl Installed {
    fn purge(&mut self) -> Output {
        self.purged = true;
        apt_get(&["purge", PACKAGE])
            .stdin(Stdio::null())
            .output()
            .expect("apt-get purge")
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            let out = self.purge();
            if !out.status.success() {
                eprintln!(
                    "could not purge {PACKAGE}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// `key=value` of the `[Desktop Entry]` group.
fn desktop_entry(text: &str, key: &str) -> Option<String> {
    let mut in_entry = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_entry = line == "[Desktop Entry]";
        } else if in_entry {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// A PNG's width and height, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (be(16), be(20))
}

fn bundle_icons() -> Vec<String> {
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tauri.conf.json")).expect("reading tauri.conf.json"),
    )
    .expect("tauri.conf.json is JSON");
    config["bundle"]["icon"]
        .as_array()
        .expect("bundle.icon")
        .iter()
        .map(|v| v.as_str().expect("an icon path").to_string())
        .collect()
}

/// Makes the `.deb` and the `.rpm` in `work` with `scripts/package.sh bundle`, the way `make
/// package` does, from stripped copies of the programs in `work/debug` (where Tauri's bundler
/// looks for them): the shared target folder, where other tests run the programs, is neither
/// read from by the bundler nor written to.
fn bundle(work: &Path) -> (PathBuf, PathBuf) {
    let debug = work.join("debug");
    std::fs::create_dir_all(&debug).expect("a target folder for the bundler");
    let cli = crate::support::cli_bin();
    for (name, built) in [
        ("logto-desktop", cli.as_path()),
        ("logto-desktop-window", Path::new(window_binary())),
    ] {
        run(
            Command::new("strip")
                .arg("-o")
                .arg(debug.join(name))
                .arg(built),
            "strip (binutils)",
        );
    }
    let started = Instant::now();
    let out = run(
        Command::new(repo().join("scripts/package.sh"))
            .arg("bundle")
            .arg(&debug)
            .current_dir(repo()),
        "scripts/package.sh bundle",
    );
    eprintln!("bundled the .deb and the .rpm in {:?}", started.elapsed());
    let paths: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(paths.len(), 2, "the .deb's path and the .rpm's: {paths:?}");
    for path in &paths {
        assert!(path.is_file(), "{} was made", path.display());
    }
    (paths[0].clone(), paths[1].clone())
}

/// The machine's Debian architecture (`amd64`).
fn debian_arch() -> String {
    let out = run(
        Command::new("dpkg").arg("--print-architecture"),
        "dpkg --print-architecture",
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// lintian finds no error and no warning in the `.deb`. Nothing is suppressed; what it says at
/// info level is printed.
fn check_lintian(deb: &Path) {
    let started = Instant::now();
    let out = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-info"])
        .arg(deb)
        .stdin(Stdio::null())
        .output()
        .expect("lintian (apt-get install lintian)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "lintian in {:?}:\n{said}{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    // --fail-on is lintian's own verdict; the tags are read too, should it ever change.
    let bad: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(
        out.status.success() && bad.is_empty(),
        "lintian finds errors or warnings in the .deb ({}):\n{said}",
        out.status
    );
}

/// `rpm -qp <query> <package>`, one line per answer.
fn rpm_query(rpm: &Path, query: &[&str]) -> Vec<String> {
    let out = run(
        Command::new("rpm").arg("-qp").args(query).arg(rpm),
        "rpm -qp (Debian's rpm package)",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `.rpm` holds what the `.deb` installs (its licence texts where RPM distributions keep them),
/// names its licence, and declares the same needs in RPM's terms.
fn check_rpm(rpm: &Path) {
    let name = rpm.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        name.starts_with(&format!("{PACKAGE}-{VERSION}-")) && !name.contains(' '),
        "the .rpm's file name: {name:?}"
    );
    let files = rpm_query(rpm, &["--list"]);
    let mut expected = vec![INSTALLED_BIN.to_string(), RPM_DESKTOP_FILE.to_string()];
    // The .rpm has both programs in /usr/bin, where `logto-desktop` looks first.
    expected.push("/usr/bin/logto-desktop-window".to_string());
    expected.extend(
        ICON_SIZES
            .iter()
            .map(|s| format!("/usr/share/icons/hicolor/{s}x{s}/apps/logto-desktop.png")),
    );
    expected.extend(
        ["LICENSE-MIT", "LICENSE-APACHE"]
            .iter()
            .map(|l| format!("/usr/share/licenses/logto-desktop/{l}")),
    );
    for file in &expected {
        assert!(files.contains(file), "the .rpm holds {file}: {files:?}");
    }
    let fields = rpm_query(rpm, &["--queryformat", "%{NAME}\\n%{LICENSE}\\n"]);
    assert_eq!(
        fields,
        [PACKAGE, "MIT OR Apache-2.0"],
        "the .rpm's name and licence"
    );
    let requires = rpm_query(rpm, &["--requires"]).join("\n");
    for lib in ["libwebkit2gtk-4.1.so.0", "libgtk-3.so.0", "libdbus-1.so.3"] {
        assert!(
            requires.contains(lib),
            "the .rpm requires {lib}: {requires}"
        );
    }
    let recommends = rpm_query(rpm, &["--recommends"]);
    assert!(
        recommends.iter().any(|r| r == "gnome-keyring"),
        "the .rpm recommends a Secret Service provider: {recommends:?}"
    );
}

/// What the installed package put on the machine: the two programs, the desktop entry (valid,
/// with the name, icon and category people see), the AppStream file (valid), the man page, the
/// icons in every size, the licence, the changelog, and the control fields: a maintainer with an
/// address, dependencies worked out from the programs. Returns the entry's `Exec` and
/// `StartupWMClass`.
fn check_installed_files() -> (String, String) {
    for program in [INSTALLED_BIN, INSTALLED_WINDOW] {
        let meta = std::fs::metadata(program)
            .unwrap_or_else(|e| panic!("the package installs {program}: {e}"));
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
            "{program} is executable"
        );
    }
    let version = run(
        Command::new(INSTALLED_BIN)
            .arg("--version")
            .env_clear()
            .env("PATH", "/usr/bin:/bin"),
        "the installed logto-desktop --version",
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("logto-desktop {VERSION}")
    );

    let files = run(
        Command::new("dpkg").args(["-L", PACKAGE]),
        "dpkg -L logto-desktop",
    );
    let files = String::from_utf8_lossy(&files.stdout).into_owned();
    assert!(
        !files.contains(' '),
        "no path in the package has a space: {files}"
    );
    assert!(
        !files
            .lines()
            .any(|f| f.starts_with("/usr/bin/") && f != INSTALLED_BIN),
        "logto-desktop is the one command the package puts in /usr/bin: {files}"
    );

    let entry = std::fs::read_to_string(DESKTOP_FILE)
        .unwrap_or_else(|e| panic!("the package installs {DESKTOP_FILE}: {e}"));
    let validate = run(
        Command::new("desktop-file-validate").arg(DESKTOP_FILE),
        "desktop-file-validate (desktop-file-utils)",
    );
    let complaints = String::from_utf8_lossy(&validate.stdout).into_owned();
    assert!(
        complaints.trim().is_empty(),
        "desktop-file-validate: {complaints}"
    );
    assert_eq!(
        desktop_entry(&entry, "Name").as_deref(),
        Some("Logto Desktop")
    );
    assert_eq!(
        desktop_entry(&entry, "Icon").as_deref(),
        Some("logto-desktop")
    );
    assert!(
        desktop_entry(&entry, "Comment").is_some_and(|c| !c.is_empty()),
        "the entry has a Comment: {entry}"
    );
    assert!(
        desktop_entry(&entry, "Categories").is_some_and(|c| !c.is_empty()),
        "the entry has Categories: {entry}"
    );

    let appstream = Command::new("appstreamcli")
        .args(["validate", "--no-net", METAINFO])
        .stdin(Stdio::null())
        .output()
        .expect("appstreamcli (apt-get install appstream)");
    let said = String::from_utf8_lossy(&appstream.stdout).into_owned();
    eprintln!("appstreamcli validate --no-net:\n{said}");
    assert!(
        appstream.status.success()
            && !said
                .lines()
                .any(|l| l.starts_with("E: ") || l.starts_with("W: ")),
        "appstreamcli validate --no-net {METAINFO} ({}):\n{said}",
        appstream.status
    );

    let page = run(Command::new("zcat").arg(MAN_PAGE), "zcat the man page");
    let page = String::from_utf8_lossy(&page.stdout).into_owned();
    assert!(
        page.lines()
            .any(|l| l.starts_with(".TH logto-desktop 1 ") && l.contains(VERSION)),
        "{MAN_PAGE} is the page of logto-desktop {VERSION}: {page}"
    );
    let rendered = run(
        Command::new("man")
            .args(["--warnings", "-l", MAN_PAGE])
            .env("MANWIDTH", "80"),
        "man -l (man-db)",
    );
    let text = String::from_utf8_lossy(&rendered.stdout).into_owned();
    let warnings = String::from_utf8_lossy(&rendered.stderr).into_owned();
    assert!(
        text.contains("SYNOPSIS") && text.contains("logto-desktop-token(1)") && warnings.is_empty(),
        "man -l {MAN_PAGE} renders without warnings:\n{text}\n{warnings}"
    );
    // Each command's page the first one names is installed.
    for word in text.split_whitespace() {
        if let Some(name) = word
            .strip_suffix("(1)")
            .filter(|n| n.starts_with("logto-desktop-"))
        {
            let page = format!("/usr/share/man/man1/{name}.1.gz");
            assert!(Path::new(&page).is_file(), "{MAN_PAGE} names {page}");
        }
    }

    for size in ICON_SIZES {
        let icon = PathBuf::from(format!(
            "/usr/share/icons/hicolor/{size}x{size}/apps/logto-desktop.png"
        ));
        assert_eq!(png_size(&icon), (size, size), "{}", icon.display());
    }

    for licence in ["LICENSE-MIT", "LICENSE-APACHE"] {
        let installed = std::fs::read(Path::new(DOC_DIR).join(licence))
            .unwrap_or_else(|e| panic!("{DOC_DIR}/{licence}: {e}"));
        let ours = std::fs::read(repo().join(licence)).expect("the repository's licence");
        assert!(installed == ours, "{DOC_DIR}/{licence} is the repository's");
    }
    let copyright = std::fs::read_to_string(Path::new(DOC_DIR).join("copyright"))
        .expect("the package installs its copyright file");
    assert!(copyright.contains("MIT or Apache-2.0"), "{copyright}");
    let changelog = run(
        Command::new("zcat").arg(Path::new(DOC_DIR).join("changelog.gz")),
        "zcat the package's changelog",
    );
    assert!(
        String::from_utf8_lossy(&changelog.stdout).starts_with(&format!("{PACKAGE} ({VERSION}) ")),
        "the changelog's latest entry is this version's"
    );

    let fields = run(
        Command::new("dpkg-query").args([
            "-W",
            "-f=${Maintainer}\\n${Depends}\\n${Recommends}\\n",
            PACKAGE,
        ]),
        "dpkg-query the package's fields",
    );
    let fields = String::from_utf8_lossy(&fields.stdout).into_owned();
    let mut lines = fields.lines();
    let maintainer = lines.next().unwrap_or_default();
    let depends = lines.next().unwrap_or_default();
    let recommends = lines.next().unwrap_or_default();
    assert!(
        maintainer.ends_with('>') && maintainer.contains('@'),
        "the Maintainer has an address: {maintainer}"
    );
    // libc6 and versions are what dpkg-shlibdeps writes, and what nobody writes by hand.
    for lib in [
        "libc6 (>= ",
        "libwebkit2gtk-4.1-0 (>= ",
        "libgtk-3-0 (>= ",
        "libdbus-1-3 (>= ",
    ] {
        assert!(depends.contains(lib), "Depends names {lib}…): {depends}");
    }
    for wanted in ["gnome-keyring", "xdg-utils"] {
        assert!(
            recommends.contains(wanted),
            "Recommends names {wanted}: {recommends}"
        );
    }

    (
        desktop_entry(&entry, "Exec").expect("the entry has an Exec"),
        desktop_entry(&entry, "StartupWMClass").expect("the entry has a StartupWMClass"),
    )
}

/// The program the menu entry started, and the window program if that is another process (the
/// one that owns the window); both are killed when dropped.
struct Running {
    launched: Child,
    window: Option<u32>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pid) = self.window.filter(|&pid| pid != self.launched.id()) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = self.launched.kill();
        let _ = self.launched.wait();
    }
}

/// Whether process `pid` is running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`: the state follows the last parenthesis.
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z')
    })
}

/// Runs the menu entry's `Exec` on `x` against the provider, in a sandbox of its own, with
/// nothing of the caller's environment but the session bus (the keychain) and a PATH with the
/// installed command on it; returns it with what it logs on stderr (the window program's
/// included), and the first screen the window reports having drawn.
async fn start_installed(
    exec: &str,
    idp: &Idp,
    x: &Xvfb,
    sandbox: &Path,
) -> (Running, Arc<Mutex<String>>, String) {
    assert!(
        !exec.contains('%') && !exec.contains('"'),
        "Exec={exec} is a plain command line"
    );
    let mut words = exec.split_whitespace();
    let mut command = Command::new(words.next().expect("Exec names a program"));
    command.args(words).env_clear();
    if let Ok(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        command.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    for dir in ["home", "config", "data", "cache"] {
        std::fs::create_dir_all(sandbox.join(dir)).expect("sandbox folders");
    }
    let mut child = command
        .env("PATH", "/usr/bin:/bin")
        .env("DISPLAY", &x.display)
        .env("HOME", sandbox.join("home"))
        .env("XDG_CONFIG_HOME", sandbox.join("config"))
        .env("XDG_DATA_HOME", sandbox.join("data"))
        .env("XDG_CACHE_HOME", sandbox.join("cache"))
        .env("LANGUAGE", "en")
        .env("RUST_LOG", "info")
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("NO_AT_BRIDGE", "1")
        .env("LOGTO_ENDPOINT", &idp.info.endpoint)
        .env("LOGTO_APP_ID", &idp.info.app_id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running the menu entry's Exec={exec}: {e}"));
    let stderr = child.stderr.take().expect("the app's stderr");
    let mut app = Running {
        launched: child,
        window: None,
    };
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((_, state)) = line.split_once("first screen drawn: ") {
                let _ = tx.send(state.trim().to_string());
            }
            if let Ok(mut log) = lines.lock() {
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    let first = tokio::task::spawn_blocking(move || rx.recv_timeout(STEP_BOUND))
        .await
        .expect("the log reader");
    let Ok(first) = first else {
        // Its stderr closes early when what Exec started ends without a window; it is reaped a
        // moment later.
        let mut ended = None;
        for _ in 0..20 {
            ended = app.launched.try_wait().ok().flatten();
            if ended.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let ended = match ended {
            Some(status) => format!("Exec={exec} ended ({status})"),
            None => format!("no first screen within {} s", STEP_BOUND.as_secs()),
        };
        panic!(
            "the installed app drew no first screen: {ended}; it logged:\n{}",
            log.lock().map(|l| l.clone()).unwrap_or_default()
        )
    };
    (app, log, first)
}

#[test]
fn icons_are_made_from_the_one_svg() {
    let out = tempfile::tempdir().expect("a folder for the icons");
    run(
        Command::new(tauri_cli())
            .arg("icon")
            .arg(repo().join("src-tauri/icons/icon.svg"))
            .arg("--output")
            .arg(out.path()),
        "tauri icon src-tauri/icons/icon.svg",
    );
    for icon in bundle_icons() {
        let name = Path::new(&icon)
            .file_name()
            .and_then(|n| n.to_str())
            .expect("an icon file name");
        // The same name scripts/package.sh gives the 256 px image.
        let made = if name == "256x256.png" {
            "128x128@2x.png"
        } else {
            name
        };
        let checked_in =
            std::fs::read(repo().join(&icon)).unwrap_or_else(|e| panic!("{icon}: {e}"));
        let fresh = std::fs::read(out.path().join(made)).unwrap_or_else(|e| panic!("{made}: {e}"));
        if name.ends_with(".icns") {
            // `tauri icon` writes the icns container's entries in a varying order, so it is
            // compared entry by entry.
            assert_eq!(
                icns_entries(&checked_in),
                icns_entries(&fresh),
                "{icon}: run `make icons`"
            );
        } else {
            assert!(
                checked_in == fresh,
                "{icon} is not what `make icons` makes: run it"
            );
        }
    }
}

/// An icns file's entries (type and data), sorted.
fn icns_entries(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    assert!(
        bytes.starts_with(b"icns") && bytes.len() >= 8,
        "an icns file"
    );
    let mut entries = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let kind = bytes[at..at + 4].to_vec();
        let len = u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        assert!(
            len >= 8 && at + len <= bytes.len(),
            "an icns entry inside the file"
        );
        entries.push((kind, bytes[at + 8..at + len].to_vec()));
        at += len;
    }
    entries.sort();
    entries
}

/// Holds a machine-wide lock while held: two test runs on one machine (two checkouts, two people)
/// take turns installing the package rather than find each other's install.
fn machine_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("logto-desktop-package-test.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < 4 * STEP_BOUND => {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(e) => panic!("another test run holds {} ({e})", path.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deb_installs_opens_signed_out_and_is_purged() {
    let _lock = machine_lock();
    if let Some(status) = dpkg_status(PACKAGE) {
        panic!(
            "{PACKAGE} is already known to dpkg on this machine (status {status:?}): this test \
             installs and purges it, and will not replace or remove someone's install. Remove it \
             (`sudo apt-get purge {PACKAGE}`) or run the tests on another machine."
        );
    }
    for program in [INSTALLED_BIN, INSTALLED_WINDOW] {
        assert!(
            !Path::new(program).exists(),
            "{program} exists but no package owns it: this test will not overwrite it"
        );
    }
    let before = dpkg_list();

    let work = tempfile::Builder::new()
        .prefix("package-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a work folder");
    let (deb, rpm) = bundle(work.path());
    assert_eq!(
        deb.file_name().and_then(|n| n.to_str()),
        Some(format!("{PACKAGE}_{VERSION}_{}.deb", debian_arch()).as_str()),
        "the .deb's file name"
    );
    check_lintian(&deb);
    check_rpm(&rpm);

    let mut installed = Installed { purged: false };
    let started = Instant::now();
    run(
        apt_get(&["install", "--no-install-recommends"]).arg(&deb),
        "apt-get install ./….deb",
    );
    eprintln!("installed in {:?}", started.elapsed());
    assert_eq!(
        dpkg_status(PACKAGE).as_deref(),
        Some("ii"),
        "dpkg lists {PACKAGE} as installed"
    );
    let added: Vec<String> = dpkg_list()
        .into_iter()
        .filter(|line| !before.contains(line))
        .collect();
    assert!(
        added.len() == 1 && added[0].starts_with(&format!("{PACKAGE}:")),
        "apt installed nothing but {PACKAGE}: {added:?}"
    );
    let (exec, wm_class) = check_installed_files();

    let idp = Idp::start();
    let x = Xvfb::start();
    let sandbox = tempfile::tempdir().expect("a sandbox");
    let (mut app, log, first) = start_installed(&exec, &idp, &x, sandbox.path()).await;
    let logged = || log.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(
        first,
        "signed-out",
        "the first screen; the app logged:\n{}",
        logged()
    );
    let window = x.window("Logto Desktop").await;
    let class = x.run("xprop", &["-id", &window, "WM_CLASS"]);
    let class = String::from_utf8_lossy(&class.stdout).into_owned();
    // `WM_CLASS(STRING) = "instance", "Class"`: desktops match StartupWMClass against either.
    let names: Vec<&str> = class.split('"').skip(1).step_by(2).collect();
    assert!(
        names.contains(&wm_class.as_str()),
        "the window's WM_CLASS {class:?} matches the desktop entry's StartupWMClass={wm_class}"
    );
    // The process that owns the window (GTK sets _NET_WM_PID) is the window program in
    // /usr/lib, whichever way `logto-desktop` starts it.
    let pid = x.run("xprop", &["-id", &window, "_NET_WM_PID"]);
    let pid = String::from_utf8_lossy(&pid.stdout).into_owned();
    let pid: u32 = pid
        .rsplit(' ')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the window's _NET_WM_PID: {pid:?}"));
    app.window = Some(pid);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the window's program");
    let expected = INSTALLED_WINDOW;
    assert_eq!(
        exe,
        Path::new(expected),
        "the program that drew the window; the app logged:\n{}",
        logged()
    );
    assert!(
        alive(pid),
        "the window program is still running; it logged:\n{}",
        logged()
    );
    drop(app);

    let purge = installed.purge();
    assert!(
        purge.status.success(),
        "apt-get purge {PACKAGE}: {}",
        String::from_utf8_lossy(&purge.stderr)
    );
    for file in [
        INSTALLED_BIN,
        INSTALLED_WINDOW,
        DESKTOP_FILE,
        METAINFO,
        MAN_PAGE,
    ] {
        assert!(!Path::new(file).exists(), "the purge removed {file}");
    }
    assert_eq!(
        dpkg_list(),
        before,
        "dpkg's packages are as they were before the test"
    );
}
