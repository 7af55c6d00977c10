//! One build per manifest at a time. Two runs sharing a manifest (a CI matrix that starts the
//! same build twice) would each save the manifest they started from, and the second save would
//! drop the first run's records. So a run with `--manifest` holds an advisory lock (`flock`)
//! on `.NAME.lock` beside the manifest from before it reads the manifest until after it has
//! saved it; a second run waits, then reads the manifest the first one saved, and redoes
//! nothing that run made.
//!
//! The lock file is removed as the holder finishes, while it still holds the lock. A waiter
//! that then gets the lock of the removed file sees that the path no longer names that file and
//! starts again, so two runs never both hold the lock. A run killed outright leaves the file
//! behind, but not the lock: the kernel releases it with the process.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a waiting run checks the lock (and its stop conditions: Ctrl-C, `--timeout`).
const POLL: Duration = Duration::from_millis(50);

/// The lock of one manifest, held until dropped.
#[derive(Debug)]
pub(crate) struct ManifestLock {
    /// Open for as long as the lock is held; closing it releases the lock.
    file: File,
    path: PathBuf,
}

/// Who holds a manifest's lock, as the waiting run tells the user.
pub(crate) struct Holder<'a> {
    /// The lock file.
    pub(crate) lock: &'a Path,
    /// The holder's process id, if it wrote one.
    pub(crate) pid: Option<u32>,
}

impl ManifestLock {
    /// Takes the lock of `manifest`. If another run holds it, calls `waiting` once and waits,
    /// checking `give_up` every 50 ms; returns `None` if that said to stop waiting.
    pub(crate) fn acquire(
        manifest: &Path,
        waiting: impl FnOnce(Holder<'_>),
        give_up: impl Fn() -> bool,
    ) -> io::Result<Option<ManifestLock>> {
        let path = lock_path(manifest);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut waiting = Some(waiting);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(TryLockError::WouldBlock) => {
                        if let Some(waiting) = waiting.take() {
                            waiting(Holder {
                                lock: &path,
                                pid: read_pid(&mut file),
                            });
                        }
                        if give_up() {
                            return Ok(None);
                        }
                        std::thread::sleep(POLL);
                    }
                    Err(TryLockError::Error(e)) => return Err(e),
                }
            }
            if still_named(&file, &path) {
                // Who holds it, for the message of the next run that waits.
                file.set_len(0)?;
                file.rewind()?;
                writeln!(file, "{}", std::process::id())?;
                return Ok(Some(ManifestLock { file, path }));
            }
            // The run before removed this file as it finished: lock the one now at the path.
        }
    }
}

impl Drop for ManifestLock {
    fn drop(&mut self) {
        // Removed while still locked (the file closes after this), see the module header.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// `.NAME.lock` beside the manifest `NAME`.
pub(crate) fn lock_path(manifest: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(manifest.file_name().unwrap_or(manifest.as_os_str()));
    name.push(".lock");
    manifest.with_file_name(name)
}

/// Whether `path` still names the open `file` (the holder before may have removed it).
fn still_named(file: &File, path: &Path) -> bool {
    let (Ok(open), Ok(named)) = (
        file.try_clone().and_then(same_file::Handle::from_file),
        same_file::Handle::from_path(path),
    ) else {
        return false;
    };
    open == named
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_lock_file_sits_hidden_beside_the_manifest() {
        assert_eq!(
            lock_path(Path::new("public/img.json")),
            Path::new("public/.img.json.lock")
        );
        assert_eq!(lock_path(Path::new("m.json")), Path::new(".m.json.lock"));
    }

    #[test]
    fn a_second_holder_waits_names_the_first_and_gets_the_lock_when_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.json");
        let first = ManifestLock::acquire(&manifest, |_| panic!("free"), || false)
            .unwrap()
            .expect("free lock");
        let told = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                ManifestLock::acquire(
                    &manifest,
                    |holder| {
                        assert_eq!(holder.pid, Some(std::process::id()));
                        told.fetch_add(1, Ordering::SeqCst);
                    },
                    || false,
                )
                .unwrap()
                .expect("never gives up")
            });
            std::thread::sleep(Duration::from_millis(200));
            assert!(!waiter.is_finished(), "the second holder must wait");
            drop(first);
            let second = waiter.join().unwrap();
            assert_eq!(told.load(Ordering::SeqCst), 1, "told once that it waits");
            assert!(lock_path(&manifest).exists(), "held again");
            drop(second);
        });
        assert!(!lock_path(&manifest).exists(), "removed by the last holder");
    }

    #[test]
    fn a_waiter_that_gives_up_returns_none_and_the_holder_keeps_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.json");
        let _held = ManifestLock::acquire(&manifest, |_| {}, || false)
            .unwrap()
            .unwrap();
        let gave_up = ManifestLock::acquire(&manifest, |_| {}, || true).unwrap();
        assert!(gave_up.is_none());
        assert!(lock_path(&manifest).exists());
    }
}
