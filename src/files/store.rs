//! The bytes of sent files, on disk, each under its SHA-256.
//!
//! A file is written to a temporary file (named at random, in `tmp/`)
//! while its hash is computed, then renamed to its hash: a rename is
//! atomic, so a name under which a file is stored always holds all of it,
//! and a crash mid-upload leaves only a temporary file, which the next
//! start removes. How much a crash may take follows `--durability`, as
//! for messages: with `normal` the bytes are in the kernel's hands when
//! the upload is answered (they survive the server's crash); with `full`
//! the file and its folder are also synced before the rename and the
//! answer (they survive a power loss), which costs two syncs per upload. The same bytes sent twice are stored once. Names are
//! checked to be 64 hex digits before they become paths, so no name from
//! a request can reach outside the folder.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::sniff::SNIFF_BYTES;
use crate::auth::to_hex;

/// Bytes read from the body per write to the temporary file.
const CHUNK_BYTES: usize = 64 * 1024;

/// Why a file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The body went past the size limit; nothing was kept.
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: u64 },
    /// Reading the body, or the disk, failed; nothing was kept.
    #[error("storing the file failed: {0}")]
    Io(#[from] io::Error),
}

/// A file that is stored. Until it is dropped, its bytes are not removed
/// even if no row refers to them yet: the upload that stored them is
/// about to record the row (see [`FileStore::remove_if_unused`]).
#[derive(Debug)]
pub struct Put<'a> {
    /// Its SHA-256, in hex: its name in the store.
    pub sha256: String,
    pub size: u64,
    /// Its first bytes (at most [`SNIFF_BYTES`]), for finding its type.
    pub head: Vec<u8>,
    /// Whether these bytes were stored already (and are now shared).
    pub existed: bool,
    store: &'a FileStore,
}

impl Drop for Put<'_> {
    fn drop(&mut self) {
        let mut pending = lock(&self.store.pending);
        if let Some(count) = pending.get_mut(&self.sha256) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.sha256);
            }
        }
    }
}

/// A temporary file, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    pub path: PathBuf,
    pub file: File,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The folder of stored files.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    /// Whether files and their folders are synced before they are named
    /// (`--durability full`).
    sync: bool,
    /// Digests stored by uploads that have not recorded their row yet,
    /// with how many such uploads there are: never removed meanwhile.
    pending: Mutex<HashMap<String, usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where the file `sha256` is kept in the files folder `dir`; `None` when
/// `sha256` is not a digest (nothing from outside becomes a path).
pub fn stored_path(dir: &Path, sha256: &str) -> Option<PathBuf> {
    let valid = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    // Spread over 256 folders: a folder of millions of files is slow to
    // list and to back up.
    valid.then(|| dir.join(&sha256[..2]).join(sha256))
}

