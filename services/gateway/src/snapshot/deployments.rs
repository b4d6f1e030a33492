//! Tenants' dedicated instances, as orchestration's `deployment` events report them, for the
//! routes whose backend is a deployment.
//!
//! An instance is ready (in its routes' rotation) from its `health_changed` to healthy until
//! it turns unhealthy, is announced as draining (`pod_draining`, which orchestration appends
//! before it signals the instance to stop) or is deleted. Everything is keyed by the events'
//! tenant first: a route reaches only deployments of its own tenant, whatever id it names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_kit::egress::Egress;
use tenantry_kit::net::Cidr;
use uuid::Uuid;

#[derive(Debug)]
struct Instance {
    address: String,
    healthy: bool,
    draining: bool,
}

impl Instance {
    fn ready(&self) -> bool {
        self.healthy && !self.draining
    }
}

#[derive(Debug, Default)]
pub struct Deployments {
    /// By (tenant, deployment), from its provisioning until it is decommissioned: its
    /// instances by id.
    by: HashMap<(Uuid, Uuid), BTreeMap<String, Instance>>,
    /// The same keys, shared with the snapshot (the configuration API checks a route's
    /// deployment against it); copied only when a deployment comes or goes.
    known: Arc<HashSet<(Uuid, Uuid)>>,
}

impl Deployments {
    /// Folds one event of deployment `id` of `tenant` in. True when the ready instances
    /// changed, so the tenant's routes must be rebuilt.
    pub fn apply(&mut self, tenant: Uuid, id: &str, event: DeploymentEvent) -> bool {
        let Ok(id) = Uuid::try_parse(id) else {
            return false;
        };
        let key = (tenant, id);
        match event {
            DeploymentEvent::Provisioned(_) => {
                self.by.entry(key).or_default();
                if !self.known.contains(&key) {
                    Arc::make_mut(&mut self.known).insert(key);
                }
                false
            }
            DeploymentEvent::Decommissioned(_) => {
                Arc::make_mut(&mut self.known).remove(&key);
                self.by
                    .remove(&key)
                    .is_some_and(|instances| instances.values().any(Instance::ready))
            }
            // Not ready before its first healthy probe: nothing routes to it yet.
            DeploymentEvent::PodCreated(c) => {
                if let Some(instances) = self.by.get_mut(&key) {
                    instances.insert(
                        c.instance_id,
                        Instance {
                            address: c.address,
                            healthy: false,
                            draining: false,
                        },
                    );
                }
                false
            }
            DeploymentEvent::HealthChanged(h) => {
                self.change(key, &h.instance_id, |i| i.healthy = h.healthy)
            }
            DeploymentEvent::PodDraining(d) => {
                self.change(key, &d.instance_id, |i| i.draining = true)
            }
            DeploymentEvent::PodDeleted(d) => self
                .by
                .get_mut(&key)
                .and_then(|instances| instances.remove(&d.instance_id))
                .is_some_and(|i| i.ready()),
            _ => false,
        }
    }

    /// Applies `change` to an instance; true when its readiness changed.
    fn change(
        &mut self,
        key: (Uuid, Uuid),
        instance: &str,
        change: impl FnOnce(&mut Instance),
    ) -> bool {
        let Some(i) = self.by.get_mut(&key).and_then(|m| m.get_mut(instance)) else {
            return false;
        };
        let before = i.ready();
        change(i);
        before != i.ready()
    }

