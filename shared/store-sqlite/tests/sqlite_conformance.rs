//! The store conformance suite against the embedded SQLite adapter, in memory and on disk.

use pushpool_store_sqlite::SqliteStore;

pushpool_store::store_conformance_tests!(in_memory, SqliteStore::in_memory().unwrap());

fn on_disk() -> SqliteStore {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pushpool.db")).unwrap();
    // Keep the directory for the test's duration.
    std::mem::forget(dir);
    store
}

pushpool_store::store_conformance_tests!(on_disk_file, on_disk());

#[cfg(unix)]
#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
