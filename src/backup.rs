//! `chat-server backup PATH`: a consistent copy of the database and of the
//! files its messages carry, taken while the server runs and writes.
//!
//! The database is copied with SQLite's `VACUUM INTO`, which reads one
//! snapshot (a read transaction: writers go on meanwhile, WAL mode) and
//! writes it to a new file, compacted. Then every stored file that the copy
//! refers to is copied beside it, into `NAME-files` for `NAME.db`: the
//! folder a server started with `--db NAME.db` looks in, so restoring is
//! starting the server on the copy (or copying both back in place).
//!
//! Stored files never change once written (each is named by its SHA-256),
//! so copying them after the snapshot is safe. One race is left: a file
//! whose message was deleted for everyone between the snapshot and its copy
//! may already be gone; it is counted as missing, and that message shows
//! without its file after a restore.

use std::fs::File;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::config::files_dir_for;
use crate::files::store::stored_path;

/// How long the snapshot waits for a lock another process holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a backup copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupReport {
    pub database: PathBuf,
    pub database_bytes: u64,
    pub files_dir: PathBuf,
    pub files: usize,
    pub file_bytes: u64,
    /// Files the copy refers to that were removed before they were copied.
    pub missing: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already; a backup never overwrites anything")]
    Exists(PathBuf),
    #[error("reading the database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |error| BackupError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Copies the database `db` and the files in `files_dir` that it refers to,
/// to `target` and `NAME-files` beside it.
pub fn backup(db: &Path, files_dir: &Path, target: &Path) -> Result<BackupReport, BackupError> {
    let target_files = files_dir_for(target);
    for path in [target, target_files.as_path()] {
        if path.exists() {
            return Err(BackupError::Exists(path.to_owned()));
        }
    }
    // Read-only: a backup never changes the database it copies.
    let source = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(BUSY_TIMEOUT)?;
    let target_text = target.to_string_lossy();
    source.execute("VACUUM INTO ?1", [target_text.as_ref()])?;
    sync(target)?;

    let copy = Connection::open_with_flags(target, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let digests: Vec<String> = copy
        .prepare(
            "SELECT sha256 FROM attachments
             UNION SELECT thumbnail_sha256 FROM attachments WHERE thumbnail_sha256 IS NOT NULL",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut report = BackupReport {
        database: target.to_owned(),
        database_bytes: std::fs::metadata(target).map_err(io_error(target))?.len(),
        files_dir: target_files.clone(),
        ..BackupReport::default()
    };
    // Only the server's own folder is private; the copy is made the same.
    let private_folder = |path: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io_error(path))
    };
    private_folder(&target_files)?;
    for sha256 in digests {
        let (Some(source_path), Some(target_path)) = (
            stored_path(files_dir, &sha256),
            stored_path(&target_files, &sha256),
        ) else {
            continue; // not a digest: no file was ever stored under it
        };
        if let Some(folder) = target_path.parent() {
            private_folder(folder)?;
        }
        match std::fs::copy(&source_path, &target_path) {
            Ok(bytes) => {
                sync(&target_path)?;
                report.files += 1;
                report.file_bytes += bytes;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => report.missing += 1,
            Err(e) => return Err(io_error(&source_path)(e)),
        }
    }
    Ok(report)
}

/// Flushes a copied file to the disk: a backup is for when the disk fails.
fn sync(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(io_error(path))
}
