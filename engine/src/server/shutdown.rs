//! The server-wide shutdown signal.
//!
//! Several parties need one flag that flips once and can be awaited: the accept
//! loop (stop accepting), every connection (finish the batch in hand, then close), the
//! `SHUTDOWN` command (flip it from inside a connection) and the `augur serve` CLI
//! (flip it on SIGTERM, then wait for [`run`](super::run) to return before shutting
//! the engine down). A `tokio::sync::watch` channel fits: waiters that subscribe
//! after the flip still see it, unlike a broadcast or `Notify` that only wakes those
//! already waiting.

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable, one-way "shut down now" signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    /// A signal that has not been triggered.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Shutdown { tx: Arc::new(tx) }
    }

    /// Triggers shutdown; every current and future [`wait`](Self::wait) returns.
    /// Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Returns once shutdown has been triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait; an
        // error would only mean it did, and then there is nothing left to wait for.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiters_before_and_after_the_trigger_both_return() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_triggered());
        let early = tokio::spawn({
            let s = shutdown.clone();
            async move { s.wait().await }
        });
        // Not triggered yet: the waiter must still be pending.
        assert!(tokio::time::timeout(Duration::from_millis(50), shutdown.wait()).await.is_err());
        shutdown.clone().trigger();
        assert!(shutdown.is_triggered());
        tokio::time::timeout(Duration::from_secs(1), early)
            .await
            .expect("early waiter returned")
            .expect("early waiter did not panic");
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait()).await.expect("late waiter returned at once");
        shutdown.trigger();
        assert!(shutdown.is_triggered());
    }
}
