//! The data directory of the embedded store (`trent.db`, its WAL files, the generated root key,
//! the trail digest key): created private (0700, files 0600) whatever the umask, held by one
//! serving process at a time through an exclusive lock, and never created by a command that only
//! reads a store.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "trent.lock";
/// The SQLite database file inside the data directory.
pub const DATABASE_FILE: &str = "trent.db";

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// No store exists where a read-only command looked.
    #[error(
        "no store at {0}: run this command from the directory that holds the data directory, or \
         pass --data-dir (or --database-url); only `trent serve` and `trent migrate` create a store"
    )]
    NoStore(PathBuf),
    /// Another process holds the lock.
    #[error(
        "the data directory {dir} is in use by another trent process (pid {pid}); the embedded \
         store serves one process: stop that one first, or use another --data-dir"
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The lock holder's pid, as it wrote it (or "unknown").
        pid: String,
    },
    /// A filesystem operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |error| DataDirError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Create the data directory (0700) and its database file (0600) if they are missing, so that
/// SQLite's WAL and shared-memory files, which take the database file's mode, are private too.
pub fn create(dir: &Path) -> Result<PathBuf, DataDirError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))?;
    let db = dir.join(DATABASE_FILE);
    create_private_file(&db)?;
    Ok(db)
}

/// Create `path` empty with mode 0600 unless it exists.
pub fn create_private_file(path: &Path) -> Result<(), DataDirError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// The database file of an existing store (for commands that must not create one).
pub fn existing(dir: &Path) -> Result<PathBuf, DataDirError> {
    let db = dir.join(DATABASE_FILE);
    if db.is_file() {
        Ok(db)
    } else {
        Err(DataDirError::NoStore(db))
    }
}

/// The exclusive hold of a data directory by one serving process; released when dropped (and by
/// the kernel when the process dies, so a crash leaves no stale lock).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Take the data directory's lock, writing this process's pid into the lock file; refuses with
/// the holder's pid when another process has it.
pub fn lock(dir: &Path) -> Result<DataDirLock, DataDirError> {
    let path = dir.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(DataDirError::Locked {
                dir: dir.to_path_buf(),
                pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    file.set_len(0).map_err(io(&path))?;
    file.rewind().map_err(io(&path))?;
    writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_lock_can_be_taken() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        match lock(dir.path()) {
            Err(DataDirError::Locked { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        lock(dir.path()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn created_directory_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let db = create(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert!(matches!(
            existing(&dir.path().join("elsewhere")),
            Err(DataDirError::NoStore(_))
        ));
        assert_eq!(existing(&data).unwrap(), db);
    }
}
