//! Given events, when a command, then events (or an error).

use chrono::TimeZone;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn id() -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001)
}

fn given(events: &[TenantEvent]) -> Tenant {
    let mut state = Tenant::default();
    for (i, e) in events.iter().enumerate() {
        let meta = EventMeta {
            event_id: String::new(),
            tenant_id: id().to_string(),
            aggregate_id: id().to_string(),
            occurred_at: now(),
            actor: "test".into(),
            causation_id: "c".into(),
            correlation_id: "c".into(),
            position: i as u64 + 1,
        };
        state.evolve(e, &meta);
    }
    state
}

fn create(kind: TenantKind) -> TenantCommand {
    TenantCommand::Create {
        id: id(),
        name: "Acme".into(),
        slug: "acme".into(),
        kind,
        settings: Settings::default(),
        now: now(),
    }
}

fn created(kind: TenantKind) -> TenantEvent {
    match Tenant::default().decide(&create(kind)).unwrap().remove(0) {
        e @ TenantEvent::Created(_) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn given_nothing_when_create_trial_then_created_with_trial_end() {
    let events = Tenant::default()
        .decide(&create(TenantKind::Trial))
        .unwrap();
    let [TenantEvent::Created(c)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(c.slug, "acme");
    assert_eq!(
        time::from_proto(c.trial_ends_at.as_ref()),
        now() + Duration::days(30)
    );
}

#[test]
fn given_created_when_created_again_by_a_retry_then_nothing() {
    let state = given(&[created(TenantKind::Business)]);
    assert_eq!(state.decide(&create(TenantKind::Business)), Ok(vec![]));
}

#[test]
fn given_created_when_another_create_with_the_same_id_differs_then_nothing_new() {
    let state = given(&[created(TenantKind::Business)]);
    let other = TenantCommand::Create {
        id: Uuid::now_v7(),
        name: "X".into(),
        slug: "x-y".into(),
        kind: TenantKind::Trial,
        settings: Settings::default(),
        now: now(),
    };
    assert!(matches!(
        state.decide(&other),
        Err(DomainError::AlreadyExists(_))
    ));
}

#[test]
fn given_nothing_when_update_settings_then_not_found() {
    let err = Tenant::default()
        .decide(&TenantCommand::UpdateSettings(Settings::default()))
        .unwrap_err();
    assert_eq!(err, DomainError::NotFound("tenant".into()));
}

#[test]
fn given_same_settings_when_update_then_nothing() {
    let state = given(&[created(TenantKind::Business)]);
    assert_eq!(
        state.decide(&TenantCommand::UpdateSettings(Settings::default())),
        Ok(vec![])
    );
    let changed = Settings {
        data_retention_days: 30,
        ..Settings::default()
    };
    assert_eq!(
        state
            .decide(&TenantCommand::UpdateSettings(changed))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn given_suspended_when_suspend_then_nothing_and_reactivate_then_reactivated() {
    let state = given(&[
        created(TenantKind::Business),
        TenantEvent::Suspended(pb::TenantSuspended { reason: "r".into() }),
    ]);
    assert_eq!(state.status, Status::Suspended);
    assert_eq!(
        state.decide(&TenantCommand::Suspend {
            reason: "again".into()
        }),
        Ok(vec![])
    );
    assert!(matches!(
        state.decide(&TenantCommand::Reactivate).unwrap()[..],
        [TenantEvent::Reactivated(_)]
    ));
}

#[test]
fn given_decommissioning_when_configuring_then_failed_precondition() {
    let state = given(&[
        created(TenantKind::Business),
        TenantEvent::MarkedForDecommission(pb::TenantMarkedForDecommission {
            reason: "bye".into(),
        }),
    ]);
    assert!(matches!(
        state.decide(&TenantCommand::Reactivate),
        Err(DomainError::Precondition(_))
    ));
    assert!(matches!(
        state.decide(&TenantCommand::UpdateSettings(Settings::default())),
        Err(DomainError::Precondition(_))
    ));
}

#[test]
fn given_trial_when_expiry_checked_before_and_after_30_days() {
    let state = given(&[created(TenantKind::Trial)]);
    assert_eq!(
        state.decide(&TenantCommand::ExpireTrial {
            now: now() + Duration::days(29)
        }),
        Ok(vec![])
    );
    let events = state
        .decide(&TenantCommand::ExpireTrial {
            now: now() + Duration::days(30),
        })
        .unwrap();
    assert!(matches!(events[..], [TenantEvent::TrialExpired(_)]));
    let expired = given(&[created(TenantKind::Trial), events[0].clone()]);
    assert_eq!(
        expired.decide(&TenantCommand::ExpireTrial {
            now: now() + Duration::days(40)
        }),
        Ok(vec![])
    );
}

#[test]
fn given_trial_converted_when_expiry_checked_then_nothing() {
    let converted = TenantEvent::TypeChanged(pb::TenantTypeChanged {
        from: pb::TenantType::Trial as i32,
        to: pb::TenantType::Business as i32,
    });
    let state = given(&[created(TenantKind::Trial), converted]);
    assert_eq!(state.trial_ends_at, None);
    assert_eq!(
        state.decide(&TenantCommand::ExpireTrial {
            now: now() + Duration::days(60)
        }),
        Ok(vec![])
    );
}

#[test]
fn given_domain_when_verified_without_proof_then_refused() {
    let added = TenantEvent::DomainAdded(pb::TenantDomainAdded {
        domain: "app.acme.com".into(),
        verification_token: "t".into(),
    });
    let state = given(&[created(TenantKind::Business), added]);
    let refused = state.decide(&TenantCommand::VerifyDomain {
        domain: "app.acme.com".into(),
        proved: false,
    });
    assert!(matches!(refused, Err(DomainError::Precondition(_))));
    let ok = state
        .decide(&TenantCommand::VerifyDomain {
            domain: "app.acme.com".into(),
            proved: true,
        })
        .unwrap();
    assert!(matches!(ok[..], [TenantEvent::DomainVerified(_)]));
    let missing = state.decide(&TenantCommand::RemoveDomain {
        domain: "other.acme.com".into(),
    });
    assert!(matches!(missing, Err(DomainError::NotFound(_))));
}

#[test]
fn given_flags_when_setting_the_same_values_then_nothing() {
    let flags = TenantEvent::FeatureFlagsChanged(pb::TenantFeatureFlagsChanged {
        set: [("beta".to_string(), true)].into(),
        unset: vec![],
    });
    let state = given(&[created(TenantKind::Business), flags]);
    let same = TenantCommand::SetFeatureFlags {
        set: [("beta".to_string(), true)].into(),
        unset: vec!["absent".into()],
    };
    assert_eq!(state.decide(&same), Ok(vec![]));
}

#[test]
fn slugs_domains_and_flags_are_checked() {
    for bad in [
        "ab",
        "-acme",
        "acme-",
        "Acme",
        "ac.me",
        "ac*me",
        "a>b",
        &"a".repeat(64),
    ] {
        assert!(validate_slug(bad).is_err(), "{bad}");
    }
    assert!(validate_slug("acme-2").is_ok());
    for bad in [
        "localhost",
        "app..acme.com",
        "app.acme.com.",
        "APP.acme.com",
        "a*.acme.com",
        "app acme.com",
    ] {
        assert!(validate_domain(bad).is_err(), "{bad}");
    }
    assert!(validate_domain("app.acme.com").is_ok());
    assert!(validate_flag("set", "new-ui").is_ok());
    assert!(validate_flag("set", "a.b").is_err());
}
