//! Starting the window program. It is looked for beside this program (a build's `target/` folder,
//! the .rpm's `/usr/bin`, a Windows install folder), then where the .deb puts it
//! (`/usr/lib/logto-desktop/`, beside `/usr/bin`): never on `PATH`, so that no other program
//! of that name is started in its place.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::args::exit;

/// The window program's file name.
const WINDOW: &str = if cfg!(windows) {
    "logto-desktop-window.exe"
} else {
    "logto-desktop-window"
};

/// Where the window program may be, given the folder this program is in, in the order tried.
fn candidates(dir: &Path) -> [PathBuf; 2] {
    [
        dir.join(WINDOW),
        dir.join("../lib/logto-desktop").join(WINDOW),
    ]
}

/// Starts the window with `args`; returns an exit code only when it could not be started (on
/// Unix the window takes this process's place, keeping its id for whoever started it).
pub fn open(args: impl Iterator<Item = OsString>) -> i32 {
    let dir = match std::env::current_exe() {
        Ok(exe) => exe.parent().map(Path::to_path_buf).unwrap_or_default(),
        Err(e) => {
            eprintln!("logto-desktop: could not tell where this program is installed ({e}), so the window cannot be found. Reinstall Logto Desktop.");
            return exit::FAILED;
        }
    };
    let tried = candidates(&dir);
    let Some(program) = tried.iter().find(|path| path.is_file()) else {
        eprintln!(
            "logto-desktop: the window program is not installed (looked for {} and {}). Reinstall Logto Desktop; the commands (`logto-desktop --help`) work without it.",
            tried[0].display(),
            tried[1].display()
        );
        return exit::FAILED;
    };
    let mut command = std::process::Command::new(program);
    command.args(args);
    start(program, command)
}

#[cfg(unix)]
fn start(program: &Path, mut command: std::process::Command) -> i32 {
    use std::os::unix::process::CommandExt;
    // `exec` returns only on failure.
    let e = command.exec();
    eprintln!(
        "logto-desktop: could not start the window ({}: {e}). Reinstall Logto Desktop.",
        program.display()
    );
    exit::FAILED
}

#[cfg(not(unix))]
fn start(program: &Path, mut command: std::process::Command) -> i32 {
    // No exec on Windows: the window runs on its own and this console program ends at once.
    match command.spawn() {
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!(
                "logto-desktop: could not start the window ({}: {e}). Reinstall Logto Desktop.",
                program.display()
            );
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_looked_for_beside_this_program_then_where_the_deb_puts_it() {
        let [beside, deb] = candidates(Path::new("/usr/bin"));
        assert_eq!(beside, Path::new("/usr/bin").join(WINDOW));
        assert_eq!(
            deb.components().collect::<PathBuf>(),
            Path::new("/usr/bin/../lib/logto-desktop").join(WINDOW)
        );
    }
}
