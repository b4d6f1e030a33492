//! Rate limiting: GCRA (the generic cell rate algorithm), lock-free, one per tenant.
//!
//! A tenant may send `burst` requests at once and `rps` per second sustained. The state is one
//! atomic "theoretical arrival time"; a decision is a load and a compare-and-swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Gcra {
    /// Nanoseconds between requests at the sustained rate; 0 = unlimited.
    interval: u64,
    /// How far ahead of now the arrival time may run: the burst.
    tolerance: u64,
    tat: AtomicU64,
    epoch: Instant,
    pub rps: u32,
    pub burst: u32,
    /// `RateLimit-Policy`, rendered once: it is sent on every response.
    pub policy: Option<http::HeaderValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow { remaining: u32 },
    Deny { retry_after: Duration },
}

impl Gcra {
    pub fn new(rps: u32, burst: u32) -> Self {
        let interval = if rps == 0 {
            0
        } else {
            1_000_000_000 / u64::from(rps)
        };
        let burst = burst.max(1);
        Self {
            interval,
            tolerance: interval * u64::from(burst - 1),
            tat: AtomicU64::new(0),
            epoch: Instant::now(),
            rps,
            burst,
            policy: http::HeaderValue::from_str(&format!(r#""tenant";q={rps};w=1;burst={burst}"#))
                .ok(),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.interval == 0
    }

    pub fn check(&self) -> Decision {
        self.check_at(self.epoch.elapsed())
    }

    /// The decision at `since_epoch` (tests drive the clock).
    pub fn check_at(&self, since_epoch: Duration) -> Decision {
        if self.interval == 0 {
            return Decision::Allow {
                remaining: u32::MAX,
            };
        }
        // Offset by the tolerance so arithmetic near the epoch never underflows.
        let now = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
            + self.tolerance
            + self.interval;
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let base = tat.max(now);
            if base - now > self.tolerance {
                return Decision::Deny {
                    retry_after: Duration::from_nanos(base - now - self.tolerance),
                };
            }
            let next = base + self.interval;
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let used = next - now;
                    let left =
                        (self.tolerance + self.interval).saturating_sub(used) / self.interval;
                    return Decision::Allow {
                        remaining: u32::try_from(left).unwrap_or(u32::MAX),
                    };
                }
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let g = Gcra::new(10, 5);
        let t0 = Duration::from_secs(1);
        let allowed = (0..20)
            .filter(|_| matches!(g.check_at(t0), Decision::Allow { .. }))
            .count();
        assert_eq!(allowed, 5, "the burst");
        let Decision::Deny { retry_after } = g.check_at(t0) else {
            panic!()
        };
        assert!(retry_after <= Duration::from_millis(100));
        // One second later: ten more (the sustained rate), no more.
        let t1 = t0 + Duration::from_secs(1);
        let allowed = (0..20)
            .filter(|_| matches!(g.check_at(t1), Decision::Allow { .. }))
            .count();
        assert_eq!(allowed, 5, "refilled up to the burst, not beyond");
        // Spread evenly at exactly the rate: all pass.
        let g = Gcra::new(100, 1);
        let ok = (0..1000u64)
            .filter(|i| {
                matches!(
                    g.check_at(Duration::from_millis(10 * i)),
                    Decision::Allow { .. }
                )
            })
            .count();
        assert_eq!(ok, 1000);
    }
}
