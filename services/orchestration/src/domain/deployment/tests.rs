use tenantry_kit::gwt::given;

use super::*;

fn id() -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
}

fn spec() -> pb::DeploymentSpec {
    spec::normalized(pb::DeploymentSpec {
        name: "api".into(),
        runtime: "process".into(),
        image: "http-echo".into(),
        version: "1.0.0".into(),
        replicas: 2,
        resources: Some(pb::DeploymentResources {
            cpu_request_millis: 100,
            cpu_limit_millis: 500,
            memory_request_bytes: 64 << 20,
            memory_limit_bytes: 128 << 20,
        }),
        port: 8080,
        ..Default::default()
    })
}

/// A change that makes a good spec bad.
type Spoil = Box<dyn Fn(&mut pb::DeploymentSpec)>;

fn provision(spec: pb::DeploymentSpec) -> DeploymentCommand {
    DeploymentCommand::Provision {
        deployment_id: id(),
        spec,
        dedicated_instances: 1,
        existing: 0,
    }
}

fn provisioned() -> DeploymentEvent {
    DeploymentEvent::Provisioned(pb::DeploymentProvisioned {
        deployment_id: id().to_string(),
        spec: Some(spec()),
    })
}

fn pod_created(instance: &str, generation: u64) -> DeploymentEvent {
    DeploymentEvent::PodCreated(pb::PodCreated {
        instance_id: instance.into(),
        generation,
        version: "1.0.0".into(),
        address: "127.0.0.1:40000".into(),
        runtime: "process".into(),
    })
}

fn health(instance: &str, healthy: bool) -> pb::HealthChanged {
    pb::HealthChanged {
        instance_id: instance.into(),
        healthy,
        detail: String::new(),
    }
}

fn deleted(instance: &str) -> pb::PodDeleted {
    pb::PodDeleted {
        instance_id: instance.into(),
        reason: "exited".into(),
        detail: "signal 9".into(),
    }
}

#[test]
fn given_nothing_when_provisioned_on_a_plan_with_dedicated_instances_then_it_runs() {
    let g = given::<Deployment>([])
        .when(provision(spec()))
        .then([provisioned()]);
    assert_eq!(g.state().status, Status::Running);
    assert_eq!(g.state().generation, 1);
    assert_eq!(g.state().desired_replicas(), 2);
    // Defaults are filled in on the log: the runtime reads no implicit value.
    let health = g.state().spec.health.clone().unwrap();
    assert_eq!((health.path.as_str(), health.failure_threshold), ("/", 3));
    // The same provisioning again (a retry) is done already; another spec clashes.
    g.when(provision(spec())).then_nothing();
    let mut other = spec();
    other.version = "2.0.0".into();
    g.when(provision(other))
        .then_error(DomainError::AlreadyExists("deployment".into()));
}

#[test]
fn given_a_plan_without_dedicated_instances_when_provisioned_then_refused() {
    let refused = given::<Deployment>([])
        .when(DeploymentCommand::Provision {
            deployment_id: id(),
            spec: spec(),
            dedicated_instances: 0,
            existing: 0,
        })
        .then_rejected();
    assert!(
        matches!(refused, DomainError::Precondition(_)),
        "{refused:?}"
    );
    let refused = given::<Deployment>([])
        .when(DeploymentCommand::Provision {
            deployment_id: id(),
            spec: spec(),
            dedicated_instances: 1,
            existing: 1,
        })
        .then_rejected();
    assert!(
        matches!(
            refused,
            DomainError::LimitReached {
                limit: "dedicated_instances",
                ..
            }
        ),
        "{refused:?}"
    );
}

