//! Files fleet writes on the controller, with modes it sets itself. Logs hold every
//! command's output and the state repository every run and configuration snapshot, so
//! they are private (directories 0700, files 0600) whatever the umask (022 under cron
//! and most shells would make them readable by every local user).

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of fleet's private directories (logs, state, `.fleet`).
pub(crate) const PRIVATE_DIR: u32 = 0o700;
/// Mode of fleet's private files (a run's log, journal records, snapshots).
pub(crate) const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode 0700. Existing directories keep their
/// mode: fleet does not change what the user set.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// Creates (or truncates) `path` for writing, 0600 from its first byte.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)
}

/// `dir/.name.fleet-XXXXXXXX`: a temporary name beside `path`, so the rename that
/// replaces `path` stays on one filesystem.
fn temp_beside(path: &Path) -> (PathBuf, PathBuf) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.fleet-{:08x}", fastrand::u32(..)));
    (dir, tmp)
}

/// Replaces `path` with `data` through a temporary file and a rename. With `mode`, the
/// file gets exactly that mode (the umask cannot widen or narrow it) and is 0600 until
/// its content is complete; without, a new file's mode follows the umask. Missing
/// directories are created with the umask's mode.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let (dir, tmp) = temp_beside(path);
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.map_or(0o666, |_| PRIVATE_FILE))
            .open(&tmp)?;
        file.write_all(data)?;
        if let Some(m) = mode {
            file.set_permissions(Permissions::from_mode(m))?;
        }
        // A full disk may only say so when the data is flushed: before the rename.
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a local file through a temporary file and a rename, creating its directory;
/// a new file's mode follows the umask.
pub(crate) fn write_local(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic(path, data, None)
}

/// [`write_atomic`] for fleet's own state: the file 0600, missing directories 0700.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    write_atomic(path, data, Some(PRIVATE_FILE))
}

/// The permission bits of `path` (no file type, no setuid/setgid/sticky).
pub(crate) fn mode_of(path: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every test here runs under umask 022, the usual one, in its own process state:
    /// the umask is process-wide, so it is set once and never changed back.
    fn usual_umask() {
        // SAFETY: umask(2) only sets the process's file mode creation mask.
        unsafe {
            libc::umask(0o022);
        }
    }

    #[test]
    fn private_dirs_and_files_are_0700_and_0600_under_umask_022() {
        usual_umask();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&root.path().join("a")).unwrap(), 0o700);
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        create_private_file(&dir.join("log")).unwrap();
        assert_eq!(mode_of(&dir.join("log")).unwrap(), 0o600);
        write_private(&root.path().join("c/d/rec.json"), b"{}").unwrap();
        assert_eq!(mode_of(&root.path().join("c/d")).unwrap(), 0o700);
        assert_eq!(mode_of(&root.path().join("c/d/rec.json")).unwrap(), 0o600);
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), Permissions::from_mode(0o750)).unwrap();
        create_private_dir(root.path()).unwrap();
        assert_eq!(mode_of(root.path()).unwrap(), 0o750);
    }

    #[test]
    fn atomic_writes_set_the_exact_mode_and_replace_whole_files() {
        usual_umask();
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("sub/file");
        write_atomic(&path, b"one", Some(0o664)).unwrap();
        assert_eq!(
            mode_of(&path).unwrap(),
            0o664,
            "the umask does not narrow it"
        );
        write_atomic(&path, b"two", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path).unwrap(), 0o600);
        write_atomic(&path, b"three", None).unwrap();
        assert_eq!(mode_of(&path).unwrap(), 0o644, "the umask's mode");
        assert_eq!(
            std::fs::read_dir(root.path().join("sub")).unwrap().count(),
            1
        );
    }

    #[test]
    fn local_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/file name");
        write_local(&p, b"one").unwrap();
        write_local(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
    }
}
