//! A RocksDB directory that cannot be opened must say which path and why.

use augur_adapters::{ErrorKind, RocksDbStore, Store};
use bytes::Bytes;

#[test]
fn locked_database_names_path_and_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let _first = RocksDbStore::open(&path).expect("first open");
    let err = RocksDbStore::open(&path).expect_err("second open of a locked database must fail");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "path missing from: {text}");
    assert!(text.contains("locked"), "cause missing from: {text}");
    assert!(err.is_retryable(), "a lock held by another process may be released: {text}");
}

#[tokio::test]
async fn corrupt_database_names_path_and_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let store = RocksDbStore::open(&path).expect("open");
        store.put_many(&[(Bytes::from_static(b"k"), Bytes::from_static(b"v"))]).await.expect("put");
    }
    // Replace every MANIFEST with garbage: the database can no longer describe itself.
    for entry in std::fs::read_dir(&path).expect("list") {
        let p = entry.expect("entry").path();
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("MANIFEST")) {
            std::fs::write(&p, b"this is not a manifest").expect("corrupt");
        }
    }
    let err = RocksDbStore::open(&path).expect_err("corrupt database must not open");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "path missing from: {text}");
    assert_eq!(err.kind(), ErrorKind::Corruption, "{text}");
}

#[test]
fn missing_database_without_create_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nothing-here");
    let err = RocksDbStore::builder(&path).create_if_missing(false).open().expect_err("must fail");
    assert!(err.to_string().contains(&path.display().to_string()));
}
