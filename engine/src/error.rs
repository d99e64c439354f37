//! The engine's error type: what a client request or a start-up can fail with.

use augur_adapters::StoreError;

/// Errors from the engine's public API. Each maps to one Redis error reply (see
/// [`EngineError::reply_text`]); none of them means an acknowledged write was lost.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A read missed the cache and the store failed (down, or refused the request).
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// Dirty (acknowledged, not yet flushed) bytes stayed at the configured bound for
    /// longer than the write may wait: the store is not keeping up.
    #[error("dirty data at its bound ({dirty_bytes} of {limit} bytes) for {waited_ms} ms: the store is not keeping up; write refused")]
    DirtyBound {
        /// Dirty bytes when the write gave up.
        dirty_bytes: u64,
        /// The configured bound.
        limit: u64,
        /// How long the write waited.
        waited_ms: u64,
    },
    /// A single write is larger than the dirty bound itself and could never fit.
    #[error("write of {size} bytes exceeds the dirty-bytes bound of {limit}")]
    TooLarge {
        /// Bytes the write needs.
        size: u64,
        /// The configured bound.
        limit: u64,
    },
    /// The write-ahead log failed (write or fsync). Writes are refused from then on:
    /// after a failed fsync the kernel may have dropped the data, so retrying and
    /// acknowledging would be a lie (PostgreSQL's "fsyncgate").
    #[error("write-ahead log failed, writes refused until restart: {0}")]
    Wal(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// Start-up failed: bad configuration, unreadable or corrupt WAL, store unreachable.
    #[error("{0}")]
    Startup(String),
}

impl EngineError {
    /// The text of the RESP error reply, prefixed with a Redis-style error code.
    pub fn reply_text(&self) -> String {
        match self {
            EngineError::Store(e) if e.is_retryable() => format!("TRYAGAIN {e}"),
            EngineError::DirtyBound { .. } | EngineError::TooLarge { .. } => format!("OOM {self}"),
            EngineError::Wal(_) => format!("MISCONF {self}"),
            EngineError::ShuttingDown => "LOADING server is shutting down".to_string(),
            _ => format!("ERR {self}"),
        }
    }
}

/// Result alias for the engine.
pub type EngineResult<T> = Result<T, EngineError>;
