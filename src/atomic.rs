//! The one atomic writer: every file presize makes (outputs, manifests, reports) is written to
//! a hidden temporary file in its destination folder, flushed, then renamed into place, so an
//! interrupt, a full disk or a failure never leaves a truncated file under the final name.
//! [`Durability`] adds the power cut: the file's data reaches the disk before the rename
//! (`fsync`), and the folder after it, so a file appears under its name only complete.
//!
//! Called by the pipeline's write stage, the manifest and the HTML report.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use crate::error::JobError;

/// Temporary files being written right now, so that an immediate exit (second Ctrl-C) can
/// remove them instead of leaving `.presize-*.part` files behind.
static IN_FLIGHT: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Mutex::default);

fn in_flight() -> std::sync::MutexGuard<'static, HashSet<PathBuf>> {
    IN_FLIGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every temporary output still being written. Called just before an abrupt exit.
pub fn remove_in_flight() {
    for path in in_flight().drain() {
        let _ = fs::remove_file(path);
    }
}

/// Where and how one output is written.
#[derive(Clone, Copy)]
pub(crate) struct WriteTarget<'a> {
    /// The final path.
    pub dst: &'a Path,
    /// Whether an existing `dst` may be replaced; if false, one that appeared meanwhile wins.
    pub replace: bool,
    /// A canonical folder the output must stay inside, checked after its parent folders are
    /// created, so that a symlinked sub-folder cannot carry the write elsewhere.
    pub confine_to: Option<&'a Path>,
    /// `--in-place`: copy this file's permissions onto the new file.
    pub keep_permissions_of: Option<&'a Path>,
    /// Asked just before the rename: true means the write is no longer wanted (the pool's
    /// watchdog gave up on the job), and nothing appears under `dst`.
    pub abandoned: Option<&'a (dyn Fn() -> bool + Sync)>,
    /// How much of the write must be on disk when `write_atomic` returns.
    pub sync: Durability,
    /// `--keep-mtime`: the modification time the file gets before it is renamed into place
    /// (so it never appears with another one).
    pub mtime: Option<SystemTime>,
}

/// How far a write must reach the disk before [`write_atomic`] returns. The order is what
/// makes a power cut harmless: the data is synced before the rename, so whatever name the file
/// has after the cut, its content is complete (SQLite and git order their writes the same way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Renamed into place; the kernel writes it back when it likes (`--no-sync`, reports).
    /// After a power cut the name may hold an empty or partial file.
    Lazy,
    /// `fsync` of the file before the rename (the default): after a power cut the name holds
    /// either the complete new file or what it held before (or nothing, if the rename was
    /// lost).
    #[default]
    File,
    /// As `File`, and `fsync` of the folder after the rename, so the new name itself survives
    /// a power cut (`--in-place`, the manifest).
    FileAndFolder,
}

impl<'a> WriteTarget<'a> {
    /// A plain file (such as a report) that may replace an older one.
    pub(crate) fn replacing(dst: &'a Path) -> Self {
        WriteTarget {
            dst,
            replace: true,
            confine_to: None,
            keep_permissions_of: None,
            abandoned: None,
            sync: Durability::Lazy,
            mtime: None,
        }
    }
}

