//! The lock that keeps programs sharing one keychain entry from refreshing at the same time, and
//! the per-user folder those programs share.
//!
//! Logto rotates the refresh token on every use and revokes the whole grant when a used one comes
//! back more than a few seconds later. The app's window and a `token` command in a script (or two
//! scripts) read the same entry; if both refreshed with the same refresh token, the second one
//! would end the sign-in everywhere. So "re-read the entry, refresh, store" and anything that
//! replaces or removes the entry runs under an exclusive lock on a file named after the entry.
//! The operating system releases the lock when the file is closed, also when a process dies
//! holding it.
//!
//! The file is in one folder per user, found from the user id and never from environment
//! variables: a cron job, `sudo -u`, a systemd unit or a snap's terminal set `XDG_RUNTIME_DIR` and
//! `HOME` differently, and a lock in a folder one of them does not look in is no lock. On Unix it
//! is `/run/user/<uid>/logto-native` where `/run/user/<uid>` is a real folder of this user's alone
//! (0700), else `<home>/.cache/logto-native` with the home the password database gives; on Windows
//! the local cache folder. The change notices of `notice.rs` live beside the locks.
//!
//! The folder (made 0700; an older, looser one of this user's is tightened) and the file (0600)
//! are this user's alone. One that another user owns, or one reached through a symlink, would
//! let someone else hold the lock (stalling every refresh for [`WAIT`]) or move it where the
//! other programs do not look, so it is refused with [`AuthError::LockNotPrivate`]. Only a lock
//! that cannot be made or taken at all (a read-only file system, one without locks) is gone
//! without, with a warning.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

use crate::error::AuthError;

/// How long a program waits for another to finish with the entry. A refresh takes one request
/// (20 seconds at most) and a keychain write.
pub const WAIT: Duration = Duration::from_secs(60);

/// How often a waiting program tries again.
const POLL: Duration = Duration::from_millis(20);

/// The name of the shared folder inside the runtime or cache folder.
const FOLDER: &str = "logto-native";

/// The lock file of one keychain entry (an issuer and app id).
#[derive(Debug, Clone)]
pub struct EntryLock {
    path: PathBuf,
    wait: Duration,
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct Held {
    _file: File,
}

impl EntryLock {
    /// A lock at `path` (its folder is made when first locked).
    pub fn new(path: PathBuf) -> Self {
        EntryLock { path, wait: WAIT }
    }

    /// Replaces how long to wait for another holder (tests).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Where the lock of the entry for `issuer` and `app_id` under the keychain `service` lives:
    /// in the shared folder (see the module), checked as far as it exists but made only when
    /// first locked.
    /// Its name hashes the three, so it says nothing about the tenant to someone listing the
    /// folder, and two programs with their own entries never share a lock. `Ok(None)` where this user
    /// has no such folder (no home in the password database); an error
    /// ([`AuthError::LockNotPrivate`]) where that folder, or the one it is made in, is another
    /// user's or a symlink.
    pub fn default_path(
        service: &str,
        issuer: &str,
        app_id: &str,
    ) -> Result<Option<PathBuf>, AuthError> {
        let digest = sha2::Sha256::digest(format!("{service}\n{issuer}\n{app_id}").as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Ok(shared_location()?.map(|dir| dir.join(format!("{name}.lock"))))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the lock, off the async threads. Errors if another program holds it for longer
    /// than the wait, or if its folder or file is another user's or a symlink
    /// ([`AuthError::LockNotPrivate`]). A lock file that cannot be made or locked (a read-only
    /// folder, a file system without locks) gives `None` with a warning: the in-process lock and
    /// the re-read of the entry before each refresh still hold, and no token request fails over
    /// a lock file.
    pub(crate) async fn acquire(&self) -> Result<Option<Held>, AuthError> {
        let path = self.path.clone();
        let wait = self.wait;
        tokio::task::spawn_blocking(move || acquire_blocking(&path, wait))
            .await
            .map_err(|_| AuthError::Busy("the lock task failed".into()))?
    }
}

fn acquire_blocking(path: &Path, wait: Duration) -> Result<Option<Held>, AuthError> {
    let unusable = |e: std::io::Error| {
        tracing::warn!(path = %path.display(), error = %e, "the sign-in's lock file cannot be used; refreshing without it");
        Ok(None)
    };
    let file = match open_lock_file(path) {
        Ok(file) => file,
        Err(Unfit::NotPrivate(e)) => return Err(e),
        Err(Unfit::Unusable(e)) => return unusable(e),
    };
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(Held { _file: file })),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(POLL)
            }
            Err(TryLockError::WouldBlock) => {
                return Err(AuthError::Busy(format!(
                    "another program has been refreshing this sign-in for {} seconds",
                    wait.as_secs()
                )))
            }
            Err(TryLockError::Error(e)) => return unusable(e),
        }
    }
}