impl FileStore {
    /// Opens (or creates, readable by this user only) the store in `dir`,
    /// and removes the temporary files that a crash left behind. With
    /// `sync`, every file is synced to disk before it is named.
    pub fn open(dir: &Path, sync: bool) -> io::Result<FileStore> {
        let store = FileStore {
            dir: dir.to_owned(),
            sync,
            pending: Mutex::new(HashMap::new()),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(store.tmp_dir())?;
        for leftover in fs::read_dir(store.tmp_dir())? {
            let path = leftover?.path();
            if let Err(e) = fs::remove_file(&path) {
                log::warn!("cannot remove the half-written {}: {e}", path.display());
            }
        }
        Ok(store)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Where the HTTP side writes upload bodies as they arrive (cleared
    /// at start with the rest of the temporary files).
    pub fn spool_dir(&self) -> PathBuf {
        self.tmp_dir()
    }

    /// A new empty temporary file (e.g. for the file taken out of a form),
    /// removed when dropped.
    pub fn scratch(&self) -> io::Result<Scratch> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let path = self.tmp_dir().join(format!("scratch-{}", to_hex(&nonce)));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Scratch { path, file })
    }

    /// Stores what `body` holds, at most `max_bytes` of it: a longer body
    /// is refused while it is read, and nothing of it is kept.
    pub fn put(&self, body: impl Read, max_bytes: u64) -> Result<Put<'_>, FileError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let tmp = self.tmp_dir().join(to_hex(&nonce));
        let written = write_hashed(body, Some(&tmp), max_bytes, self.sync);
        match written {
            Ok(hashed) => self.settle(&tmp, hashed),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Stores the temporary file at `path` (an upload as it was received,
    /// in this store's `tmp/`) by moving it into place: hashed as it is
    /// read once, never copied. The file is gone from `path` afterwards.
    pub fn adopt(&self, path: &Path, max_bytes: u64) -> Result<Put<'_>, FileError> {
        let hashed = write_hashed(File::open(path)?, None, max_bytes, false)?;
        if self.sync {
            // Synced before the rename, like a file we wrote ourselves.
            File::open(path)?.sync_all()?;
        }
        self.settle(path, hashed)
    }

    /// Moves the complete, synced file `tmp` to its name (or drops it when
    /// those bytes are stored already).
    fn settle(&self, tmp: &Path, (sha256, size, head): Hashed) -> Result<Put<'_>, FileError> {
        let path = self
            .path_of(&sha256)
            .ok_or_else(|| io::Error::other("bad digest"))?;
        // Marked pending before the look: a removal either went first
        // (and the bytes are written anew) or waits for the row.
        let mut pending = lock(&self.pending);
        *pending.entry(sha256.clone()).or_insert(0) += 1;
        let put = Put {
            sha256,
            size,
            head,
            existed: path.exists(),
            store: self,
        };
        drop(pending);
        if put.existed {
            fs::remove_file(tmp)?;
        } else {
            if let Some(shard) = path.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(shard)?;
            }
            if let Err(e) = fs::rename(tmp, &path) {
                let _ = fs::remove_file(tmp);
                return Err(e.into());
            }
            // The rename itself survives a power loss once its folder is
            // synced.
            if let Some(shard) = path.parent().filter(|_| self.sync) {
                File::open(shard)?.sync_all()?;
            }
        }
        Ok(put)
    }

