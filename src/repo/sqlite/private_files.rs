//! The database holds every message, email address and password hash: its
//! files are readable by the server's own user only. SQLite creates the
//! `-wal` and `-shm` files with the permissions of the database file, so it
//! is enough to create that one as 0600 (and its folder as 0700) before
//! SQLite opens it; files an older version left readable to others are
//! tightened at start.

use std::io;
use std::path::{Path, PathBuf};

/// Owner read and write.
const FILE_MODE: u32 = 0o600;
/// Owner only, for a folder this server creates.
const DIR_MODE: u32 = 0o700;

/// Creates the database's folder and file privately if they are missing,
/// and takes group and other permissions off the file and its companions.
pub fn prepare(db: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::fs::{DirBuilder, OpenOptions, Permissions};
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)?;
        }
        // Creates the file (empty, which SQLite treats as new) or leaves it.
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(db)?;
        for file in [
            db.to_path_buf(),
            companion(db, "-wal"),
            companion(db, "-shm"),
        ] {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue; // not there yet
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&file, Permissions::from_mode(mode & 0o700))?;
                log::warn!(
                    "{} was readable by other users (mode {mode:o}); now {:o}",
                    file.display(),
                    mode & 0o700
                );
            }
        }
    }
    Ok(())
}

fn companion(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