/// Writes `bytes` to `target.dst` atomically: a hidden temporary file in the same folder,
/// flushed (and synced, as `target.sync` asks), then renamed over the destination (and the
/// folder synced). On any error the temporary file is removed and the destination is untouched.
/// A symlink at the destination is replaced, never written through. Without `replace`, a file
/// that appeared at `dst` meanwhile with exactly these bytes counts as this write.
pub(crate) fn write_atomic(target: &WriteTarget<'_>, bytes: &[u8]) -> Result<(), JobError> {
    let dst = target.dst;
    let dir = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| JobError::io("cannot create output folder", e))?;
    if let Some(root) = target.confine_to {
        let real = dir
            .canonicalize()
            .map_err(|e| JobError::io("cannot resolve output folder", e))?;
        if !real.starts_with(root) {
            return Err(JobError::Conflict(format!(
                "output folder {} leads to {} outside the output folder (a symbolic link?); refusing to write there",
                dir.display(),
                real.display()
            )));
        }
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".presize-").suffix(".part");
    // Temporary files are private by default; an output is an ordinary new file, readable as
    // the umask allows (a web server must be able to serve it).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| JobError::io("cannot create temporary output file", e))?;
    let tmp_path = tmp.path().to_path_buf();
    in_flight().insert(tmp_path.clone());
    let result = (|| {
        tmp.write_all(bytes)
            .map_err(|e| JobError::io("cannot write output", e))?;
        // Flush explicitly: an error surfacing only at close would otherwise be lost.
        tmp.flush()
            .map_err(|e| JobError::io("cannot write output", e))?;
        if let Some(original) = target.keep_permissions_of {
            let perms = fs::metadata(original)
                .map_err(|e| JobError::io("cannot read the original's permissions", e))?
                .permissions();
            fs::set_permissions(&tmp_path, perms)
                .map_err(|e| JobError::io("cannot set the output's permissions", e))?;
        }
        if let Some(mtime) = target.mtime {
            tmp.as_file()
                .set_modified(mtime)
                .map_err(|e| JobError::io("cannot set the output's modification time", e))?;
        }
        // Last, so that the permissions and time set above reach the disk with the data.
        if target.sync != Durability::Lazy {
            tmp.as_file()
                .sync_all()
                .map_err(|e| JobError::io("cannot sync output to disk", e))?;
        }
        pause_before_rename();
        if target.abandoned.is_some_and(|abandoned| abandoned()) {
            // The watchdog gave up on this image while it was being written: it was reported
            // as timed out, so it must not appear now (the temporary file is removed on drop).
            return Err(JobError::Abandoned);
        }
        let persisted = if target.replace {
            tmp.persist(dst).map(drop)
        } else {
            tmp.persist_noclobber(dst).map(drop)
        };
        match persisted {
            Ok(()) => Ok(()),
            // Another process (a second presize run on the same tree) wrote this output since
            // the job began; outputs depend only on input and settings, so equal bytes mean
            // this write is done. Different bytes are a real conflict: the other file stays.
            Err(e)
                if e.error.kind() == std::io::ErrorKind::AlreadyExists
                    && fs::read(dst).is_ok_and(|there| there == bytes) =>
            {
                Ok(())
            }
            Err(e) => Err(JobError::io("cannot move output into place", e.error)),
        }
    })();
    in_flight().remove(&tmp_path);
    result?;
    if target.sync == Durability::FileAndFolder {
        sync_folder(dir).map_err(|e| JobError::io("cannot sync output folder to disk", e))?;
    }
    Ok(())
}

/// Debug builds only: `PRESIZE_TEST_PAUSE_BEFORE_RENAME_MS` holds every write for that long
/// with its temporary file complete but not yet renamed, so that the tests can send a signal,
/// or start a second run, at exactly that moment. Release builds ignore it.
fn pause_before_rename() {
    #[cfg(debug_assertions)]
    {
        static PAUSE: LazyLock<Option<std::time::Duration>> = LazyLock::new(|| {
            let ms = std::env::var("PRESIZE_TEST_PAUSE_BEFORE_RENAME_MS").ok()?;
            Some(std::time::Duration::from_millis(ms.parse().ok()?))
        });
        if let Some(pause) = *PAUSE {
            std::thread::sleep(pause);
        }
    }
}

/// `fsync` of a folder, which makes the names created or renamed in it durable. On Windows a
/// folder cannot be opened this way, and NTFS journals renames itself.
fn sync_folder(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("sub/out.bin");
        let target = |replace| WriteTarget {
            dst: &dst,
            replace,
            confine_to: None,
            keep_permissions_of: None,
            abandoned: None,
            sync: Durability::FileAndFolder,
            mtime: None,
        };
        write_atomic(&target(false), b"abc").unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"abc");
        assert!(
            write_atomic(&target(false), b"xyz").is_err(),
            "no clobber without replace"
        );
        assert_eq!(fs::read(&dst).unwrap(), b"abc");
        write_atomic(&target(false), b"abc")
            .expect("the same bytes already in place (another run made them) count as written");
        write_atomic(&target(true), b"xyz").unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"xyz");
        let names: Vec<_> = fs::read_dir(dst.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out.bin");
        let target = WriteTarget {
            abandoned: Some(&|| true),
            ..WriteTarget::replacing(&dst)
        };
        assert!(matches!(
            write_atomic(&target, b"abc"),
            Err(JobError::Abandoned)
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
