//! The autoscaler: measured CPU in, `autoscaling.triggered` out, for deployments whose
//! runtime can measure its instances ([`Runtime::cpu_time`]: the process runtime reads
//! `/proc/<pid>/stat`).
//!
//! Every sample it reads each healthy instance's CPU time of the deployment's current
//! revision; the difference from the previous sample over the time between them is the
//! instance's use, in percent of its CPU request (of one core when it requests none), as
//! Kubernetes' HPA measures. The average over the instances is compared with the target:
//! - above it for the whole up window: one instance more (up to `max_replicas`);
//! - below it for the whole down window: HPA's `ceil(replicas × average / target)`, at least
//!   `min_replicas`, so a load that is gone brings it back to the minimum.
//!
//! It decides only while the instances running are the ones desired (no rollout or scale
//! under way: a starting instance has no load yet) and starts its windows afresh after every
//! change of the count. Its decision goes through the aggregate, which drops it if the count
//! changed meanwhile; the reconciler then starts or stops the instances.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantry_eventstore::{CommandMeta, Repository};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::directory::Directory;
use crate::domain::{Deployment, DeploymentCommand, deployment};
use crate::runtime::{Health, Runtime};

/// The autoscaler's timing.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub sample: Duration,
    pub up: Duration,
    pub down: Duration,
}

/// Where one deployment's measurements stand.
#[derive(Debug, Default)]
struct Track {
    /// Each instance's CPU time at the previous sample, and when it was read.
    last: HashMap<Uuid, (Duration, Instant)>,
    /// The replica count the windows were measured at.
    replicas: i32,
    above_since: Option<Instant>,
    below_since: Option<Instant>,
}

impl Track {
    /// What to scale to after a sample of `average` percent at `now`, if anything.
    fn decide(
        &mut self,
        now: Instant,
        average: u32,
        replicas: i32,
        a: &pb::AutoscalingSpec,
        windows: Windows,
    ) -> Option<i32> {
        if replicas != self.replicas {
            self.replicas = replicas;
            self.above_since = None;
            self.below_since = None;
        }
        let target = a.target_cpu_percent.max(1);
        if average > target {
            self.below_since = None;
            let since = *self.above_since.get_or_insert(now);
            (now.duration_since(since) >= windows.up && replicas < a.max_replicas)
                .then_some(replicas + 1)
        } else if average < target {
            self.above_since = None;
            let since = *self.below_since.get_or_insert(now);
            let wanted = (u64::try_from(replicas).unwrap_or(0) * u64::from(average))
                .div_ceil(u64::from(target));
            let wanted = i32::try_from(wanted)
                .unwrap_or(i32::MAX)
                .max(a.min_replicas);
            (now.duration_since(since) >= windows.down && wanted < replicas).then_some(wanted)
        } else {
            self.above_since = None;
            self.below_since = None;
            None
        }
    }
}

pub struct Autoscaler {
    pub directory: Arc<Directory>,
    pub runtime: Arc<dyn Runtime>,
    pub deployments: Repository<Deployment>,
    pub windows: Windows,
    tracks: HashMap<(Uuid, Uuid), Track>,
}

impl Autoscaler {
    pub fn new(
        directory: Arc<Directory>,
        runtime: Arc<dyn Runtime>,
        deployments: Repository<Deployment>,
        windows: Windows,
    ) -> Self {
        Self {
            directory,
            runtime,
            deployments,
            windows,
            tracks: HashMap::new(),
        }
    }

    /// Samples every `windows.sample` until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.sample().await;
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.windows.sample) => {}
            }
        }
    }

    /// One sample of every autoscaled deployment of this runtime.
    pub async fn sample(&mut self) {
        let name = self.runtime.name();
        let scaled: Vec<((Uuid, Uuid), Deployment)> = self
            .directory
            .all()
            .into_iter()
            .filter(|(_, d)| {
                d.spec.runtime == name
                    && d.desired_replicas() > 0
                    && d.spec.autoscaling.as_ref().is_some_and(|a| a.enabled)
            })
            .collect();
        let instances = self.runtime.instances();
        self.tracks
            .retain(|key, _| scaled.iter().any(|(k, _)| k == key));
        for (key, wanted) in scaled {
            let Some(a) = wanted.spec.autoscaling else {
                continue;
            };
            let current: Vec<Uuid> = instances
                .iter()
                .filter(|i| {
                    (i.tenant_id, i.deployment_id) == key
                        && i.generation == wanted.generation
                        && !i.stopping
                        && i.health == Health::Healthy
                })
                .map(|i| i.instance_id)
                .collect();
            let others = instances.iter().any(|i| {
                (i.tenant_id, i.deployment_id) == key
                    && !matches!(i.health, Health::Exited(_))
                    && !current.contains(&i.instance_id)
            });
            let track = self.tracks.entry(key).or_default();
            let now = Instant::now();
            let request = match wanted.spec.resources.as_ref() {
                Some(r) if r.cpu_request_millis > 0 => r.cpu_request_millis,
                _ => 1_000,
            };
            let mut percents = Vec::with_capacity(current.len());
            let mut last = HashMap::with_capacity(current.len());
            for id in &current {
                let Some(cpu) = self.runtime.cpu_time(*id) else {
                    continue;
                };
                if let Some((before, at)) = track.last.get(id) {
                    let wall = now.duration_since(*at).as_micros().max(1);
                    let used = cpu.saturating_sub(*before).as_micros();
                    // used / wall cores, in millicores, over the request, in percent.
                    let percent = used * 1_000 * 100 / wall / u128::try_from(request).unwrap_or(1);
                    percents.push(u32::try_from(percent).unwrap_or(u32::MAX));
                }
                last.insert(*id, (cpu, now));
            }
            track.last = last;
            let settled = current.len() == wanted.desired_replicas() && !others;
            if !settled || percents.is_empty() || percents.len() != current.len() {
                // A rollout, a scale or a restart under way: measure again once it is over.
                track.above_since = None;
                track.below_since = None;
                continue;
            }
            let average = u32::try_from(
                percents.iter().map(|p| u64::from(*p)).sum::<u64>() / percents.len() as u64,
            )
            .unwrap_or(u32::MAX);
            let replicas = wanted.spec.replicas;
            let Some(to) = track.decide(now, average, replicas, &a, self.windows) else {
                continue;
            };
            let triggered = pb::AutoscalingTriggered {
                from_replicas: replicas,
                to_replicas: to,
                cpu_percent: average,
            };
            match append(&self.deployments, key, triggered).await {
                Ok(()) => {
                    tracing::info!(tenant_id = %key.0, deployment = %key.1, from = replicas, to, cpu_percent = average, "autoscaling triggered");
                    track.above_since = None;
                    track.below_since = None;
                }
                Err(e) => {
                    tracing::warn!(tenant_id = %key.0, deployment = %key.1, error = %e, "autoscaling decision not recorded; next sample retries")
                }
            }
        }
    }
}

