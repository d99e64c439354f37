//! PostgreSQL store: one key/value table behind a connection pool.
//!
//! The table is `key bytea PRIMARY KEY, value bytea NOT NULL`, created if missing.
//! Every key and value is bound as a parameter; the only text spliced into SQL is
//! the schema and table name, and those are validated as plain identifiers and
//! quoted. Bulk upserts use one of three statement shapes ([`UpsertMethod`]);
//! `augur-bench pg-upsert` measured UNNEST fastest for small values and multi-row
//! VALUES for large ones, COPY never (see docs/RESULTS.md), so the default picks
//! between the first two per statement.
//!
//! Reconnection is the pool's job: a connection that died with the server is
//! discarded when it is next checked out, and new ones are opened on demand. Calls
//! in flight when the server goes away fail with [`ErrorKind::Unavailable`], which
//! the engine retries.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

use crate::error::{ErrorKind, StoreError, StoreResult};
use crate::store::{last_occurrence_wins, Durability, Store};

/// Rows per upsert statement. Multi-row VALUES binds two parameters a row and the
/// protocol allows 65,535 parameters.
const MAX_ROWS_PER_STATEMENT: usize = 10_000;
/// Payload bytes per statement, so a batch of 4 MiB values never builds one
/// gigantic message.
const MAX_BYTES_PER_STATEMENT: usize = 32 << 20;

/// Mean value size from which multi-row VALUES beats UNNEST (measured with
/// `augur-bench pg-upsert`, see docs/RESULTS.md: UNNEST led up to 512 B, VALUES from
/// 1 KiB).
const VALUES_FROM_MEAN_BYTES: usize = 768;

/// How `put_many` sends rows to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertMethod {
    /// Per statement, UNNEST for small values and VALUES for large ones: the
    /// fastest of the three at every measured size. The default.
    Auto,
    /// `INSERT … SELECT FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT …`: one
    /// statement text for every batch size, so one cached prepared statement.
    Unnest,
    /// `INSERT … VALUES ($1,$2),($3,$4),… ON CONFLICT …`.
    Values,
    /// `COPY … FROM STDIN BINARY` into a temporary table, then `INSERT … SELECT … ON
    /// CONFLICT …`.
    Copy,
}

impl FromStr for UpsertMethod {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "unnest" => Ok(Self::Unnest),
            "values" => Ok(Self::Values),
            "copy" => Ok(Self::Copy),
            other => Err(StoreError::bad_request(format!(
                "unknown upsert method {other:?} (expected auto, unnest, values or copy)"
            ))),
        }
    }
}

/// Settings for [`PostgresStore`]; start from [`PostgresStore::builder`].
#[derive(Debug, Clone)]
pub struct PostgresBuilder {
    url: String,
    schema: String,
    table: String,
    pool_size: usize,
    synchronous_commit: bool,
    upsert: UpsertMethod,
    connect_timeout: Duration,
}

impl PostgresBuilder {
    /// Schema holding the table (default `public`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }
    /// Table name (default `augur_kv`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }
    /// Maximum pooled connections (default 8).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }
    /// Wait for the server's WAL fsync on commit (default `true`): see [`Durability`].
    pub fn synchronous_commit(mut self, on: bool) -> Self {
        self.synchronous_commit = on;
        self
    }
    /// Statement shape for bulk upserts (default [`UpsertMethod::Auto`]).
    pub fn upsert_method(mut self, method: UpsertMethod) -> Self {
        self.upsert = method;
        self
    }
    /// How long a call waits to connect or for a free connection before failing
    /// with [`ErrorKind::Unavailable`] (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects, checks the server answers and creates the table if missing.
    pub async fn open(self) -> StoreResult<PostgresStore> {
        let schema = validate_identifier("schema", &self.schema)?;
        let table = validate_identifier("table", &self.table)?;
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(|e| {
            StoreError::bad_request("invalid PostgreSQL URL (expected postgres://user@host:port/db)").with_source(e)
        })?;
        let commit = if self.synchronous_commit { "on" } else { "off" };
        config.options(format!("-c synchronous_commit={commit}"));
        config.application_name("augur");
        config.connect_timeout(self.connect_timeout);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.connect_timeout))
            .create_timeout(Some(self.connect_timeout))
            .recycle_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|e| StoreError::new(ErrorKind::Other, "cannot build connection pool").with_source(e))?;
        let qualified = format!("\"{schema}\".\"{table}\"");
        let store = PostgresStore {
            sql: Statements::new(&qualified),
            pool,
            qualified,
            synchronous_commit: self.synchronous_commit,
            upsert: self.upsert,
        };
        store.create_table().await?;
        Ok(store)
    }
}

/// SQL texts, built once from the validated table name.
#[derive(Debug)]
struct Statements {
    get: String,
    delete: String,
    upsert_unnest: String,
    upsert_from_stage: String,
}

