//! The one atomic writer: every file presize makes (outputs, manifests, reports) is written to
//! a hidden temporary file in its destination folder, flushed, then renamed into place, so an
//! interrupt, a full disk or a failure never leaves a truncated file under the final name.
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
    /// Sync the file to disk before the rename (a manifest, which later runs trust).
    pub sync: bool,
    /// `--keep-mtime`: the modification time the file gets before it is renamed into place
    /// (so it never appears with another one).
    pub mtime: Option<SystemTime>,
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
            sync: false,
            mtime: None,
        }
    }
}

/// Writes `bytes` to `target.dst` atomically: a hidden temporary file in the same folder,
/// flushed, then renamed over the destination. On any error the temporary file is removed and
/// the destination is untouched. A symlink at the destination is replaced, never written
/// through.
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
        if target.sync {
            tmp.as_file()
                .sync_all()
                .map_err(|e| JobError::io("cannot write output", e))?;
        }
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
        persisted.map_err(|e| JobError::io("cannot move output into place", e.error))
    })();
    in_flight().remove(&tmp_path);
    result
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
            sync: false,
            mtime: None,
        };
        write_atomic(&target(false), b"abc").unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"abc");
        assert!(
            write_atomic(&target(false), b"xyz").is_err(),
            "no clobber without replace"
        );
        assert_eq!(fs::read(&dst).unwrap(), b"abc");
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