async fn append(
    deployments: &Repository<Deployment>,
    (tenant, id): (Uuid, Uuid),
    triggered: pb::AutoscalingTriggered,
) -> Result<(), String> {
    let address = deployment::address(tenant, id).map_err(|e| e.to_string())?;
    let command_id = Uuid::now_v7().to_string();
    let meta = CommandMeta {
        correlation_id: command_id.clone(),
        command_id,
        actor: "system:orchestration".into(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    };
    deployments
        .execute(&address, &DeploymentCommand::Autoscale(triggered), &meta)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOWS: Windows = Windows {
        sample: Duration::from_millis(100),
        up: Duration::from_secs(3),
        down: Duration::from_secs(10),
    };

    fn range(min: i32, max: i32) -> pb::AutoscalingSpec {
        pb::AutoscalingSpec {
            enabled: true,
            min_replicas: min,
            max_replicas: max,
            target_cpu_percent: 50,
        }
    }

    #[test]
    fn a_load_above_the_target_adds_one_instance_after_the_whole_up_window() {
        let mut t = Track::default();
        let start = Instant::now();
        let a = range(1, 3);
        assert_eq!(t.decide(start, 180, 1, &a, WINDOWS), None);
        assert_eq!(
            t.decide(start + Duration::from_secs(2), 180, 1, &a, WINDOWS),
            None
        );
        // A dip resets the window.
        assert_eq!(
            t.decide(start + Duration::from_secs(2), 50, 1, &a, WINDOWS),
            None
        );
        let again = start + Duration::from_secs(3);
        assert_eq!(t.decide(again, 180, 1, &a, WINDOWS), None);
        assert_eq!(t.decide(again + WINDOWS.up, 180, 1, &a, WINDOWS), Some(2));
        // At the maximum nothing more.
        let mut t = Track::default();
        assert_eq!(t.decide(start, 180, 3, &a, WINDOWS), None);
        assert_eq!(t.decide(start + WINDOWS.up, 180, 3, &a, WINDOWS), None);
    }

    #[test]
    fn a_load_gone_brings_it_back_to_the_minimum_after_the_down_window() {
        let mut t = Track::default();
        let start = Instant::now();
        let a = range(2, 6);
        assert_eq!(t.decide(start, 0, 5, &a, WINDOWS), None);
        assert_eq!(
            t.decide(start + Duration::from_secs(9), 0, 5, &a, WINDOWS),
            None
        );
        assert_eq!(t.decide(start + WINDOWS.down, 0, 5, &a, WINDOWS), Some(2));
        // Some load left: HPA's proportion (5 × 30 / 50 = 3).
        let mut t = Track::default();
        assert_eq!(t.decide(start, 30, 5, &a, WINDOWS), None);
        assert_eq!(t.decide(start + WINDOWS.down, 30, 5, &a, WINDOWS), Some(3));
        // Just under the target with the count it has: nothing to remove.
        let mut t = Track::default();
        assert_eq!(t.decide(start, 45, 2, &a, WINDOWS), None);
        assert_eq!(t.decide(start + WINDOWS.down, 45, 2, &a, WINDOWS), None);
    }

    #[test]
    fn a_new_replica_count_starts_the_windows_afresh() {
        let mut t = Track::default();
        let start = Instant::now();
        let a = range(1, 3);
        assert_eq!(t.decide(start, 180, 1, &a, WINDOWS), None);
        assert_eq!(t.decide(start + WINDOWS.up, 180, 2, &a, WINDOWS), None);
        assert_eq!(
            t.decide(start + WINDOWS.up * 2, 180, 2, &a, WINDOWS),
            Some(3)
        );
    }
}