/// Where the shared folder is, checked as far as it exists, but not made.
fn shared_location() -> Result<Option<PathBuf>, AuthError> {
    #[cfg(unix)]
    {
        let uid = current_uid();
        let runtime = Path::new("/run/user").join(uid.to_string());
        locate(&runtime, home_of(uid).as_deref(), uid)
    }
    #[cfg(not(unix))]
    {
        Ok(dirs::runtime_dir()
            .or_else(dirs::cache_dir)
            .map(|dir| dir.join(FOLDER)))
    }
}

/// The shared folder of the user `uid`, given where its runtime folder would be and its home:
/// `<runtime>/logto-native` when `runtime` is a real folder of `uid`'s alone, else
/// `<home>/.cache/logto-native`. What of it exists must be `uid`'s and no symlink.
///
/// No home (no password database entry, as for a container's made-up uid) gives `None` rather
/// than `dirs::cache_dir()`: that folder comes from `HOME` and `XDG_CACHE_HOME`, and two programs
/// of one user could still pick two of them. Going without the lock is at least said out loud.
#[cfg(unix)]
fn locate(runtime: &Path, home: Option<&Path>, uid: u32) -> Result<Option<PathBuf>, AuthError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Not followed: a symlink here could lead anywhere, and the system makes a real folder.
    let private = std::fs::symlink_metadata(runtime).is_ok_and(|meta| {
        meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0
    });
    if private {
        let dir = runtime.join(FOLDER);
        check_existing(&dir, Kind::Folder, uid)?;
        return Ok(Some(dir));
    }
    let Some(home) = home else {
        tracing::warn!(
            uid,
            "this user has no home in the password database: the sign-in's lock is not shared"
        );
        return Ok(None);
    };
    // The home itself is the system's to say; `.cache` and below are where the lock depends on
    // this user alone. `.cache` may have any mode a user gave it.
    let cache = home.join(".cache");
    check_existing(&cache, Kind::Folder, uid)?;
    let dir = cache.join(FOLDER);
    check_existing(&dir, Kind::Folder, uid)?;
    Ok(Some(dir))
}

/// This process's real user id.
#[cfg(unix)]
fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The home folder of user `uid` in the password database (`HOME` is the environment's, and may
/// be another user's after `sudo`, or unset). nix's lookup grows its buffer for long entries.
#[cfg(unix)]
fn home_of(uid: u32) -> Option<PathBuf> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    user.dir.is_absolute().then_some(user.dir)
}

/// What a checked path is, for the words of a refusal.
#[cfg(unix)]
#[derive(Clone, Copy)]
enum Kind {
    Folder,
    File,
}

/// Why a lock (or the shared folder) is not used.
#[derive(Debug)]
enum Unfit {
    /// It is not this user's alone: someone else could hold or move it. Reported.
    NotPrivate(AuthError),
    /// It cannot be made or locked (read-only, no locks, not a folder): gone without.
    Unusable(std::io::Error),
}

impl From<AuthError> for Unfit {
    fn from(e: AuthError) -> Self {
        Unfit::NotPrivate(e)
    }
}

