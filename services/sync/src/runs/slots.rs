//! A replica's run slots, handed to the waiting job that ranks highest: its tenant's plan's
//! processing priority first (billing's `processing_priority`: high, normal, low), then the
//! job's own priority (webhook 8, manual 5 by default, schedule 3), then the oldest.
//!
//! The worker takes jobs off the queue as they come (up to the consumer's `max_ack_pending`)
//! and they wait here for a slot, so when the replica is busy the next slot goes to the best
//! ranked job held, not to the one that arrived first. One task owns the waiting jobs (no
//! lock): it hears wants and releases on channels.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use tenantry_proto::events::v1::ProcessingPriority;
use tokio::sync::{mpsc, oneshot};

/// What orders waiting jobs: higher first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// The tenant's plan: 1 low, 2 normal (also no plan), 3 high.
    pub plan: u8,
    /// The job's priority, 1 to 9.
    pub job: u8,
    /// Arrival, reversed: the older ranks higher among equals.
    arrival: std::cmp::Reverse<u64>,
}

/// The plan's processing priority as a rank (an unset one is normal).
pub fn plan_rank(priority: i32) -> u8 {
    match ProcessingPriority::try_from(priority) {
        Ok(ProcessingPriority::Low) => 1,
        Ok(ProcessingPriority::High) => 3,
        _ => 2,
    }
}

struct Want {
    rank: Rank,
    reply: oneshot::Sender<Slot>,
}

impl PartialEq for Want {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}
impl Eq for Want {}
impl PartialOrd for Want {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Want {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// A slot held by a run; given back when dropped.
pub struct Slot {
    release: mpsc::UnboundedSender<()>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.release.send(());
    }
}

/// The slots of one replica. Cheap to clone; the task handing them out ends with the last
/// clone.
#[derive(Clone)]
pub struct RankedSlots {
    wants: mpsc::UnboundedSender<Want>,
    arrivals: Arc<AtomicU64>,
}

impl RankedSlots {
    pub fn new(slots: usize) -> Self {
        let (wants, mut wanted) = mpsc::unbounded_channel::<Want>();
        let (release, mut released) = mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            let mut free = slots.max(1);
            let mut waiting = BinaryHeap::new();
            loop {
                tokio::select! {
                    want = wanted.recv() => match want {
                        Some(want) => waiting.push(want),
                        None => return,
                    },
                    Some(()) = released.recv() => free += 1,
                }
                while free > 0 {
                    let Some(want) = waiting.pop() else {
                        break;
                    };
                    // A waiter that is gone drops the slot it was sent, which gives it back.
                    free -= 1;
                    let _ = want.reply.send(Slot {
                        release: release.clone(),
                    });
                }
            }
        });
        Self {
            wants,
            arrivals: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits for a slot for a job of `plan` rank and `job` priority; `None` once the slots
    /// are shut down.
    pub async fn acquire(&self, plan: u8, job: u8) -> Option<Slot> {
        let (reply, slot) = oneshot::channel();
        let rank = Rank {
            plan,
            job,
            arrival: std::cmp::Reverse(self.arrivals.fetch_add(1, AtomicOrdering::Relaxed)),
        };
        self.wants.send(Want { rank, reply }).ok()?;
        slot.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_best_plan_then_the_best_job_then_the_oldest() {
        let slots = RankedSlots::new(1);
        let held = slots.acquire(2, 5).await.unwrap();
        let (order_tx, mut order) = mpsc::unbounded_channel();
        // (name, plan, job), queued in this order while the one slot is held.
        for (name, plan, job) in [
            ("low plan, urgent job", 1, 9),
            ("normal, scheduled", 2, 3),
            ("normal, manual", 2, 5),
            ("high plan, scheduled", 3, 3),
            ("normal, manual, later", 2, 5),
        ] {
            let (slots, order_tx) = (slots.clone(), order_tx.clone());
            tokio::spawn(async move {
                let slot = slots.acquire(plan, job).await.unwrap();
                order_tx.send(name).unwrap();
                drop(slot);
            });
            // Queued one after the other.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(held);
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(order.recv().await.unwrap());
        }
        assert_eq!(
            seen,
            [
                "high plan, scheduled",
                "normal, manual",
                "normal, manual, later",
                "normal, scheduled",
                "low plan, urgent job",
            ]
        );
    }

    #[test]
    fn an_unset_processing_priority_is_normal() {
        assert_eq!(plan_rank(ProcessingPriority::Unspecified as i32), 2);
        assert_eq!(plan_rank(ProcessingPriority::Low as i32), 1);
        assert_eq!(plan_rank(ProcessingPriority::High as i32), 3);
        assert_eq!(plan_rank(42), 2);
    }
}
