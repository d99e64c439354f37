//! Backing stores for Augur.
//!
//! Augur is a cache in front of a database. This crate is the seam between the two:
//! the [`Store`] trait every backing store implements, the two built-in adapters
//! ([`RocksDbStore`], embedded and the default; [`PostgresStore`]), the
//! [`conformance`] suite that defines what "implements `Store`" means, and
//! [`StoreSpec`], the `rocksdb:PATH` / `postgres:URL` strings users pass on the
//! command line.
//!
//! # Layout
//! - `store`: the trait and the durability statement.
//! - `error`: the one error type, classified by what the caller should do next.
//! - `rocksdb`, `postgres`: the adapters.
//! - `spec`: parsing and opening a store from a command-line string.
//! - `conformance`: the suite, public for third-party adapters.
//! - `testing`: a PostgreSQL server for tests and conformance targets.

pub mod conformance;
mod error;
pub mod postgres;
pub mod rocksdb;
mod spec;
mod store;
pub mod testing;

pub use crate::error::{BoxError, ErrorKind, StoreError, StoreResult};
pub use crate::postgres::{PostgresStore, UpsertMethod};
pub use crate::rocksdb::RocksDbStore;
pub use crate::spec::StoreSpec;
pub use crate::store::{last_occurrence_wins, Durability, Store};
