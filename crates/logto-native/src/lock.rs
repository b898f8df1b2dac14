//! The lock that keeps programs sharing one keychain entry from refreshing at the same time.
//!
//! Logto rotates the refresh token on every use and revokes the whole grant when a used one comes
//! back more than a few seconds later. The app's window and a `token` command in a script (or two
//! scripts) read the same entry; if both refreshed with the same refresh token, the second one
//! would end the sign-in everywhere. So "re-read the entry, refresh, store" and anything that
//! replaces or removes the entry runs under an exclusive lock on a file named after the entry, in
//! the user's runtime folder (or the cache folder where there is none). The operating system
//! releases the lock when the file is closed, also when a process dies holding it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

use crate::error::AuthError;

/// How long a program waits for another to finish with the entry. A refresh takes one request
/// (20 seconds at most) and a keychain write.
pub const WAIT: Duration = Duration::from_secs(60);

/// How often a waiting program tries again.
const POLL: Duration = Duration::from_millis(20);

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

    /// Where the lock of the entry for `issuer` and `app_id` lives: `$XDG_RUNTIME_DIR` on Linux,
    /// the cache folder elsewhere (or without one). Its name hashes the two, so it says nothing
    /// about the tenant to someone listing the folder.
    pub fn default_path(issuer: &str, app_id: &str) -> Option<PathBuf> {
        let dir = dirs::runtime_dir().or_else(dirs::cache_dir)?;
        let digest = sha2::Sha256::digest(format!("{issuer}\n{app_id}").as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join("logto-native").join(format!("{name}.lock")))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the lock, off the async threads. Errors if another program holds it for longer
    /// than the wait. A lock file that cannot be made or locked (a read-only folder, a file
    /// system without locks) gives `None` with a warning: the in-process lock and the re-read of
    /// the entry before each refresh still hold, and no token request fails over a lock file.
    pub async fn acquire(&self) -> Result<Option<Held>, AuthError> {
        let path = self.path.clone();
        let wait = self.wait;
        tokio::task::spawn_blocking(move || acquire_blocking(&path, wait))
            .await
            .map_err(|_| AuthError::Busy("the lock task failed".into()))?
    }
}

fn acquire_blocking(path: &Path, wait: Duration) -> Result<Option<Held>, AuthError> {
    let open = || -> std::io::Result<File> {
        if let Some(dir) = path.parent() {
            let mut folders = std::fs::DirBuilder::new();
            folders.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut folders, 0o700);
            folders.create(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        // This user's alone, and never through a symlink planted at the path (it would make the
        // app create or lock a file somewhere else).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        options.open(path)
    };
    let unusable = |e: std::io::Error| {
        tracing::warn!(path = %path.display(), error = %e, "the sign-in's lock file cannot be used; refreshing without it");
        Ok(None)
    };
    let file = match open() {
        Ok(file) => file,
        Err(e) => return unusable(e),
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

    #[cfg(unix)]
    #[tokio::test]
    async fn issue_16_the_lock_file_is_this_users_and_never_opened_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("made");
        let path = folder.join("entry.lock");
        let held = EntryLock::new(path.clone()).acquire().await.unwrap();
        assert!(held.is_some());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&folder), 0o700);
        drop(held);

        // A symlink at the lock's path: no file is made where it points, and nothing is locked
        // there (the refresh goes on without the lock, with a warning).
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("linked.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(EntryLock::new(link).acquire().await.unwrap().is_none());
        assert!(!target.exists(), "created through the symlink");
    }

    #[test]
    fn the_default_path_names_no_tenant() {
        let path = EntryLock::default_path("https://tenant.example.com/oidc", "app-1").unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !name.contains("tenant") && name.ends_with(".lock"),
            "{name}"
        );
        assert_ne!(
            path,
            EntryLock::default_path("https://tenant.example.com/oidc", "app-2").unwrap()
        );
    }
}
