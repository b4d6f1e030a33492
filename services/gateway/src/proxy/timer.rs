//! A coarse timer for the edge's deadlines: the header-read timeout (hyper re-arms it for every
//! request a connection reads, and while the connection waits for the next one) and the
//! upstream response timeout (every request); also each connection's first-request and idle
//! check, a request body's read deadline (only once it waits on the client) and HTTP/2
//! keep-alive pings.
//!
//! Both are seconds long and almost never reached, and each request used to set both on
//! tokio's timer: an entry put in its wheel under the driver's lock when first polled, taken
//! out again when the request moved on, and the wheel walked when the worker parked; about a
//! twentieth of the gateway's instructions per request (callgrind). Here a worker's deadlines
//! are a list that a task looks through every [`TICK`]: it wakes those whose time has come and
//! forgets those dropped. Setting one is an allocation and a push; a deadline fires no earlier
//! than set and at most one tick late.
//!
//! A tick looks at every deadline set, one per open connection and one per request in flight
//! (7 ns each, measured here: 10,000 idle connections cost a worker 0.15% of a core). Filing
//! them by due time instead would leave each dropped one in memory until its time came, up to
//! a minute of every request's.

#![allow(clippy::disallowed_types)] // std Mutex: per worker, held for a push or a tick, never across an await

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// How often a worker looks at its deadlines.
pub const TICK: Duration = Duration::from_millis(50);

/// One worker's deadlines (and hyper's timer for its connections).
#[derive(Clone, Default)]
pub struct Coarse {
    list: Arc<Mutex<List>>,
}

#[derive(Default)]
struct List {
    deadlines: Vec<Weak<Deadline>>,
    /// Whether the task that ticks is running (it stops when the list is empty).
    ticking: bool,
}

struct Deadline {
    /// Nanoseconds since [`ORIGIN`].
    at: AtomicU64,
    fired: AtomicBool,
    waker: AtomicWaker,
}

static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

fn nanos(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*ORIGIN).as_nanos()).unwrap_or(u64::MAX)
}

/// Resolves once its deadline has passed.
pub struct Sleep {
    deadline: Arc<Deadline>,
}

impl Coarse {
    pub fn sleep_until(&self, at: Instant) -> Sleep {
        let deadline = Arc::new(Deadline {
            at: AtomicU64::new(nanos(at)),
            fired: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.deadlines.push(Arc::downgrade(&deadline));
        if !list.ticking {
            list.ticking = true;
            tokio::spawn(tick(Arc::downgrade(&self.list)));
        }
        Sleep { deadline }
    }

    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(Instant::now() + duration)
    }
}

/// Fires the deadlines that have passed, every [`TICK`], while any is set.
async fn tick(list: Weak<Mutex<List>>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(list) = list.upgrade() else { return };
        let now = nanos(Instant::now());
        let mut list = list.lock().unwrap_or_else(|p| p.into_inner());
        list.deadlines.retain(|d| {
            let Some(d) = d.upgrade() else { return false };
            if d.at.load(Ordering::Relaxed) > now {
                return true;
            }
            d.fired.store(true, Ordering::Release);
            d.waker.wake();
            false
        });
        if list.deadlines.is_empty() {
            list.ticking = false;
            return;
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = &self.deadline;
        if deadline.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        deadline.waker.register(cx.waker());
        // A tick between the check and the registration would have woken no one.
        if deadline.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for Coarse {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Coarse::sleep(self, duration))
    }

    fn sleep_until(&self, at: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Coarse::sleep_until(self, at))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, at: Instant) {
        let Some(sleep) = sleep.as_mut().downcast_mut_pin::<Sleep>() else {
            return;
        };
        // One that already fired is set again; one still listed just moves.
        if sleep.deadline.fired.load(Ordering::Acquire) {
            *sleep.get_mut() = Coarse::sleep_until(self, at);
        } else {
            sleep.deadline.at.store(nanos(at), Ordering::Relaxed);
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_a_tick(took: Duration, set: Duration) {
        assert!(took >= set, "fired early: {took:?} < {set:?}");
        assert!(
            took < set + TICK * 4,
            "fired late: {took:?} for {set:?} (a tick is {TICK:?})"
        );
    }

    #[tokio::test]
    async fn a_deadline_fires_no_earlier_than_set_and_about_a_tick_late_at_most() {
        let timer = Coarse::default();
        let started = Instant::now();
        timer.sleep(Duration::from_millis(120)).await;
        within_a_tick(started.elapsed(), Duration::from_millis(120));
    }

    #[tokio::test]
    async fn a_reset_moves_the_deadline_either_way() {
        use hyper::rt::Timer;
        let timer = Coarse::default();
        let started = Instant::now();
        let mut sleep = Timer::sleep(&timer, Duration::from_secs(30));
        assert!(futures::poll!(sleep.as_mut()).is_pending());
        timer.reset(&mut sleep, started + Duration::from_millis(100));
        sleep.as_mut().await;
        within_a_tick(started.elapsed(), Duration::from_millis(100));

        // Fired, then set again.
        let again = Instant::now();
        timer.reset(&mut sleep, again + Duration::from_millis(80));
        assert!(futures::poll!(sleep.as_mut()).is_pending());
        sleep.await;
        within_a_tick(again.elapsed(), Duration::from_millis(80));
    }

    #[tokio::test]
    async fn dropped_deadlines_are_forgotten_and_the_tick_stops_when_none_is_left() {
        let timer = Coarse::default();
        for _ in 0..1000 {
            drop(timer.sleep(Duration::from_secs(60)));
        }
        assert_eq!(timer.list.lock().unwrap().deadlines.len(), 1000);
        tokio::time::sleep(TICK * 3).await;
        {
            let list = timer.list.lock().unwrap();
            assert!(list.deadlines.is_empty());
            assert!(!list.ticking);
        }
        // And starts again for the next one.
        let started = Instant::now();
        timer.sleep(Duration::from_millis(60)).await;
        within_a_tick(started.elapsed(), Duration::from_millis(60));
    }
}
