//! How far a projection has got, and waiting for it (read your writes).

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;

/// The projection did not reach the position in time.
#[derive(Debug, Clone, Copy, Error)]
#[error("read model is at position {reached}, behind the requested {wanted}")]
pub struct Lagging {
    pub wanted: u64,
    pub reached: u64,
}

/// A projection's applied position, shared by its runner and every query handler.
#[derive(Clone)]
pub struct Positions {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for Positions {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Positions {
    pub fn current(&self) -> u64 {
        *self.tx.borrow()
    }

    /// Moves the position forward (never back).
    pub fn advance(&self, position: u64) {
        self.tx.send_if_modified(|p| {
            let moved = position > *p;
            if moved {
                *p = position;
            }
            moved
        });
    }

    /// Returns once the projection has applied `position`, or `Lagging` after `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), Lagging> {
        let mut rx = self.tx.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Lagging {
                wanted: position,
                reached: self.current(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_until_advanced_or_times_out() {
        let positions = Positions::default();
        let p = positions.clone();
        let waiter = tokio::spawn(async move { p.wait_for(5, Duration::from_secs(1)).await });
        positions.advance(4);
        positions.advance(6);
        assert!(waiter.await.unwrap().is_ok());
        positions.advance(3);
        assert_eq!(positions.current(), 6);
        let err = positions
            .wait_for(9, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert_eq!((err.wanted, err.reached), (9, 6));
    }
}