/// Each bad spec is refused naming its field; nothing is decided.
#[test]
fn given_bad_specs_when_provisioned_then_each_is_refused_naming_the_field() {
    let cases: Vec<(&str, Spoil)> = vec![
        ("spec.replicas", Box::new(|s| s.replicas = -1)),
        (
            "spec.runtime",
            Box::new(|s| s.runtime = "docker-swarm".into()),
        ),
        (
            "spec.resources.memory_limit_bytes",
            Box::new(|s| {
                let r = s.resources.as_mut().unwrap();
                r.memory_request_bytes = 256 << 20;
                r.memory_limit_bytes = 128 << 20;
            }),
        ),
        (
            "spec.autoscaling.min_replicas",
            Box::new(|s| {
                s.autoscaling = Some(pb::AutoscalingSpec {
                    enabled: true,
                    min_replicas: 5,
                    max_replicas: 2,
                    target_cpu_percent: 70,
                });
            }),
        ),
        ("spec.name", Box::new(|s| s.name = "Not A Label".into())),
        ("spec.image", Box::new(|s| s.image = "a b".into())),
        (
            "spec.env",
            Box::new(|s| {
                s.env.insert("LD_PRELOAD".into(), "/tmp/x.so".into());
            }),
        ),
        (
            "spec.health.path",
            Box::new(|s| s.health.as_mut().unwrap().path = "no-slash".into()),
        ),
        (
            "spec.resources.cpu_request_millis",
            Box::new(|s| s.resources.as_mut().unwrap().cpu_request_millis = -5),
        ),
    ];
    for (field, spoil) in cases {
        let mut bad = spec();
        spoil(&mut bad);
        let refused = given::<Deployment>([]).when(provision(bad)).then_rejected();
        match refused {
            DomainError::Invalid { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: expected invalid, got {other:?}"),
        }
    }
}

#[test]
fn given_a_deployment_when_scaled_then_its_replicas_change_and_bad_counts_are_refused() {
    let g = given::<Deployment>([provisioned()]);
    let g = g
        .when(DeploymentCommand::Scale { replicas: 3 })
        .then([DeploymentEvent::Scaled(pb::DeploymentScaled {
            replicas: 3,
            previous: 2,
        })]);
    assert_eq!(g.state().desired_replicas(), 3);
    g.when(DeploymentCommand::Scale { replicas: 3 })
        .then_nothing();
    g.when(DeploymentCommand::Scale { replicas: -2 })
        .then_error(DomainError::invalid("replicas", "must not be negative"));
    given::<Deployment>([])
        .when(DeploymentCommand::Scale { replicas: 1 })
        .then_error(DomainError::NotFound("deployment".into()));
}

#[test]
fn given_a_deployment_when_autoscaling_is_set_then_replicas_are_clamped_into_its_range() {
    let range = pb::AutoscalingSpec {
        enabled: true,
        min_replicas: 3,
        max_replicas: 6,
        target_cpu_percent: 60,
    };
    let g = given::<Deployment>([provisioned()])
        .when(DeploymentCommand::SetAutoscaling(range))
        .then([
            DeploymentEvent::AutoscalingSet(pb::DeploymentAutoscalingSet {
                autoscaling: Some(range),
            }),
            DeploymentEvent::Scaled(pb::DeploymentScaled {
                replicas: 3,
                previous: 2,
            }),
        ]);
    // Outside the autoscaler's range a manual scale is refused, naming the field.
    let refused = g
        .when(DeploymentCommand::Scale { replicas: 9 })
        .then_rejected();
    assert!(
        matches!(
            refused,
            DomainError::Invalid {
                field: "replicas",
                ..
            }
        ),
        "{refused:?}"
    );
    let bad = pb::AutoscalingSpec {
        min_replicas: 7,
        ..range
    };
    let refused = g
        .when(DeploymentCommand::SetAutoscaling(bad))
        .then_rejected();
    assert!(
        matches!(
            refused,
            DomainError::Invalid {
                field: "spec.autoscaling.min_replicas",
                ..
            }
        ),
        "{refused:?}"
    );
}

#[test]
fn given_a_deployment_when_updated_then_a_new_generation_rolls_out() {
    let mut next = spec();
    next.version = "1.1.0".into();
    let g = given::<Deployment>([provisioned()])
        .when(DeploymentCommand::Update(next.clone()))
        .then([DeploymentEvent::Updated(pb::DeploymentUpdated {
            spec: Some(next.clone()),
            previous_version: "1.0.0".into(),
            generation: 2,
        })]);
    assert_eq!(g.state().generation, 2);
    g.when(DeploymentCommand::Update(next.clone()))
        .then_nothing();
    let mut other_runtime = next;
    other_runtime.runtime = "kubernetes".into();
    let refused = g
        .when(DeploymentCommand::Update(other_runtime))
        .then_rejected();
    assert!(
        matches!(
            refused,
            DomainError::Invalid {
                field: "spec.runtime",
                ..
            }
        ),
        "{refused:?}"
    );
}

#[test]
fn given_a_deployment_when_drained_resumed_and_decommissioned_then_its_spec_is_saved() {
    let drained = DeploymentEvent::Drained(pb::DeploymentDrained {
        reason: "maintenance".into(),
    });
    let g = given::<Deployment>([provisioned()])
        .when(DeploymentCommand::Drain {
            reason: "maintenance".into(),
        })
        .then([drained]);
    assert_eq!(g.state().desired_replicas(), 0);
    g.when(DeploymentCommand::Drain {
        reason: "again".into(),
    })
    .then_nothing();
    let resumed = g
        .when(DeploymentCommand::Resume)
        .then([DeploymentEvent::Resumed(pb::DeploymentResumed {})]);
    assert_eq!(resumed.state().desired_replicas(), 2);
    let gone = g
        .when(DeploymentCommand::Decommission {
            reason: "churn".into(),
        })
        .then([DeploymentEvent::Decommissioned(
            pb::DeploymentDecommissioned {
                saved_spec: Some(spec()),
                reason: "churn".into(),
            },
        )]);
    assert_eq!(gone.state().desired_replicas(), 0);
    gone.when(DeploymentCommand::Decommission {
        reason: "churn".into(),
    })
    .then_nothing();
    gone.when(DeploymentCommand::Resume)
        .then_error(DomainError::Precondition(
            "the deployment is decommissioned".into(),
        ));
}

#[test]
fn given_observations_when_reported_again_then_each_fact_is_appended_once() {
    let g = given::<Deployment>([provisioned()])
        .when(DeploymentCommand::ObservePodCreated(
            match pod_created("i1", 1) {
                DeploymentEvent::PodCreated(c) => c,
                _ => unreachable!(),
            },
        ))
        .then([pod_created("i1", 1)]);
    g.when(DeploymentCommand::ObservePodCreated(
        match pod_created("i1", 1) {
            DeploymentEvent::PodCreated(c) => c,
            _ => unreachable!(),
        },
    ))
    .then_nothing();
    let g = g
        .when(DeploymentCommand::ObserveHealth(health("i1", true)))
        .then([DeploymentEvent::HealthChanged(health("i1", true))]);
    assert!(g.state().pods["i1"].healthy);
    g.when(DeploymentCommand::ObserveHealth(health("i1", true)))
        .then_nothing();
    // Health of an instance the log does not know is not a fact about this deployment.
    g.when(DeploymentCommand::ObserveHealth(health("i9", false)))
        .then_nothing();
    let draining = pb::PodDraining {
        instance_id: "i1".into(),
        reason: "scaled down".into(),
    };
    let g = g
        .when(DeploymentCommand::ObservePodDraining(draining.clone()))
        .then([DeploymentEvent::PodDraining(draining.clone())]);
    assert!(g.state().pods["i1"].draining);
    g.when(DeploymentCommand::ObservePodDraining(draining))
        .then_nothing();
    g.when(DeploymentCommand::ObservePodDraining(pb::PodDraining {
        instance_id: "i9".into(),
        reason: "unknown".into(),
    }))
    .then_nothing();
    let g = g
        .when(DeploymentCommand::ObservePodDeleted(deleted("i1")))
        .then([DeploymentEvent::PodDeleted(deleted("i1"))]);
    assert!(g.state().pods.is_empty());
    g.when(DeploymentCommand::ObservePodDeleted(deleted("i1")))
        .then_nothing();
}

fn autoscaling_on(min: i32, max: i32) -> DeploymentEvent {
    DeploymentEvent::AutoscalingSet(pb::DeploymentAutoscalingSet {
        autoscaling: Some(pb::AutoscalingSpec {
            enabled: true,
            min_replicas: min,
            max_replicas: max,
            target_cpu_percent: 50,
        }),
    })
}

fn triggered(from: i32, to: i32) -> pb::AutoscalingTriggered {
    pb::AutoscalingTriggered {
        from_replicas: from,
        to_replicas: to,
        cpu_percent: 180,
    }
}

#[test]
fn given_autoscaling_when_the_autoscaler_decides_within_the_range_then_the_count_changes() {
    let g = given::<Deployment>([provisioned(), autoscaling_on(1, 3)])
        .when(DeploymentCommand::Autoscale(triggered(2, 3)))
        .then([DeploymentEvent::AutoscalingTriggered(triggered(2, 3))]);
    assert_eq!(g.state().desired_replicas(), 3);
    // Stale (measured at 2, now 3), past the range, or no change: nothing.
    g.when(DeploymentCommand::Autoscale(triggered(2, 3)))
        .then_nothing();
    g.when(DeploymentCommand::Autoscale(triggered(3, 4)))
        .then_nothing();
    g.when(DeploymentCommand::Autoscale(triggered(3, 3)))
        .then_nothing();
    g.when(DeploymentCommand::Autoscale(triggered(3, 1)))
        .then([DeploymentEvent::AutoscalingTriggered(triggered(3, 1))]);
}

#[test]
fn given_no_autoscaling_or_a_drain_when_the_autoscaler_decides_then_nothing() {
    given::<Deployment>([provisioned()])
        .when(DeploymentCommand::Autoscale(triggered(2, 3)))
        .then_nothing();
    given::<Deployment>([
        provisioned(),
        autoscaling_on(1, 3),
        DeploymentEvent::Drained(pb::DeploymentDrained {
            reason: "maintenance".into(),
        }),
    ])
    .when(DeploymentCommand::Autoscale(triggered(2, 3)))
    .then_nothing();
}