/// Refuses a path that is a symlink or another user's, going by `meta` (not followed).
#[cfg(unix)]
fn judge(meta: &std::fs::Metadata, path: &Path, kind: Kind, uid: u32) -> Result<(), AuthError> {
    use std::os::unix::fs::MetadataExt;
    let what = match kind {
        Kind::Folder => "folder",
        Kind::File => "file",
    };
    if meta.file_type().is_symlink() {
        return Err(AuthError::LockNotPrivate(format!(
            "the {what} {} is a symlink, which could lead anywhere; remove the symlink (the app makes the {what} itself)",
            path.display()
        )));
    }
    if meta.uid() != uid {
        return Err(AuthError::LockNotPrivate(format!(
            "the {what} {} is owned by another user (uid {}); remove it, or ask an administrator to",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// [`judge`] on what is at `path` now, if anything.
#[cfg(unix)]
fn check_existing(path: &Path, kind: Kind, uid: u32) -> Result<(), AuthError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => judge(&meta, path, kind, uid),
        // Missing (made later), or unreadable (then unusable, found out when it is used).
        Err(_) => Ok(()),
    }
}

/// Opens the folder `dir`, made 0700 (with what is missing above it) if missing, and checks that
/// it is this user's and no symlink. A looser mode is tightened to 0700 rather than refused: an
/// older version made the folder with the umask's mode, and a folder of this user's is theirs to
/// tighten.
#[cfg(unix)]
fn open_folder(dir: &Path) -> Result<File, Unfit> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let uid = current_uid();
    if let Err(e) = std::fs::symlink_metadata(dir) {
        if e.kind() == std::io::ErrorKind::NotFound {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(Unfit::Unusable)?;
        }
    }
    // Opened without following a symlink, then checked by what was opened: a folder swapped in
    // after a check by path cannot stand in for the one checked.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir);
    let folder = match opened {
        Ok(folder) => folder,
        Err(e) => {
            // A symlink fails with ELOOP or ENOTDIR; say so rather than go without the lock.
            check_existing(dir, Kind::Folder, uid)?;
            return Err(Unfit::Unusable(e));
        }
    };
    let meta = folder.metadata().map_err(Unfit::Unusable)?;
    judge(&meta, dir, Kind::Folder, uid)?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::info!(path = %dir.display(), "making the sign-in's lock folder this user's alone (0700)");
        if let Err(e) = folder.set_permissions(std::fs::Permissions::from_mode(0o700)) {
            // The lock file is 0600 whatever the folder's mode; only its name shows.
            tracing::warn!(path = %dir.display(), error = %e, "could not tighten the sign-in's lock folder");
        }
    }
    Ok(folder)
}

/// Opens (or makes, 0600) the lock file at `path` inside its folder, by the folder's descriptor
/// and without following a symlink, and checks that it is this user's.
#[cfg(unix)]
fn open_lock_file(path: &Path) -> Result<File, Unfit> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let invalid = || Unfit::Unusable(std::io::ErrorKind::InvalidInput.into());
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(invalid());
    };
    let folder = open_folder(dir)?;
    let name = std::ffi::CString::new(name.as_bytes()).map_err(|_| invalid())?;
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let mode: libc::c_uint = 0o600;
    // SAFETY: `folder` is an open descriptor for the whole call and `name` a NUL-terminated
    // string of ours; the mode is the variadic argument O_CREAT asks for.
    let fd = unsafe { libc::openat(folder.as_raw_fd(), name.as_ptr(), flags, mode) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        // A symlink (ELOOP), or another user's file this user may not open (EACCES).
        check_existing(path, Kind::File, current_uid())?;
        return Err(Unfit::Unusable(e));
    }
    // SAFETY: `fd` was just opened by this call and nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let meta = file.metadata().map_err(Unfit::Unusable)?;
    judge(&meta, path, Kind::File, current_uid())?;
    if meta.permissions().mode() & 0o077 != 0 {
        // Made by an older version with a looser mode: this user's, so made private again.
        if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "could not tighten the sign-in's lock file");
        }
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> Result<File, Unfit> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Unfit::Unusable)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Unfit::Unusable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("entry.lock");
        let lock = EntryLock::new(path.clone()).with_wait(Duration::from_millis(100));
        let held = lock.acquire().await.unwrap().expect("locked");
        // Another open file description (as another process would have) waits, then gives up.
        let error = lock.acquire().await.unwrap_err();
        assert_eq!(error.code(), "session.busy");
        drop(held);
        assert!(lock.acquire().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_lock_file_that_cannot_be_made_locks_nothing_and_fails_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, b"").unwrap();
        let lock = EntryLock::new(blocker.join("entry.lock"));
        assert!(lock.acquire().await.unwrap().is_none());
    }

    #[test]
    fn the_default_path_names_no_tenant() {
        let path =
            EntryLock::default_path("logto-desktop", "https://tenant.example.com/oidc", "app-1")
                .unwrap()
                .unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !name.contains("tenant") && name.ends_with(".lock"),
            "{name}"
        );
        assert_ne!(
            path,
            EntryLock::default_path("logto-desktop", "https://tenant.example.com/oidc", "app-2")
                .unwrap()
                .unwrap()
        );
        // Another program's entry for the same tenant and app has a lock of its own.
        assert_ne!(
            path,
            EntryLock::default_path(
                "another-program",
                "https://tenant.example.com/oidc",
                "app-1"
            )
            .unwrap()
            .unwrap()
        );
    }

    #[cfg(unix)]
    mod unix {
        use super::super::*;
        use std::os::unix::fs::{symlink, PermissionsExt};

        fn mode(path: &Path) -> u32 {
            std::fs::symlink_metadata(path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        }

        fn chmod(path: &Path, mode: u32) {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }

        /// A sandbox with `run` (a runtime folder of `run_mode`, this user's) and `home` (empty).
        fn sandbox(run_mode: u32) -> (tempfile::TempDir, PathBuf, PathBuf) {
            let root = tempfile::tempdir().unwrap();
            let (run, home) = (root.path().join("run"), root.path().join("home"));
            std::fs::create_dir(&run).unwrap();
            std::fs::create_dir(&home).unwrap();
            chmod(&run, run_mode);
            (root, run, home)
        }

        fn in_home(home: &Path) -> Option<PathBuf> {
            Some(home.join(".cache").join("logto-native"))
        }

        /// The words of a refusal, once its code is checked.
        fn refusal(error: AuthError) -> String {
            assert_eq!(error.code(), "lock.not_private", "{error}");
            error.to_string()
        }

        /// Gives `path` to uid 65534 (nobody), which only root may do; false when not root.
        fn give_away(path: &Path) -> bool {
            if current_uid() != 0 {
                eprintln!("skipped: only root can give a file to another user");
                return false;
            }
            std::os::unix::fs::lchown(path, Some(65534), Some(65534)).unwrap();
            true
        }

        #[test]
        fn issue_17_a_runtime_folder_of_this_users_alone_holds_the_lock() {
            let (_root, run, home) = sandbox(0o700);
            let dir = locate(&run, Some(&home), current_uid()).unwrap();
            assert_eq!(dir, Some(run.join("logto-native")));
        }

        #[test]
        fn issue_17_a_runtime_folder_others_may_enter_is_passed_over_for_the_home() {
            for open in [0o755, 0o750, 0o701, 0o710] {
                let (_root, run, home) = sandbox(open);
                let dir = locate(&run, Some(&home), current_uid()).unwrap();
                assert_eq!(dir, in_home(&home), "{open:o}");
            }
        }

        #[test]
        fn issue_17_a_symlink_to_a_private_runtime_folder_is_passed_over_for_the_home() {
            let (root, run, home) = sandbox(0o700);
            let link = root.path().join("run-link");
            symlink(&run, &link).unwrap();
            let dir = locate(&link, Some(&home), current_uid()).unwrap();
            assert_eq!(dir, in_home(&home));
        }

        #[test]
        fn issue_17_a_runtime_folder_of_another_user_or_none_is_passed_over_for_the_home() {
            let (root, run, home) = sandbox(0o700);
            // The folder is this process's user's; asked for another user, it is not theirs.
            let other = current_uid().wrapping_add(1);
            assert_eq!(locate(&run, Some(&home), other).unwrap(), in_home(&home));
            let missing = root.path().join("no-run");
            let dir = locate(&missing, Some(&home), current_uid()).unwrap();
            assert_eq!(dir, in_home(&home));
        }

        #[test]
        fn issue_17_without_a_runtime_folder_or_a_home_nothing_is_shared() {
            let (root, _run, _home) = sandbox(0o700);
            let missing = root.path().join("no-run");
            assert_eq!(locate(&missing, None, current_uid()).unwrap(), None);
        }

        #[test]
        fn issue_17_a_symlinked_or_foreign_cache_folder_is_refused_by_name() {
            let (root, run, home) = sandbox(0o755);
            let cache = home.join(".cache");
            let elsewhere = root.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            symlink(&elsewhere, &cache).unwrap();
            let words = refusal(locate(&run, Some(&home), current_uid()).unwrap_err());
            assert!(
                words.contains(&format!("{} is a symlink", cache.display())),
                "{words}"
            );

            std::fs::remove_file(&cache).unwrap();
            std::fs::create_dir(&cache).unwrap();
            // A `.cache` of any mode is fine when it is the user's own.
            chmod(&cache, 0o755);
            assert_eq!(
                locate(&run, Some(&home), current_uid()).unwrap(),
                in_home(&home)
            );
            let other = current_uid().wrapping_add(1);
            let words = refusal(locate(&run, Some(&home), other).unwrap_err());
            assert!(
                words.contains(&format!(
                    "{} is owned by another user (uid {})",
                    cache.display(),
                    current_uid()
                )),
                "{words}"
            );
        }

        #[test]
        fn issue_17_a_symlinked_shared_folder_in_the_runtime_folder_is_refused_by_name() {
            let (root, run, home) = sandbox(0o700);
            let elsewhere = root.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            let dir = run.join("logto-native");
            symlink(&elsewhere, &dir).unwrap();
            let words = refusal(locate(&run, Some(&home), current_uid()).unwrap_err());
            assert!(words.contains(&dir.display().to_string()), "{words}");
        }

        #[test]
        fn issue_17_the_shared_folder_and_what_it_is_made_in_are_made_0700() {
            let (_root, _run, home) = sandbox(0o700);
            let dir = home.join(".cache").join("logto-native");
            open_folder(&dir).map(drop).unwrap();
            assert_eq!(mode(&home.join(".cache")), 0o700);
            assert_eq!(mode(&dir), 0o700);

            // A `.cache` the user made is left as it is; only the app's folder is made private.
            let (_root, _run, home) = sandbox(0o700);
            std::fs::create_dir(home.join(".cache")).unwrap();
            chmod(&home.join(".cache"), 0o755);
            let dir = home.join(".cache").join("logto-native");
            open_folder(&dir).map(drop).unwrap();
            assert_eq!(mode(&home.join(".cache")), 0o755);
            assert_eq!(mode(&dir), 0o700);
        }

        #[test]
        fn issue_17_where_the_folder_is_comes_from_the_user_id_alone() {
            let uid = current_uid();
            let runtime = PathBuf::from(format!("/run/user/{uid}"));
            let expected = locate(&runtime, home_of(uid).as_deref(), uid).unwrap();
            assert_eq!(shared_location().unwrap(), expected);
            let lock = EntryLock::default_path(
                "logto-desktop",
                "https://tenant.example.com/oidc",
                "app-1",
            )
            .unwrap();
            assert_eq!(lock.as_deref().and_then(Path::parent), expected.as_deref());
        }

        #[test]
        fn the_user_id_is_the_one_that_owns_what_this_process_makes() {
            use std::os::unix::fs::MetadataExt;
            let made = tempfile::NamedTempFile::new().unwrap();
            assert_eq!(current_uid(), made.as_file().metadata().unwrap().uid());
        }

        #[test]
        fn issue_17_the_home_is_the_password_databases() {
            let uid = current_uid();
            let home = home_of(uid).expect("this user has a home");
            assert!(home.is_absolute(), "{}", home.display());
            // Where /etc/passwd lists this user (not LDAP or the like), it says the same.
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let listed = passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 7 && fields[2] == uid.to_string()).then(|| fields[5].to_string())
            });
            if let Some(listed) = listed {
                assert_eq!(home, PathBuf::from(listed));
            }
            assert_eq!(home_of(3_999_999_999), None, "a uid no one has");
        }

        #[tokio::test]
        async fn issue_16_the_lock_file_is_this_users_and_never_opened_through_a_symlink() {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join("made");
            let path = folder.join("entry.lock");
            let held = EntryLock::new(path.clone()).acquire().await.unwrap();
            assert!(held.is_some());
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&folder), 0o700);
            drop(held);

            // A symlink at the lock's path: no file is made where it points, nothing is locked
            // there, and the refusal names the path.
            let target = dir.path().join("elsewhere");
            let link = folder.join("linked.lock");
            symlink(&target, &link).unwrap();
            let error = EntryLock::new(link.clone()).acquire().await.unwrap_err();
            let words = refusal(error);
            assert!(
                words.contains(&format!("the file {} is a symlink", link.display())),
                "{words}"
            );
            assert!(!target.exists(), "created through the symlink");
        }

        #[tokio::test]
        async fn issue_17_a_lock_folder_reached_through_a_symlink_is_refused_by_name() {
            let dir = tempfile::tempdir().unwrap();
            let real = dir.path().join("real");
            std::fs::create_dir(&real).unwrap();
            chmod(&real, 0o700);
            // A symlink to a folder, and one to nowhere (which the app must not make).
            for target in [real.clone(), dir.path().join("nowhere")] {
                let link = dir.path().join("linked");
                let _ = std::fs::remove_file(&link);
                symlink(&target, &link).unwrap();
                let error = EntryLock::new(link.join("entry.lock"))
                    .acquire()
                    .await
                    .unwrap_err();
                let words = refusal(error);
                assert!(
                    words.contains(&format!("the folder {} is a symlink", link.display())),
                    "{words}"
                );
                assert!(
                    !target.join("entry.lock").exists(),
                    "made through the symlink"
                );
            }
            assert!(!dir.path().join("nowhere").exists());
        }

        #[tokio::test]
        async fn issue_17_a_lock_file_or_folder_of_another_user_is_refused_by_name() {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join("logto-native");
            let path = folder.join("entry.lock");
            drop(EntryLock::new(path.clone()).acquire().await.unwrap());
            if !give_away(&path) {
                return;
            }
            let words = refusal(EntryLock::new(path.clone()).acquire().await.unwrap_err());
            assert!(
                words.contains(&format!(
                    "the file {} is owned by another user (uid 65534)",
                    path.display()
                )),
                "{words}"
            );

            std::fs::remove_file(&path).unwrap();
            give_away(&folder);
            let words = refusal(EntryLock::new(path.clone()).acquire().await.unwrap_err());
            assert!(
                words.contains(&format!(
                    "the folder {} is owned by another user (uid 65534)",
                    folder.display()
                )),
                "{words}"
            );
            assert!(!path.exists(), "no lock file made in another user's folder");
        }

        #[tokio::test]
        async fn issue_17_an_older_looser_lock_folder_and_file_of_this_users_are_tightened() {
            let (_dir, folder, path) = made_by_an_older_version();
            chmod(&folder, 0o755);
            chmod(&path, 0o644);
            assert!(EntryLock::new(path.clone())
                .acquire()
                .await
                .unwrap()
                .is_some());
            assert_eq!(mode(&folder), 0o700);
            assert_eq!(mode(&path), 0o600);
        }

        /// A lock folder and an empty lock file in it, as an older version left them: the
        /// temp folder that holds them, the folder, the file.
        fn made_by_an_older_version() -> (tempfile::TempDir, PathBuf, PathBuf) {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join("logto-native");
            let path = folder.join("entry.lock");
            std::fs::create_dir(&folder).unwrap();
            std::fs::write(&path, b"").unwrap();
            (dir, folder, path)
        }

        /// Tightening takes away what others may do, and never gives this user more than they
        /// left themselves: a folder they made read-only and a write-only lock file stay so.
        #[tokio::test]
        async fn a_lock_folder_and_file_private_already_are_left_as_they_are() {
            let (_dir, folder, path) = made_by_an_older_version();
            chmod(&path, 0o200);
            chmod(&folder, 0o500);
            let held = EntryLock::new(path.clone()).acquire().await;
            // Made writable again before any assertion, so that the temp folder can go.
            let (folder_mode, file_mode) = (mode(&folder), mode(&path));
            chmod(&folder, 0o700);
            assert!(held.unwrap().is_some(), "the existing file is locked");
            assert_eq!(folder_mode, 0o500);
            assert_eq!(file_mode, 0o200);
        }
    }
}
