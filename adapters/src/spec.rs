//! `rocksdb:PATH` and `postgres:URL`: how users name a store.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{StoreError, StoreResult};
use crate::postgres::PostgresStore;
use crate::rocksdb::RocksDbStore;
use crate::store::Store;

/// A store named on the command line or in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `rocksdb:PATH`: an embedded RocksDB database in directory PATH.
    RocksDb(PathBuf),
    /// `postgres:URL` (or a bare `postgres://…` / `postgresql://…` URL).
    Postgres(String),
}

impl FromStr for StoreSpec {
    type Err = StoreError;

    fn from_str(s: &str) -> StoreResult<Self> {
        if let Some(path) = s.strip_prefix("rocksdb:") {
            if path.is_empty() {
                return Err(StoreError::bad_request("rocksdb: needs a path, e.g. rocksdb:./augur-data"));
            }
            return Ok(Self::RocksDb(PathBuf::from(path)));
        }
        if let Some(url) = s.strip_prefix("postgres:").filter(|u| !u.starts_with("//")) {
            return Ok(Self::Postgres(url.to_string()));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_string()));
        }
        Err(StoreError::bad_request(format!("unknown store {s:?}: expected rocksdb:PATH or postgres:URL")))
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::RocksDb(path) => write!(f, "rocksdb:{}", path.display()),
            // Never print a password that may be in the URL.
            StoreSpec::Postgres(url) => write!(f, "postgres:{}", redact_password(url)),
        }
    }
}

impl StoreSpec {
    /// Opens the store with its default settings (RocksDB synced, PostgreSQL with
    /// synchronous commit and table `augur_kv`).
    pub async fn open(&self) -> StoreResult<Arc<dyn Store>> {
        Ok(match self {
            StoreSpec::RocksDb(path) => Arc::new(RocksDbStore::open(path.clone())?),
            StoreSpec::Postgres(url) => Arc::new(PostgresStore::builder(url).open().await?),
        })
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_rejects_others() {
        assert_eq!("rocksdb:./data".parse::<StoreSpec>().ok(), Some(StoreSpec::RocksDb("./data".into())));
        assert_eq!(
            "postgres:postgres://u@h/db".parse::<StoreSpec>().ok(),
            Some(StoreSpec::Postgres("postgres://u@h/db".into()))
        );
        assert_eq!(
            "postgresql://u@h/db".parse::<StoreSpec>().ok(),
            Some(StoreSpec::Postgres("postgresql://u@h/db".into()))
        );
        assert!("rocksdb:".parse::<StoreSpec>().is_err());
        assert!("redis://x".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn display_hides_passwords() {
        let spec = StoreSpec::Postgres("postgres://augur:hunter2@db:5432/x".into());
        assert_eq!(spec.to_string(), "postgres:postgres://augur:***@db:5432/x");
    }
}
