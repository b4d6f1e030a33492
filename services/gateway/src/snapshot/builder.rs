//! Folds events into the next snapshot.
//!
//! The builder keeps the mutable state (every tenant's hosts, status, plan and routes) and, on
//! [`Builder::build`], derives a new immutable [`Snapshot`] that shares every unchanged tenant
//! with the previous one: a batch of events costs a copy of two maps of pointers, not a rebuild.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use tenantry_contracts::auth::ServiceAccountEvent;
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::{DecodeError, EventPayload, StoredMessage};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use tenantry_kit::egress::{Egress, EgressPolicy};

use super::deployments::{Deployments, instance_egress};
use super::model::{
    Backend, BackendState, Backends, Check, ConfigBounds, HostKey, HostSlot, KeyLimits, Limits,
    RouteEntry, Snapshot, TenantEntry, TenantStatus,
};
use crate::domain::events::{RouteEvent, SubscriptionEvent};
use crate::limit::{Cluster, Gcra};

#[derive(Debug, Default)]
struct TenantState {
    slug: Option<String>,
    domains: BTreeSet<String>,
    status: Option<TenantStatus>,
    plan: Option<pb::PlanLimitsChanged>,
    /// Meters whose quota is used up (100% crossed, not yet reset).
    exhausted: BTreeSet<String>,
    routes: BTreeMap<String, (pb::RouteUpserted, BTreeSet<String>)>,
    /// Live API keys: key id → SHA-256 digest.
    api_keys: BTreeMap<String, Vec<u8>>,
}

pub struct Builder {
    base_domain: String,
    tenants: HashMap<Uuid, TenantState>,
    /// Runtime state that outlives snapshots.
    /// By tenant and route, then address: route ids are only unique within a tenant (another
    /// tenant's route of the same id must never share, and so mark down, these backends).
    backends: HashMap<(Uuid, String), HashMap<String, Arc<BackendState>>>,
    /// The outbound policy new backends connect through.
    egress: Arc<Egress>,
    /// By limiter id (`t:<tenant>`, `r:<tenant>:<route>`, `k:<tenant>:<key>`).
    limiters: HashMap<String, (Limits, Arc<Gcra>)>,
    cluster: Arc<Cluster>,
    usage: HashMap<Uuid, Arc<crate::usage::Usage>>,
    route_metrics: HashMap<(Uuid, String), Arc<std::sync::OnceLock<super::model::RouteMetrics>>>,
    dirty: HashSet<Uuid>,
    published_hosts: HashMap<Uuid, Vec<String>>,
    /// Active health checks by tenant.
    checks: HashMap<Uuid, Vec<Check>>,
    /// Tenants' dedicated instances, for routes whose backend is a deployment.
    deployments: Deployments,
    current: Arc<Snapshot>,
    position: u64,
}