    /// Where the file named `sha256` is (whether or not it exists); `None`
    /// for a name that is not 64 hex digits.
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        stored_path(&self.dir, sha256)
    }

    /// Opens a stored file for reading.
    pub fn open_file(&self, sha256: &str) -> io::Result<File> {
        let path = self
            .path_of(sha256)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not a file name"))?;
        File::open(path)
    }

    /// Removes the file named `sha256` unless an upload that stored it is
    /// still recording its row, or `in_use` (asked while no upload can
    /// start using it) says a row refers to it. Returns whether it was
    /// removed.
    pub fn remove_if_unused(
        &self,
        sha256: &str,
        in_use: impl FnOnce(&str) -> io::Result<bool>,
    ) -> io::Result<bool> {
        let Some(path) = self.path_of(sha256) else {
            return Ok(false);
        };
        let pending = lock(&self.pending);
        if pending.contains_key(sha256) || in_use(sha256)? {
            return Ok(false);
        }
        let removed = match fs::remove_file(path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        drop(pending);
        Ok(removed)
    }

    /// The names of every stored file (for the sweep that removes files a
    /// crash left without a row).
    pub fn all_names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for shard in fs::read_dir(&self.dir)? {
            let shard = shard?;
            let shard_name = shard.file_name();
            let Some(shard_name) = shard_name.to_str() else {
                continue;
            };
            if shard_name.len() != 2 || !shard.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(shard.path())? {
                if let Some(name) = file?.file_name().to_str()
                    && self.path_of(name).is_some()
                    && name.starts_with(shard_name)
                {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }
}

/// A file's SHA-256 (hex), size and first bytes.
type Hashed = (String, u64, Vec<u8>);

/// Reads `body` to its end, hashing it, at most `max_bytes`; with `tmp`,
/// copies it into a new file there (private to this user), synced if
/// `sync`.
fn write_hashed(
    mut body: impl Read,
    tmp: Option<&Path>,
    max_bytes: u64,
    sync: bool,
) -> Result<Hashed, FileError> {
    let mut file = match tmp {
        Some(tmp) => Some(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp)?,
        ),
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut size: u64 = 0;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match body.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        size += n as u64;
        if size > max_bytes {
            return Err(FileError::TooLarge { max: max_bytes });
        }
        let bytes = &chunk[..n];
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(n);
            head.extend_from_slice(&bytes[..take]);
        }
        hasher.update(bytes);
        if let Some(file) = &mut file {
            file.write_all(bytes)?;
        }
    }
    if let Some(file) = file.as_ref().filter(|_| sync) {
        file.sync_all()?;
    }
    Ok((to_hex(&hasher.finalize()), size, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(&dir.path().join("files"), true).expect("open");
        (dir, store)
    }

    fn read_back(store: &FileStore, sha256: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        store
            .open_file(sha256)
            .expect("stored")
            .read_to_end(&mut bytes)
            .expect("read");
        bytes
    }

    #[test]
    fn files_come_back_byte_for_byte_under_their_sha256_and_are_stored_once() {
        let (_dir, store) = store();
        for size in [0, 1, 65_535, 65_536, 65_537, 1 << 20] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
            let put = store.put(&bytes[..], 2 << 20).expect("put");
            assert_eq!(put.size, size as u64);
            assert_eq!(put.sha256, to_hex(&Sha256::digest(&bytes)));
            assert_eq!(put.head, bytes[..size.min(SNIFF_BYTES)]);
            assert_eq!(read_back(&store, &put.sha256), bytes, "{size} bytes");
            assert!(!put.existed);
            let again = store.put(&bytes[..], 2 << 20).expect("again");
            assert!(again.existed, "the same bytes are stored once");
        }
        assert_eq!(fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
    }

    #[test]
    fn a_body_over_the_limit_is_refused_while_it_is_read_and_nothing_is_kept() {
        let (_dir, store) = store();
        let limit = 100_000;
        // An endless body: the limit stops it, not its end.
        let endless = io::repeat(b'x');
        match store.put(endless, limit) {
            Err(FileError::TooLarge { max }) => assert_eq!(max, limit),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let exactly = vec![b'y'; limit as usize];
        assert!(
            store.put(&exactly[..], limit).is_ok(),
            "the limit itself passes"
        );
        assert!(matches!(
            store.put(&[&exactly[..], b"!"].concat()[..], limit),
            Err(FileError::TooLarge { .. })
        ));
        assert_eq!(fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
    }

    #[test]
    fn an_adopted_file_is_moved_in_under_its_hash() {
        let (_dir, store) = store();
        let bytes = b"received by the connection's thread".to_vec();
        let received = store.tmp_dir().join("upload-1");
        fs::write(&received, &bytes).expect("received");
        let put = store.adopt(&received, 1000).expect("adopt");
        assert_eq!(put.sha256, to_hex(&Sha256::digest(&bytes)));
        assert!(!received.exists(), "moved, not copied");
        assert_eq!(read_back(&store, &put.sha256), bytes);
        // The same bytes again: the second file is dropped.
        fs::write(&received, &bytes).expect("again");
        assert!(store.adopt(&received, 1000).expect("again").existed);
        assert!(!received.exists());
        fs::write(&received, &bytes).expect("too large");
        assert!(matches!(
            store.adopt(&received, 10),
            Err(FileError::TooLarge { .. })
        ));
    }

    #[test]
    fn names_that_are_not_digests_reach_no_path() {
        let (_dir, store) = store();
        for bad in [
            "../../etc/passwd",
            "",
            "AB",
            &"g".repeat(64),
            &"A".repeat(64),
        ] {
            assert_eq!(store.path_of(bad), None, "{bad:?}");
            assert!(store.open_file(bad).is_err());
        }
        assert!(store.path_of(&"0".repeat(64)).is_some());
    }

    #[test]
    fn half_written_files_of_a_crash_are_removed_at_the_next_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("files");
        let store = FileStore::open(&root, false).expect("open");
        let kept = store.put(&b"kept"[..], 10).expect("put").sha256.clone();
        fs::write(store.tmp_dir().join("interrupted"), b"half").expect("leftover");
        drop(store);
        let store = FileStore::open(&root, false).expect("reopen");
        assert_eq!(fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
        assert_eq!(read_back(&store, &kept), b"kept");
        assert_eq!(store.all_names().expect("list"), vec![kept.clone()]);
        let again = store.put(&b"kept"[..], 10).expect("again");
        let sha256 = kept;
        assert!(
            !store
                .remove_if_unused(&sha256, |_| Ok(false))
                .expect("remove"),
            "an upload that has not recorded its row keeps its file"
        );
        drop(again);
        assert!(
            !store
                .remove_if_unused(&sha256, |_| Ok(true))
                .expect("in use")
        );
        assert!(
            store
                .remove_if_unused(&sha256, |_| Ok(false))
                .expect("remove")
        );
        assert!(store.open_file(&sha256).is_err());
        assert!(
            !store
                .remove_if_unused(&sha256, |_| Ok(false))
                .expect("twice")
        );
    }
}