impl Statements {
    fn new(t: &str) -> Self {
        Self {
            get: format!("SELECT key, value FROM {t} WHERE key = ANY($1)"),
            delete: format!("DELETE FROM {t} WHERE key = ANY($1)"),
            upsert_unnest: format!(
                "INSERT INTO {t} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            upsert_from_stage: format!(
                "INSERT INTO {t} (key, value) SELECT key, value FROM augur_stage \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
        }
    }

    fn upsert_values(t: &str, rows: usize) -> String {
        let mut sql = format!("INSERT INTO {t} (key, value) VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${},${})", 2 * i + 1, 2 * i + 2));
        }
        sql.push_str(" ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value");
        sql
    }
}

/// A [`Store`] on a PostgreSQL table.
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    qualified: String,
    sql: Statements,
    synchronous_commit: bool,
    upsert: UpsertMethod,
}

impl PostgresStore {
    /// Settings for the server at `url` (`postgres://user@host:port/db`).
    pub fn builder(url: impl Into<String>) -> PostgresBuilder {
        PostgresBuilder {
            url: url.into(),
            schema: "public".into(),
            table: "augur_kv".into(),
            pool_size: 8,
            synchronous_commit: true,
            upsert: UpsertMethod::Auto,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The schema-qualified, quoted table name.
    pub fn table(&self) -> &str {
        &self.qualified
    }

    /// Drops the table (tests and `augur` admin tooling only).
    pub async fn drop_table(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {}", self.qualified))
            .await
            .map_err(|e| pg_error("drop table", e))
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn create_table(&self) -> StoreResult<()> {
        let client = self.client().await?;
        let ddl =
            format!("CREATE TABLE IF NOT EXISTS {} (key bytea PRIMARY KEY, value bytea NOT NULL)", self.qualified);
        match client.batch_execute(&ddl).await {
            Ok(()) => Ok(()),
            // Two processes creating the table at once: the loser sees a duplicate
            // catalog entry, and the table exists, which is all we wanted.
            Err(e) if matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE) => {
                Ok(())
            }
            Err(e) => Err(pg_error(&format!("create table {}", self.qualified), e)),
        }
    }

    async fn upsert_chunk(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        rows: &[(Bytes, Bytes)],
    ) -> Result<(), tokio_postgres::Error> {
        let method = match self.upsert {
            UpsertMethod::Auto => {
                let mean = rows.iter().map(|(_, v)| v.len()).sum::<usize>() / rows.len().max(1);
                if mean < VALUES_FROM_MEAN_BYTES {
                    UpsertMethod::Unnest
                } else {
                    UpsertMethod::Values
                }
            }
            other => other,
        };
        match method {
            UpsertMethod::Auto | UpsertMethod::Unnest => {
                let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_ref()).collect();
                let values: Vec<&[u8]> = rows.iter().map(|(_, v)| v.as_ref()).collect();
                let stmt = tx.prepare_cached(&self.sql.upsert_unnest).await?;
                tx.execute(&stmt, &[&keys, &values]).await?;
            }
            UpsertMethod::Values => {
                let slices: Vec<(&[u8], &[u8])> = rows.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
                let params: Vec<&(dyn ToSql + Sync)> =
                    slices.iter().flat_map(|(k, v)| [k as &(dyn ToSql + Sync), v as &(dyn ToSql + Sync)]).collect();
                let stmt = tx.prepare_cached(&Statements::upsert_values(&self.qualified, rows.len())).await?;
                tx.execute(&stmt, &params).await?;
            }
            UpsertMethod::Copy => {
                tx.batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS augur_stage (key bytea, value bytea) \
                     ON COMMIT DELETE ROWS",
                )
                .await?;
                let sink = tx.copy_in("COPY augur_stage (key, value) FROM STDIN BINARY").await?;
                let writer = BinaryCopyInWriter::new(sink, &[Type::BYTEA, Type::BYTEA]);
                futures::pin_mut!(writer);
                for (k, v) in rows {
                    writer.as_mut().write(&[&k.as_ref(), &v.as_ref()]).await?;
                }
                writer.finish().await?;
                tx.execute(&self.sql.upsert_from_stage, &[]).await?;
                tx.batch_execute("TRUNCATE augur_stage").await?;
            }
        }
        Ok(())
    }
}

/// Splits rows into statements bounded by row count and payload bytes.
fn chunks(rows: &[(Bytes, Bytes)]) -> impl Iterator<Item = &[(Bytes, Bytes)]> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= rows.len() {
            return None;
        }
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < MAX_ROWS_PER_STATEMENT {
            let size = rows[end].0.len() + rows[end].1.len();
            if end > start && bytes + size > MAX_BYTES_PER_STATEMENT {
                break;
            }
            bytes += size;
            end += 1;
        }
        let chunk = &rows[start..end];
        start = end;
        Some(chunk)
    })
}

#[async_trait]
impl Store for PostgresStore {
    fn name(&self) -> &str {
        "postgres"
    }

