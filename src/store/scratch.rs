//! Scratch copies of a store for the commands that must never change it
//! (`herald trace`, `herald diff`): a consistent snapshot taken through a
//! read-only connection, in a temporary file removed when dropped.

use super::{describe_sqlite, Store, StoreError, DEFAULT_WAIT};
use crate::schema::Schema;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A private copy of a store. Writes to it go nowhere else; the file is
/// deleted when the copy is dropped.
pub struct ScratchStore {
    /// `None` only while dropping.
    store: Option<Store>,
    path: Option<PathBuf>,
}

impl std::ops::Deref for ScratchStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store.as_ref().expect("the scratch store is open")
    }
}

impl Drop for ScratchStore {
    fn drop(&mut self) {
        drop(self.store.take());
        if let Some(p) = self.path.take() {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut f = p.clone().into_os_string();
                f.push(suffix);
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

fn scratch_path() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("herald-scratch-{}-{nanos}-{n}.db", std::process::id()))
}

impl ScratchStore {
    /// An empty store of `schema` (no `--db` given).
    pub fn empty(schema: Arc<Schema>) -> Result<ScratchStore, StoreError> {
        Ok(ScratchStore { store: Some(Store::open_in_memory(schema)?), path: None })
    }

    /// A copy of the store at `source`. The source is opened read-only
    /// (it must exist) and copied with `VACUUM INTO`, which reads one
    /// consistent snapshot even while another process writes; nothing is
    /// written to it, not even a migration for a schema that grew (the copy
    /// is migrated instead).
    pub fn copy_of(source: &Path, schema: Arc<Schema>) -> Result<ScratchStore, StoreError> {
        let open_err =
            |e: rusqlite::Error| StoreError::Open { path: source.display().to_string(), message: describe_sqlite(&e) };
        if !source.is_file() {
            return Err(StoreError::Open { path: source.display().to_string(), message: "no such file".into() });
        }
        let src =
            Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(open_err)?;
        src.busy_timeout(DEFAULT_WAIT).map_err(open_err)?;
        let path = scratch_path();
        // From here on the guard removes the file, whatever fails.
        let mut scratch = ScratchStore { store: None, path: Some(path.clone()) };
        src.execute("VACUUM INTO ?1", [path.to_string_lossy().as_ref()]).map_err(open_err)?;
        drop(src);
        let store = Store::open(&path, schema)?;
        // A scratch copy need not survive a crash: no fsync per commit.
        store.conn.pragma_update(None, "synchronous", "OFF").map_err(|e| StoreError::Sql(describe_sqlite(&e)))?;
        scratch.store = Some(store);
        Ok(scratch)
    }
}