    /// The addresses of deployment `id`'s ready instances, in the order of their ids (of
    /// `tenant` only).
    pub fn ready(&self, tenant: Uuid, id: Uuid) -> Vec<&str> {
        self.by
            .get(&(tenant, id))
            .map(|m| {
                m.values()
                    .filter(|i| i.ready())
                    .map(|i| i.address.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every (tenant, deployment) provisioned and not decommissioned.
    pub fn known(&self) -> Arc<HashSet<(Uuid, Uuid)>> {
        self.known.clone()
    }
}

/// The outbound policy for an instance at `address`: the gateway's, also allowing that one
/// address. Orchestration allocated it (a loopback port of the process runtime, a pod's
/// private address), so the built-in refusal of loopback and private networks, which guards
/// against addresses tenants name, does not apply; the platform's own ports and the
/// operator's denied networks still do.
pub fn instance_egress(egress: &Arc<Egress>, address: &str) -> Arc<Egress> {
    let Some(ip) = address.parse::<SocketAddr>().ok().map(|a| a.ip()) else {
        return egress.clone();
    };
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    match Cidr::new(ip, prefix) {
        Some(host) => Arc::new(Egress::new(
            egress.policy().clone().allowing(host),
            egress.resolver().clone(),
        )),
        None => egress.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_proto::events::v1 as pb;

    fn created(instance: &str, address: &str) -> DeploymentEvent {
        DeploymentEvent::PodCreated(pb::PodCreated {
            instance_id: instance.into(),
            address: address.into(),
            ..Default::default()
        })
    }

    fn health(instance: &str, healthy: bool) -> DeploymentEvent {
        DeploymentEvent::HealthChanged(pb::HealthChanged {
            instance_id: instance.into(),
            healthy,
            detail: String::new(),
        })
    }

    #[test]
    fn an_instance_is_ready_from_healthy_until_draining_and_only_under_its_tenant() {
        let mut d = Deployments::default();
        let (t, other, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let key = id.to_string();
        let provisioned = DeploymentEvent::Provisioned(pb::DeploymentProvisioned::default());
        assert!(!d.apply(t, &key, provisioned));
        assert!(d.known().contains(&(t, id)));
        assert!(!d.apply(t, &key, created("i1", "127.0.0.1:1001")));
        assert!(
            d.ready(t, id).is_empty(),
            "not before its first healthy probe"
        );
        assert!(d.apply(t, &key, health("i1", true)));
        assert!(!d.apply(t, &key, health("i1", true)), "no change");
        assert_eq!(d.ready(t, id), ["127.0.0.1:1001"]);
        // Another tenant's events under the same deployment id reach nothing of `t`'s, and
        // `t`'s deployment is not reachable under another tenant.
        assert!(!d.apply(other, &key, created("i2", "127.0.0.1:1002")));
        assert!(!d.apply(other, &key, health("i2", true)));
        assert!(d.ready(other, id).is_empty());
        assert!(!d.known().contains(&(other, id)));
        assert_eq!(d.ready(t, id), ["127.0.0.1:1001"]);

        let draining = DeploymentEvent::PodDraining(pb::PodDraining {
            instance_id: "i1".into(),
            reason: "drained".into(),
        });
        assert!(d.apply(t, &key, draining));
        assert!(d.ready(t, id).is_empty(), "out of rotation before it stops");
        assert!(
            !d.apply(t, &key, health("i1", true)),
            "a draining one stays out"
        );
        let deleted = DeploymentEvent::PodDeleted(pb::PodDeleted {
            instance_id: "i1".into(),
            ..Default::default()
        });
        assert!(!d.apply(t, &key, deleted), "already out of rotation");
        let gone = DeploymentEvent::Decommissioned(pb::DeploymentDecommissioned::default());
        d.apply(t, &key, gone);
        assert!(!d.known().contains(&(t, id)));
    }

    #[test]
    fn an_instance_address_is_reachable_past_the_default_policy() {
        let egress = Arc::new(Egress::system(Default::default()));
        let loopback: SocketAddr = "127.0.0.1:43121".parse().unwrap();
        assert!(egress.policy().check(loopback).is_err());
        let mine = instance_egress(&egress, "127.0.0.1:43121");
        assert_eq!(mine.policy().check(loopback), Ok(()));
        assert!(
            mine.policy()
                .check("127.0.0.2:43121".parse().unwrap())
                .is_err(),
            "that address only"
        );
    }
}
