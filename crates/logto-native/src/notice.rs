//! The change notice: how programs sharing a keychain entry learn that another one changed it.
//! After a program saves or removes the entry (a sign-in, a refresh's rotated token, a sign-out),
//! it rewrites a small file beside the entry's lock, `<lock name>.changed`, holding only who wrote
//! it. A program that follows the others (the window) watches the folder with the OS's file
//! events (inotify on Linux, through `notify`) and then reads the entry once: no polling of Logto,
//! no reading of the keychain in a loop. The folder is the user's own (0700, see [`crate::lock`]),
//! so no one else can write a notice; a notice says only "look again", never what changed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::error::AuthError;

/// Tells services apart within one process (tests run several), beside the process id.
static NEXT_WRITER: AtomicU64 = AtomicU64::new(0);

/// One service's notice file, and its name as a writer.
#[derive(Debug, Clone)]
pub(crate) struct ChangeNotice {
    path: PathBuf,
    writer: String,
}

/// Keeps the folder watched while held; notices from other writers arrive on `changes`.
pub(crate) struct Following {
    pub(crate) watcher: notify::RecommendedWatcher,
    pub(crate) changes: mpsc::Receiver<()>,
}

impl ChangeNotice {
    /// The notice of the entry whose lock file is `lock`.
    pub(crate) fn beside(lock: &Path) -> Self {
        ChangeNotice {
            path: lock.with_extension("changed"),
            writer: format!(
                "{}.{}",
                std::process::id(),
                NEXT_WRITER.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// Says the entry changed. Best effort: when the file cannot be written, the others learn at
    /// their next use of the entry, as they always do (each refresh reads it under the lock).
    pub(crate) fn tell(&self) {
        self.tell_why(None);
    }

    /// [`Self::tell`], saying why when it is worth showing: `ended` when Logto ended the sign-in
    /// and this program found out (the others then say so, not just "signed out elsewhere").
    pub(crate) fn tell_why(&self, why: Option<&str>) {
        let text = match why {
            Some(why) => format!("{} {why}\n", self.writer),
            None => format!("{}\n", self.writer),
        };
        if let Err(e) = crate::config::write_atomically(&self.path, text.as_bytes()) {
            tracing::info!(path = %self.path.display(), error = %e, "could not tell other programs that the sign-in changed");
        }
    }

    /// Whether the notice file was last written by another service than this one. An unreadable
    /// or missing file counts as another's: looking again costs one read of the entry.
    fn written_by_another(&self) -> bool {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text.split_whitespace().next() != Some(self.writer.as_str()),
            Err(_) => true,
        }
    }

    /// Why the last change was made, when its writer said (see [`Self::tell_why`]).
    pub(crate) fn why(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        text.split_whitespace().nth(1).map(str::to_string)
    }

    /// Starts watching for other programs' notices. Each burst of file events becomes at most one
    /// message on `changes` (the channel holds one), and this service's own notices none.
    pub(crate) fn follow(&self) -> Result<Following, AuthError> {
        let folder = self
            .path
            .parent()
            .ok_or_else(|| AuthError::Config("the change notice has no folder".into()))?;
        crate::config::create_private_dir_all(folder).map_err(|e| {
            AuthError::Config(format!(
                "the folder {} for change notices could not be made ({e})",
                folder.display()
            ))
        })?;
        let (sender, changes) = mpsc::channel(1);
        let notice = self.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                tracing::trace!(kind = ?event.kind, paths = ?event.paths, "a file event beside the entry lock");
                let ours = event.paths.iter().any(|p| p == &notice.path);
                let written = !matches!(event.kind, EventKind::Access(_) | EventKind::Remove(_));
                if ours && written && notice.written_by_another() {
                    // Full means a look is already due: this change is covered by it.
                    let _ = sender.try_send(());
                }
            })
            .map_err(|e| watch_error(folder, e))?;
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(folder, e))?;
        Ok(Following { watcher, changes })
    }
}

fn watch_error(folder: &Path, e: notify::Error) -> AuthError {
    AuthError::Config(format!(
        "changes other programs make to the sign-in cannot be followed: {} could not be watched ({e})",
        folder.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The promise: another program's change is known within a second.
    const WITHIN: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_notice_from_another_writer_arrives_and_ones_own_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("entry.lock");
        let window = ChangeNotice::beside(&lock);
        let script = ChangeNotice::beside(&lock);
        let mut following = window.follow().unwrap();

        window.tell();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), following.changes.recv())
                .await
                .is_err(),
            "its own notice woke the window"
        );
        script.tell();
        tokio::time::timeout(WITHIN, following.changes.recv())
            .await
            .expect("another program's notice did not arrive within a second")
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("entry.changed")).unwrap(),
            format!("{}\n", script.writer)
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_notice_is_this_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let notice = ChangeNotice::beside(&dir.path().join("made").join("entry.lock"));
        notice.tell();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("made/entry.changed")), 0o600);
        assert_eq!(mode(&dir.path().join("made")), 0o700);
    }
}
