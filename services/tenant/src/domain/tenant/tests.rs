//! Given events, when a command, then events (or an error).

use chrono::TimeZone;

use tenantry_kit::gwt::Given;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn id() -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001)
}

fn given(events: impl IntoIterator<Item = TenantEvent>) -> Given<Tenant> {
    tenantry_kit::gwt::given(events).at(now()).of(id(), id())
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
    match given([]).when(create(kind)).then_events().remove(0) {
        e @ TenantEvent::Created(_) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn given_nothing_when_create_trial_then_created_with_trial_end() {
    let events = given([]).when(create(TenantKind::Trial)).then_events();
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
    given([created(TenantKind::Business)])
        .when(create(TenantKind::Business))
        .then_nothing();
}

#[test]
fn given_created_when_another_create_with_the_same_id_differs_then_nothing_new() {
    let other = TenantCommand::Create {
        id: Uuid::now_v7(),
        name: "X".into(),
        slug: "x-y".into(),
        kind: TenantKind::Trial,
        settings: Settings::default(),
        now: now(),
    };
    let refused = given([created(TenantKind::Business)])
        .when(other)
        .then_rejected();
    assert!(matches!(refused, DomainError::AlreadyExists(_)));
}

#[test]
fn given_nothing_when_update_settings_then_not_found() {
    given([])
        .when(TenantCommand::UpdateSettings(Settings::default()))
        .then_error(DomainError::NotFound("tenant".into()));
}

#[test]
fn given_same_settings_when_update_then_nothing() {
    let state = given([created(TenantKind::Business)]);
    state
        .when(TenantCommand::UpdateSettings(Settings::default()))
        .then_nothing();
    let changed = Settings {
        data_retention_days: 30,
        ..Settings::default()
    };
    let events = state
        .when(TenantCommand::UpdateSettings(changed))
        .then_events();
    assert!(matches!(events[..], [TenantEvent::SettingsUpdated(_)]));
}

#[test]
fn given_suspended_when_suspend_then_nothing_and_reactivate_then_reactivated() {
    let state = given([
        created(TenantKind::Business),
        TenantEvent::Suspended(pb::TenantSuspended { reason: "r".into() }),
    ]);
    assert_eq!(state.state().status, Status::Suspended);
    state
        .when(TenantCommand::Suspend {
            reason: "again".into(),
        })
        .then_nothing();
    let active = state
        .when(TenantCommand::Reactivate)
        .then([TenantEvent::Reactivated(pb::TenantReactivated {})]);
    assert_eq!(active.state().status, Status::Active);
}

#[test]
fn given_decommissioning_when_configuring_then_failed_precondition() {
    let state = given([
        created(TenantKind::Business),
        TenantEvent::MarkedForDecommission(pb::TenantMarkedForDecommission {
            reason: "bye".into(),
        }),
    ]);
    let refused = state.when(TenantCommand::Reactivate).then_rejected();
    assert!(matches!(refused, DomainError::Precondition(_)));
    let refused = state
        .when(TenantCommand::UpdateSettings(Settings::default()))
        .then_rejected();
    assert!(matches!(refused, DomainError::Precondition(_)));
}

#[test]
fn given_trial_when_expiry_checked_before_and_after_30_days() {
    let state = given([created(TenantKind::Trial)]);
    state
        .when(TenantCommand::ExpireTrial {
            now: now() + Duration::days(29),
        })
        .then_nothing();
    let expire = state.when(TenantCommand::ExpireTrial {
        now: now() + Duration::days(30),
    });
    assert!(matches!(
        expire.then_events()[..],
        [TenantEvent::TrialExpired(_)]
    ));
    expire
        .then_state()
        .when(TenantCommand::ExpireTrial {
            now: now() + Duration::days(40),
        })
        .then_nothing();
}

#[test]
fn given_trial_converted_when_expiry_checked_then_nothing() {
    let converted = TenantEvent::TypeChanged(pb::TenantTypeChanged {
        from: pb::TenantType::Trial as i32,
        to: pb::TenantType::Business as i32,
    });
    let state = given([created(TenantKind::Trial), converted]);
    assert_eq!(state.state().trial_ends_at, None);
    state
        .when(TenantCommand::ExpireTrial {
            now: now() + Duration::days(60),
        })
        .then_nothing();
}

#[test]
fn given_domain_when_verified_without_proof_then_refused() {
    let added = TenantEvent::DomainAdded(pb::TenantDomainAdded {
        domain: "app.acme.com".into(),
        verification_token: "t".into(),
    });
    let state = given([created(TenantKind::Business), added]);
    let refused = state
        .when(TenantCommand::VerifyDomain {
            domain: "app.acme.com".into(),
            proved: false,
        })
        .then_rejected();
    assert!(matches!(refused, DomainError::Precondition(_)));
    state
        .when(TenantCommand::VerifyDomain {
            domain: "app.acme.com".into(),
            proved: true,
        })
        .then([TenantEvent::DomainVerified(pb::TenantDomainVerified {
            domain: "app.acme.com".into(),
        })]);
    let missing = state
        .when(TenantCommand::RemoveDomain {
            domain: "other.acme.com".into(),
        })
        .then_rejected();
    assert!(matches!(missing, DomainError::NotFound(_)));
}

#[test]
fn given_flags_when_setting_the_same_values_then_nothing() {
    let flags = TenantEvent::FeatureFlagsChanged(pb::TenantFeatureFlagsChanged {
        set: [("beta".to_string(), true)].into(),
        unset: vec![],
    });
    given([created(TenantKind::Business), flags])
        .when(TenantCommand::SetFeatureFlags {
            set: [("beta".to_string(), true)].into(),
            unset: vec!["absent".into()],
        })
        .then_nothing();
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