impl Builder {
    pub fn new(base_domain: &str, cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            base_domain: base_domain.trim_matches('.').to_lowercase(),
            tenants: HashMap::new(),
            backends: HashMap::new(),
            egress: Arc::new(Egress::system(EgressPolicy::default())),
            limiters: HashMap::new(),
            usage: HashMap::new(),
            route_metrics: HashMap::new(),
            dirty: HashSet::new(),
            published_hosts: HashMap::new(),
            checks: HashMap::new(),
            deployments: Deployments::default(),
            current: Arc::new(Snapshot::default()),
            position: 0,
        }
    }

    /// Backends connect through `egress` (the default: the default policy, which refuses
    /// loopback and private networks).
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.egress = egress;
        self
    }

    /// Folds one message of the log in (events of aggregates the gateway does not read are
    /// skipped). An event of a contract it reads that does not decode is left out of the
    /// snapshot and returned, so the follower can quarantine it; the others still apply.
    pub fn apply(&mut self, message: &StoredMessage) -> Vec<DecodeError> {
        self.position = message.position;
        let mut undecodable = Vec::new();
        for env in &message.batch.events {
            let Ok(tenant) = Uuid::try_parse(&env.tenant_id) else {
                continue;
            };
            let changed = if let Some(event) = TenantEvent::from_envelope(env) {
                event.map(|e| self.apply_tenant(tenant, e))
            } else if let Some(event) = RouteEvent::from_envelope(env) {
                event.map(|e| self.apply_route(tenant, &env.aggregate_id, e))
            } else if let Some(event) = SubscriptionEvent::from_envelope(env) {
                event.map(|e| self.apply_subscription(tenant, e))
            } else if let Some(event) = ServiceAccountEvent::from_envelope(env) {
                event.map(|e| self.apply_api_key(tenant, e))
            } else if let Some(event) = DeploymentEvent::from_envelope(env) {
                event.map(|e| self.deployments.apply(tenant, &env.aggregate_id, e))
            } else {
                Ok(false)
            };
            match changed {
                Ok(true) => {
                    self.dirty.insert(tenant);
                }
                Ok(false) => {}
                Err(e) => undecodable.push(e),
            }
        }
        undecodable
    }

    fn apply_tenant(&mut self, tenant: Uuid, event: TenantEvent) -> bool {
        let state = self.tenants.entry(tenant).or_default();
        match event {
            TenantEvent::Created(e) => {
                state.slug = Some(e.slug.to_lowercase());
                state.status = Some(TenantStatus::Active);
            }
            TenantEvent::DomainVerified(e) => {
                state.domains.insert(e.domain.to_lowercase());
            }
            TenantEvent::DomainRemoved(e) => {
                state.domains.remove(&e.domain.to_lowercase());
            }
            TenantEvent::Suspended(_) => state.status = Some(TenantStatus::Suspended),
            TenantEvent::Reactivated(_) => state.status = Some(TenantStatus::Active),
            TenantEvent::MarkedForDecommission(_) => {
                state.status = Some(TenantStatus::Decommissioning);
            }
            _ => return false,
        }
        true
    }

    fn apply_route(&mut self, tenant: Uuid, route_id: &str, event: RouteEvent) -> bool {
        let state = self.tenants.entry(tenant).or_default();
        match event {
            RouteEvent::Upserted(config) => {
                let drained = state
                    .routes
                    .remove(route_id)
                    .map(|(_, d)| d)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| config.backends.iter().any(|b| b.address == *a))
                    .collect();
                state.routes.insert(route_id.to_owned(), (config, drained));
            }
            RouteEvent::Removed(_) => {
                state.routes.remove(route_id);
                // Its runtime state goes too (requests in flight keep what they hold).
                self.backends.remove(&(tenant, route_id.to_owned()));
                self.limiters.remove(&format!("r:{tenant}:{route_id}"));
                self.route_metrics.remove(&(tenant, route_id.to_owned()));
            }
            RouteEvent::BackendDrained(d) => {
                if let Some((_, drained)) = state.routes.get_mut(route_id) {
                    drained.insert(d.address);
                }
            }
            RouteEvent::BackendUndrained(d) => {
                if let Some((_, drained)) = state.routes.get_mut(route_id) {
                    drained.remove(&d.address);
                }
            }
        }
        true
    }

    fn apply_subscription(&mut self, tenant: Uuid, event: SubscriptionEvent) -> bool {
        let state = self.tenants.entry(tenant).or_default();
        match event {
            SubscriptionEvent::PlanLimitsChanged(plan) => state.plan = Some(plan),
            SubscriptionEvent::QuotaThresholdCrossed(e) if e.percent >= 100 => {
                state.exhausted.insert(e.meter);
            }
            SubscriptionEvent::QuotaThresholdCrossed(_) => return false,
            SubscriptionEvent::QuotaReset(e) => {
                state.exhausted.remove(&e.meter);
            }
            // Billing's own history: nothing the gateway enforces.
            _ => return false,
        }
        true
    }

    fn apply_api_key(&mut self, tenant: Uuid, event: ServiceAccountEvent) -> bool {
        let state = self.tenants.entry(tenant).or_default();
        match event {
            ServiceAccountEvent::ApiKeyCreated(e) => {
                state.api_keys.insert(e.key_id, e.key_digest);
            }
            ServiceAccountEvent::ApiKeyRevoked(e) => {
                state.api_keys.remove(&e.key_id);
                self.limiters.remove(&format!("k:{tenant}:{}", e.key_id));
            }
            ServiceAccountEvent::AccountCreated(_) => return false,
        }
        // Only a plan with per-key limits looks at keys.
        state
            .plan
            .as_ref()
            .is_some_and(|p| p.api_key_requests_per_second > 0)
    }

    /// Whether events changed something since the last [`Builder::build`].
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    /// The snapshot with every change so far; unchanged tenants are shared with the last one.
    pub fn build(&mut self) -> Arc<Snapshot> {
        if self.dirty.is_empty() && self.current.position == self.position {
            return self.current.clone();
        }
        let mut hosts = self.current.hosts.clone();
        let mut tenants = self.current.tenants.clone();
        let checks_changed = !self.dirty.is_empty();
        for tenant in std::mem::take(&mut self.dirty) {
            self.checks.remove(&tenant);
            for host in self.published_hosts.remove(&tenant).unwrap_or_default() {
                let key = HostKey::of(&host);
                if hosts
                    .get(&key)
                    .is_some_and(|s| s.tenant.tenant_id == tenant)
                {
                    hosts.remove(&key);
                }
            }
            let Some(entry) = self.entry(tenant) else {
                tenants.remove(&tenant);
                continue;
            };
            let state = &self.tenants[&tenant];
            let mut mine: Vec<String> = state.domains.iter().cloned().collect();
            if let Some(slug) = &state.slug {
                mine.push(format!("{slug}.{}", self.base_domain));
            }
            let entry = Arc::new(entry);
            let slot = HostSlot::of(&entry);
            for host in &mine {
                hosts.insert(HostKey::of(host), slot.clone());
            }
            self.published_hosts.insert(tenant, mine);
            tenants.insert(tenant, entry);
        }
        let checks = if checks_changed {
            Arc::new(self.checks.values().flatten().cloned().collect())
        } else {
            self.current.checks.clone()
        };
        self.current = Arc::new(Snapshot {
            hosts,
            tenants,
            checks,
            deployments: self.deployments.known(),
            position: self.position,
        });
        self.current.clone()
    }

    fn entry(&mut self, tenant: Uuid) -> Option<TenantEntry> {
        let state = self.tenants.get(&tenant)?;
        let status = state.status?;
        let plan = state.plan.clone().unwrap_or_default();
        let quota = QuotaEffect::of(&plan, &state.exhausted);
        let limits = if let Some(rps) = quota.throttle_rps {
            Limits { rps, burst: rps }
        } else {
            Limits {
                rps: plan.requests_per_second,
                burst: plan.burst.max(plan.requests_per_second),
            }
        };
        let limiter = shared_limiter(
            &mut self.limiters,
            &self.cluster,
            "tenant",
            format!("t:{tenant}"),
            limits,
        );
        let route_limits = Limits {
            rps: plan.route_requests_per_second,
            burst: plan.route_burst.max(plan.route_requests_per_second),
        };
        let key_limits = Limits {
            rps: plan.api_key_requests_per_second,
            burst: plan.api_key_burst.max(plan.api_key_requests_per_second),
        };
        let api_keys = (key_limits.rps > 0).then(|| {
            let keys = state
                .api_keys
                .iter()
                .map(|(id, digest)| {
                    let g = shared_limiter(
                        &mut self.limiters,
                        &self.cluster,
                        "api_key",
                        format!("k:{tenant}:{id}"),
                        key_limits,
                    );
                    (digest.clone().into_boxed_slice(), g)
                })
                .collect();
            let unknown = shared_limiter(
                &mut self.limiters,
                &self.cluster,
                "api_key",
                format!("k:{tenant}:unknown"),
                key_limits,
            );
            Arc::new(KeyLimits { keys, unknown })
        });
        let mut routes: Vec<Arc<RouteEntry>> = Vec::with_capacity(state.routes.len());
        for (route_id, (config, drained)) in &state.routes {
            // A deployment's ready instances (of this tenant), or the route's own backends.
            let deployment = Uuid::try_parse(&config.deployment_id).ok();
            let targets: Vec<(&str, u32)> = match deployment {
                Some(id) => self
                    .deployments
                    .ready(tenant, id)
                    .into_iter()
                    .map(|a| (a, 1))
                    .collect(),
                None => config
                    .backends
                    .iter()
                    .map(|b| (b.address.as_str(), b.weight.max(1)))
                    .collect(),
            };
            let states = self.backends.entry((tenant, route_id.clone())).or_default();
            // Backends the route no longer lists are forgotten (their counters with them).
            states.retain(|address, _| targets.iter().any(|(a, _)| a == address));
            let backends: Backends = targets
                .iter()
                .map(|(address, weight)| Backend {
                    state: states
                        .entry((*address).to_owned())
                        .or_insert_with(|| {
                            let egress = if deployment.is_some() {
                                instance_egress(&self.egress, address)
                            } else {
                                self.egress.clone()
                            };
                            Arc::new(BackendState::new((*address).to_owned(), egress))
                        })
                        .clone(),
                    weight: *weight,
                    drained: drained.contains(*address),
                })
                .collect();
            if let Some(check) = config.health_check.as_ref().filter(|c| !c.path.is_empty()) {
                let mine = self.checks.entry(tenant).or_default();
                mine.extend(backends.iter().map(|b| Check {
                    backend: b.state.clone(),
                    config: check.clone(),
                }));
            } else {
                // No check any more: nothing would bring a backend it took out back.
                for b in &backends {
                    b.state
                        .healthy
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let wheel = backends
                .iter()
                .enumerate()
                .flat_map(|(i, b)| std::iter::repeat_n(i, b.weight as usize))
                .collect();
            routes.push(Arc::new(RouteEntry::new(
                tenant,
                route_id.clone(),
                config.hosts.iter().map(|h| h.to_lowercase()).collect(),
                config.path_prefix.clone(),
                pb::BalanceAlgorithm::try_from(config.algorithm).unwrap_or_default(),
                http::HeaderName::from_bytes(config.hash_header.as_bytes()).ok(),
                backends,
                wheel,
                (route_limits.rps > 0).then(|| {
                    shared_limiter(
                        &mut self.limiters,
                        &self.cluster,
                        "route",
                        format!("r:{tenant}:{route_id}"),
                        route_limits,
                    )
                }),
                config.upstream_protocol == pb::UpstreamProtocol::H2c as i32,
                deployment,
                self.route_metrics
                    .entry((tenant, route_id.clone()))
                    .or_default()
                    .clone(),
            )));
        }
        // Longest prefix first; of equal prefixes, host-specific ones first.
        routes.sort_by_key(|r| (std::cmp::Reverse(r.path_prefix.len()), r.hosts.is_empty()));
        let fallback = routes.iter().find(|r| r.is_catch_all()).cloned();
        let specific = routes
            .iter()
            .filter(|r| !r.is_catch_all())
            .cloned()
            .collect();
        Some(TenantEntry {
            tenant_id: tenant,
            status,
            fallback,
            specific,
            routes,
            limits,
            config_limits: ConfigBounds {
                max_routes: plan.max_routes,
                max_backends_per_route: plan.max_backends_per_route,
            },
            limiter,
            api_keys,
            blocked_by_quota: quota.block_traffic,
            config_blocked: quota.block_config,
            metrics: std::sync::OnceLock::new(),
            usage: {
                let usage = self.usage.entry(tenant).or_default().clone();
                usage.set_in_flight_share(plan.max_in_flight);
                usage
            },
        })
    }
}

/// The limiter `id` with `limits`: the same one while the limits stay (its state survives
/// snapshots), a fresh one when they change.
fn shared_limiter(
    limiters: &mut HashMap<String, (Limits, Arc<Gcra>)>,
    cluster: &Cluster,
    kind: &'static str,
    id: String,
    limits: Limits,
) -> Arc<Gcra> {
    match limiters.get(&id) {
        Some((l, g)) if *l == limits => g.clone(),
        _ => {
            let g = Arc::new(cluster.limiter(kind, &id, limits.rps, limits.burst));
            limiters.insert(id, (limits, g.clone()));
            g
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_proto::events::v1::{Envelope, EventBatch};

    /// Folds `event` of aggregate `id` in, as the log would deliver it.
    fn apply<E: EventPayload>(builder: &mut Builder, tenant: Uuid, id: &str, event: E) {
        let position = builder.position() + 1;
        let undecodable = builder.apply(&StoredMessage {
            position,
            subject: String::new(),
            batch: EventBatch {
                events: vec![Envelope {
                    tenant_id: tenant.to_string(),
                    aggregate_type: E::AGGREGATE_TYPE.into(),
                    aggregate_id: id.into(),
                    event_type: event.event_type().into(),
                    payload: event.encode_payload(),
                    ..Default::default()
                }],
            },
            traceparent: None,
        });
        assert!(undecodable.is_empty());
    }

    fn route(backends: &[&str]) -> RouteEvent {
        RouteEvent::Upserted(pb::RouteUpserted {
            route_id: "r1".into(),
            path_prefix: "/".into(),
            algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
            backends: backends
                .iter()
                .map(|a| pb::Backend {
                    address: (*a).into(),
                    weight: 1,
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn runtime_state_of_removed_backends_and_routes_is_dropped() {
        let mut b = Builder::new("localhost", Cluster::standalone());
        let t = Uuid::now_v7();
        let created = TenantEvent::Created(pb::TenantCreated {
            slug: "acme".into(),
            ..Default::default()
        });
        apply(&mut b, t, &t.to_string(), created);
        apply(&mut b, t, "r1", route(&["127.0.0.1:1", "127.0.0.1:2"]));
        let first = b.build();
        let kept = first.tenants[&t].routes[0].backends[0].state.clone();
        let key = (t, "r1".to_owned());
        assert_eq!(b.backends[&key].len(), 2);

        apply(&mut b, t, "r1", route(&["127.0.0.1:1"]));
        let second = b.build();
        assert_eq!(b.backends[&key].len(), 1);
        assert!(
            Arc::ptr_eq(&kept, &second.tenants[&t].routes[0].backends[0].state),
            "a backend the route keeps keeps its state"
        );
        assert!(
            second.tenants[&t].fallback.is_some(),
            "prefix / without hosts is the catch-all"
        );

        let removed = RouteEvent::Removed(pb::RouteRemoved {
            route_id: "r1".into(),
        });
        apply(&mut b, t, "r1", removed);
        let third = b.build();
        assert!(third.tenants[&t].routes.is_empty());
        assert!(!b.backends.contains_key(&key));
        assert!(third.tenant_of_host("acme.localhost").is_some());
        assert!(third.tenant_of_host("other.localhost").is_none());
    }

    #[test]
    fn two_tenants_routes_of_one_id_share_no_backend_state() {
        let mut b = Builder::new("localhost", Cluster::standalone());
        let (t, u) = (Uuid::now_v7(), Uuid::now_v7());
        for (tenant, slug) in [(t, "a"), (u, "b")] {
            let created = TenantEvent::Created(pb::TenantCreated {
                slug: slug.into(),
                ..Default::default()
            });
            apply(&mut b, tenant, &tenant.to_string(), created);
            apply(&mut b, tenant, "r1", route(&["127.0.0.1:1"]));
        }
        let s = b.build();
        let (mine, theirs) = (
            &s.tenants[&t].routes[0].backends[0].state,
            &s.tenants[&u].routes[0].backends[0].state,
        );
        assert!(!Arc::ptr_eq(mine, theirs));
        let removed = RouteEvent::Removed(pb::RouteRemoved {
            route_id: "r1".into(),
        });
        apply(&mut b, u, "r1", removed);
        b.build();
        assert!(
            b.backends.contains_key(&(t, "r1".to_owned())),
            "the other tenant's stays"
        );
    }
}

/// What the plan says happens now that `exhausted` meters are used up: each meter's own
/// behaviour (or the plan's default), all of them at once (the lowest throttle wins).
#[derive(Debug, Default, PartialEq)]
struct QuotaEffect {
    throttle_rps: Option<u32>,
    block_traffic: bool,
    block_config: bool,
}

impl QuotaEffect {
    fn of(plan: &pb::PlanLimitsChanged, exhausted: &BTreeSet<String>) -> Self {
        let mut effect = Self::default();
        for meter in exhausted {
            let own = plan.meters.iter().find(|m| &m.meter == meter);
            let (behaviour, throttle) = match own {
                Some(m) => (m.behaviour, m.throttle_rps),
                None => (plan.quota_behaviour, plan.throttle_rps),
            };
            match pb::QuotaBehaviour::try_from(behaviour).unwrap_or_default() {
                pb::QuotaBehaviour::Throttle => {
                    let rps = throttle.max(1);
                    effect.throttle_rps = Some(effect.throttle_rps.map_or(rps, |r| r.min(rps)));
                }
                pb::QuotaBehaviour::BlockTraffic => effect.block_traffic = true,
                pb::QuotaBehaviour::BlockConfig => effect.block_config = true,
                pb::QuotaBehaviour::AlertOnly | pb::QuotaBehaviour::Unspecified => {}
            }
        }
        effect
    }
}

#[cfg(test)]
mod quota_tests {
    use super::*;

    #[test]
    fn each_exhausted_meter_applies_its_own_behaviour() {
        let plan = pb::PlanLimitsChanged {
            quota_behaviour: pb::QuotaBehaviour::AlertOnly as i32,
            meters: vec![
                pb::MeterQuota {
                    meter: "requests".into(),
                    behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
                    ..Default::default()
                },
                pb::MeterQuota {
                    meter: "bytes".into(),
                    behaviour: pb::QuotaBehaviour::Throttle as i32,
                    throttle_rps: 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let set = |m: &[&str]| m.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(QuotaEffect::of(&plan, &set(&[])), QuotaEffect::default());
        let bytes = QuotaEffect::of(&plan, &set(&["bytes"]));
        assert_eq!(bytes.throttle_rps, Some(5));
        assert!(!bytes.block_traffic);
        assert!(QuotaEffect::of(&plan, &set(&["requests"])).block_traffic);
        // A meter the plan does not list follows the plan's default (alert only here).
        assert_eq!(
            QuotaEffect::of(&plan, &set(&["records"])),
            QuotaEffect::default()
        );
    }
}
