//! The one error type every store returns.
//!
//! The engine acts differently on each kind, so the kind is the part that matters:
//! a write-back flusher keeps dirty data and retries on [`ErrorKind::Unavailable`],
//! reports the offending request on [`ErrorKind::BadRequest`], and stops trusting the
//! store on [`ErrorKind::Corruption`]. Adapters choose the kind; callers never parse
//! messages.

use std::fmt;

/// Boxed cause kept for logs and `source()` chains.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as far as the caller's next step is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The store cannot be reached or is busy (connection refused or lost, server
    /// restarting, lock held, disk temporarily full). Nothing is known to be applied
    /// for a write that failed this way; retrying the same call later is correct.
    Unavailable,
    /// The request itself is unacceptable (a value over the store's limit, an invalid
    /// table name). Retrying the same call will fail again.
    BadRequest,
    /// The store reports damaged data. Neither retrying nor continuing is safe.
    Corruption,
    /// Anything the adapter could not classify. Treated like `Unavailable` by the
    /// engine's retry loop, but logged loudly.
    Other,
}

impl ErrorKind {
    /// A short lowercase name, stable for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Corruption => "corruption",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a store: a kind, a message with context (which store, which path or
/// table, which operation) and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl StoreError {
    /// A new error of `kind` with a message that names what failed.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying cause; its text is appended to the message so a single
    /// log line says everything.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        let source = source.into();
        self.message = format!("{}: {}", self.message, source);
        self.source = Some(source);
        self
    }

    /// Shorthand for an [`ErrorKind::Unavailable`] error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for an [`ErrorKind::BadRequest`] error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// Shorthand for an [`ErrorKind::Corruption`] error.
    pub fn corruption(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corruption, message)
    }

    /// The kind, which decides what the caller does next.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, including the cause's text when there is one.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the same call may succeed later ([`ErrorKind::Unavailable`] and
    /// [`ErrorKind::Other`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable | ErrorKind::Other)
    }
}

/// Result alias used across the adapters.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_carries_cause_and_kind_decides_retry() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = StoreError::unavailable("postgres get_many").with_source(io);
        assert_eq!(err.to_string(), "unavailable: postgres get_many: refused");
        assert!(err.is_retryable());
        assert!(std::error::Error::source(&err).is_some());
        assert!(!StoreError::bad_request("x").is_retryable());
        assert!(!StoreError::corruption("x").is_retryable());
    }
}
