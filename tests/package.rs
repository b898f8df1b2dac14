//! The `.deb` as a person installs it: Tauri's bundler packs the app (tauri.conf.json's `bundle`),
//! `apt-get install` puts it on this machine, the installed `/usr/bin/logto-desktop` opens its
//! window under Xvfb against the provider and reaches `signed-out`, its window's WM_CLASS is the
//! desktop entry's `StartupWMClass`, and the package is purged again, also when the test fails.
//! The `.rpm` of the same run is read with `rpm -qp` (this is a Debian machine): the same files,
//! licence and dependencies. Also: the icons checked in are the ones `make icons` makes from
//! `src-tauri/icons/icon.svg`.
//!
//! The package holds the debug build `cargo test` made, stripped (a release build ships stripped
//! too; unstripped it is a 75 MB package that takes 8 s to compress), not a release build of its
//! own: `make package` makes the release one from the same configuration.
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
const INSTALLED_BIN: &str = "/usr/bin/logto-desktop";
/// Tauri's bundler names the desktop entry after `productName`.
const DESKTOP_FILE: &str = "/usr/share/applications/Logto Desktop.desktop";
const DOC_DIR: &str = "/usr/share/doc/logto-desktop";
/// The hicolor sizes the icons of tauri.conf.json fill, in pixels.
const ICON_SIZES: [u32; 5] = [32, 64, 128, 256, 512];

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

/// The installed app; killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

/// Packs the app's binary into a `.deb` and an `.rpm` in `work`, the way `make package` does (same
/// config, same CLI), from a stripped copy: the bundler reads the binary from
/// `$CARGO_TARGET_DIR/debug`, so the shared target folder, where other tests run the binary, is
/// neither read from nor written to.
fn bundle(work: &Path) -> (PathBuf, PathBuf) {
    let debug = work.join("debug");
    std::fs::create_dir_all(&debug).expect("a target folder for the bundler");
    run(
        Command::new("strip")
            .arg("-o")
            .arg(debug.join("logto-desktop"))
            .arg(crate::support::cli_bin()),
        "strip (binutils)",
    );
    let started = Instant::now();
    run(
        Command::new(tauri_cli())
            .args(["bundle", "--debug", "--bundles", "deb,rpm"])
            .args(["--no-binary-patching", "--ci"])
            .current_dir(repo())
            .env("CARGO_TARGET_DIR", work),
        "tauri bundle --debug --bundles deb,rpm",
    );
    eprintln!("bundled the .deb and the .rpm in {:?}", started.elapsed());
    let one = |kind: &str| {
        let dir = debug.join("bundle").join(kind);
        let found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == kind))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one .{kind} in {}: {found:?}",
            dir.display()
        );
        found[0].clone()
    };
    (one("deb"), one("rpm"))
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
    let files = rpm_query(rpm, &["--list"]);
    let mut expected = vec![INSTALLED_BIN.to_string(), DESKTOP_FILE.to_string()];
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

/// What the installed package put on the machine: the binary, the desktop entry (valid, with the
/// name, icon and category people see), the icons in every size, the licence, the dependencies.
/// Returns the entry's `StartupWMClass`.
fn check_installed_files() -> String {
    let bin =
        std::fs::metadata(INSTALLED_BIN).expect("the package installs /usr/bin/logto-desktop");
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&bin.permissions()) & 0o111 != 0,
        "{INSTALLED_BIN} is executable"
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
        desktop_entry(&entry, "Exec").as_deref(),
        Some("logto-desktop")
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

    let fields = run(
        Command::new("dpkg-query").args(["-W", "-f=${Depends}\\n${Recommends}\\n", PACKAGE]),
        "dpkg-query the package's fields",
    );
    let fields = String::from_utf8_lossy(&fields.stdout).into_owned();
    let mut lines = fields.lines();
    let depends = lines.next().unwrap_or_default();
    let recommends = lines.next().unwrap_or_default();
    for lib in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libdbus-1-3"] {
        assert!(depends.contains(lib), "Depends names {lib}: {depends}");
    }
    for wanted in ["gnome-keyring", "xdg-utils"] {
        assert!(
            recommends.contains(wanted),
            "Recommends names {wanted}: {recommends}"
        );
    }

    desktop_entry(&entry, "StartupWMClass").expect("the entry has a StartupWMClass")
}

/// Starts `/usr/bin/logto-desktop` on `x` against the provider, in a sandbox of its own, with
/// nothing of the caller's environment but the session bus (the keychain); returns it with what
/// it logs on stderr, and the first screen it reports having drawn.
async fn start_installed(
    idp: &Idp,
    x: &Xvfb,
    sandbox: &Path,
) -> (Running, Arc<Mutex<String>>, String) {
    let mut command = Command::new(INSTALLED_BIN);
    command.env_clear();
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
        .expect("starting the installed /usr/bin/logto-desktop");
    let stderr = child.stderr.take().expect("the app's stderr");
    let app = Running(child);
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
    let first = first.unwrap_or_else(|_| {
        panic!(
            "the installed app drew no first screen within {} s; it logged:\n{}",
            STEP_BOUND.as_secs(),
            log.lock().map(|l| l.clone()).unwrap_or_default()
        )
    });
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
    assert!(
        !Path::new(INSTALLED_BIN).exists(),
        "{INSTALLED_BIN} exists but no package owns it: this test will not overwrite it"
    );
    let before = dpkg_list();

    let work = tempfile::Builder::new()
        .prefix("package-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a work folder");
    let (deb, rpm) = bundle(work.path());
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
    let wm_class = check_installed_files();

    let idp = Idp::start();
    let x = Xvfb::start();
    let sandbox = tempfile::tempdir().expect("a sandbox");
    let (mut app, log, first) = start_installed(&idp, &x, sandbox.path()).await;
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
    assert!(
        app.0.try_wait().expect("the app's status").is_none(),
        "the installed app is still running; it logged:\n{}",
        logged()
    );
    drop(app);

    let purge = installed.purge();
    assert!(
        purge.status.success(),
        "apt-get purge {PACKAGE}: {}",
        String::from_utf8_lossy(&purge.stderr)
    );
    assert!(
        !Path::new(INSTALLED_BIN).exists(),
        "the purge removed {INSTALLED_BIN}"
    );
    assert!(
        !Path::new(DESKTOP_FILE).exists(),
        "the purge removed the desktop entry"
    );
    assert_eq!(
        dpkg_list(),
        before,
        "dpkg's packages are as they were before the test"
    );
}