    fn durability(&self) -> Durability {
        if self.synchronous_commit {
            Durability::Synced
        } else {
            Durability::ProcessCrashSafe
        }
    }

    async fn get_many(&self, keys: &[Bytes]) -> StoreResult<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client.prepare_cached(&self.sql.get).await.map_err(|e| pg_error("get_many", e))?;
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
            let params: Vec<&[u8]> = chunk.iter().map(|k| k.as_ref()).collect();
            let rows = client.query(&stmt, &[&params]).await.map_err(|e| pg_error("get_many", e))?;
            for row in rows {
                let key: &[u8] = row.get(0);
                let value: &[u8] = row.get(1);
                found.insert(Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn put_many(&self, entries: &[(Bytes, Bytes)]) -> StoreResult<()> {
        self.write_batch(entries, &[]).await
    }

    async fn delete_many(&self, keys: &[Bytes]) -> StoreResult<()> {
        self.write_batch(&[], keys).await
    }

    async fn write_batch(&self, puts: &[(Bytes, Bytes)], deletes: &[Bytes]) -> StoreResult<()> {
        if puts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        // ON CONFLICT rejects a key twice in one statement, and concurrent batches
        // that lock the same rows in different orders deadlock: dedupe, then sort.
        let mut rows = last_occurrence_wins(puts);
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error("begin", e))?;
        for chunk in chunks(&rows) {
            self.upsert_chunk(&tx, chunk).await.map_err(|e| pg_error("put_many", e))?;
        }
        if !deletes.is_empty() {
            let stmt = tx.prepare_cached(&self.sql.delete).await.map_err(|e| pg_error("delete_many", e))?;
            let mut keys: Vec<&[u8]> = deletes.iter().map(|k| k.as_ref()).collect();
            keys.sort_unstable();
            for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
                tx.execute(&stmt, &[&chunk]).await.map_err(|e| pg_error("delete_many", e))?;
            }
        }
        tx.commit().await.map_err(|e| pg_error("commit", e))
    }

    async fn health(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map(|_| ()).map_err(|e| pg_error("health check", e))
    }
}

/// Accepts `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes (PostgreSQL's limit), so the
/// name can be quoted into SQL with no escaping.
pub fn validate_identifier<'a>(what: &str, name: &'a str) -> StoreResult<&'a str> {
    let mut chars = name.chars();
    let valid_start = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid_start && valid_rest && name.len() <= 63 {
        Ok(name)
    } else {
        Err(StoreError::bad_request(format!(
            "invalid PostgreSQL {what} name {name:?}: use letters, digits and '_', \
             starting with a letter or '_', at most 63 bytes"
        )))
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error("connect", e),
        PoolError::Timeout(t) => StoreError::unavailable(format!("postgres: timed out ({t:?}) getting a connection")),
        other => StoreError::unavailable("postgres: no connection").with_source(other),
    }
}

/// Classifies by SQLSTATE class; errors without one are connection failures.
fn pg_error(op: &str, e: tokio_postgres::Error) -> StoreError {
    let kind = match e.code() {
        _ if e.is_closed() => ErrorKind::Unavailable,
        None => ErrorKind::Unavailable,
        Some(code) => {
            let code = code.code();
            match &code[..2] {
                // connection exception, operator intervention (shutdown, restart),
                // insufficient resources, transaction rollback (deadlock, serialization)
                "08" | "57" | "53" | "40" => ErrorKind::Unavailable,
                // data exception, program limit exceeded, syntax/access rule
                "22" | "54" | "42" => ErrorKind::BadRequest,
                "XX" if code == "XX001" || code == "XX002" => ErrorKind::Corruption,
                _ => ErrorKind::Other,
            }
        }
    };
    StoreError::new(kind, format!("postgres {op}")).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated() {
        assert!(validate_identifier("table", "augur_kv").is_ok());
        assert!(validate_identifier("table", "_T1").is_ok());
        for bad in ["", "1abc", "a-b", "a\"b", "a; DROP TABLE x", "é", &"a".repeat(64)] {
            let err = validate_identifier("table", bad).expect_err("must be rejected");
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn chunks_respect_rows_and_bytes() {
        let small: Vec<(Bytes, Bytes)> =
            (0..25_000u32).map(|i| (Bytes::from(i.to_be_bytes().to_vec()), Bytes::new())).collect();
        let sizes: Vec<usize> = chunks(&small).map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10_000, 10_000, 5_000]);
        let big: Vec<(Bytes, Bytes)> =
            (0..20u32).map(|i| (Bytes::from(i.to_be_bytes().to_vec()), Bytes::from(vec![0u8; 4 << 20]))).collect();
        let sizes: Vec<usize> = chunks(&big).map(|c| c.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&n| n * (4 << 20) <= MAX_BYTES_PER_STATEMENT + (4 << 20)));
        assert!(sizes.len() > 1);
    }
}
