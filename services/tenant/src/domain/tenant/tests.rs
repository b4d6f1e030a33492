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

fn domain_added(domain: &str) -> TenantEvent {
    TenantEvent::DomainAdded(pb::TenantDomainAdded {
        domain: domain.into(),
        verification_token: "t".into(),
    })
}

fn add_domain(domain: &str) -> TenantCommand {
    add_domain_under(domain, MAX_DOMAINS)
}

/// Adding `domain` when the tenant's plan caps it at `max_domains`.
fn add_domain_under(domain: &str, max_domains: usize) -> TenantCommand {
    TenantCommand::AddDomain {
        domain: domain.into(),
        verification_token: "t".into(),
        max_domains,
    }
}

fn flags_set(flags: impl IntoIterator<Item = (String, bool)>) -> TenantEvent {
    TenantEvent::FeatureFlagsChanged(pb::TenantFeatureFlagsChanged {
        set: flags.into_iter().collect(),
        unset: vec![],
    })
}

fn decommissioning() -> TenantEvent {
    TenantEvent::MarkedForDecommission(pb::TenantMarkedForDecommission {
        reason: "bye".into(),
    })
}

#[test]
fn given_nothing_when_create_business_then_created_without_a_trial() {
    given([])
        .when(create(TenantKind::Business))
        .then([TenantEvent::Created(pb::TenantCreated {
            tenant_id: id().to_string(),
            name: "Acme".into(),
            slug: "acme".into(),
            r#type: pb::TenantType::Business as i32,
            settings: Some(Settings::default().to_proto()),
            trial_ends_at: None,
        })]);
}

#[test]
fn given_nothing_when_a_command_names_the_tenant_then_not_found() {
    let commands = [
        TenantCommand::SetFeatureFlags {
            set: [("beta".to_string(), true)].into(),
            unset: vec![],
        },
        add_domain("app.acme.com"),
        TenantCommand::VerifyDomain {
            domain: "app.acme.com".into(),
            proved: true,
        },
        TenantCommand::RemoveDomain {
            domain: "app.acme.com".into(),
        },
        TenantCommand::ChangeType {
            to: TenantKind::Business,
        },
        TenantCommand::Suspend { reason: "r".into() },
        TenantCommand::Reactivate,
        TenantCommand::MarkForDecommission { reason: "r".into() },
        TenantCommand::ExpireTrial { now: now() },
    ];
    for command in commands {
        given([])
            .when(command)
            .then_error(DomainError::NotFound("tenant".into()));
    }
}

#[test]
fn given_active_when_suspended_then_suspended_with_its_reason() {
    let state = given([created(TenantKind::Business)])
        .when(TenantCommand::Suspend {
            reason: "unpaid".into(),
        })
        .then([TenantEvent::Suspended(pb::TenantSuspended {
            reason: "unpaid".into(),
        })]);
    assert_eq!(state.state().suspension_reason, "unpaid");
    given([created(TenantKind::Business)])
        .when(TenantCommand::Reactivate)
        .then_nothing();
}

#[test]
fn given_created_when_marked_for_decommission_then_marked_once_and_domains_still_removable() {
    let state = given([created(TenantKind::Business), domain_added("app.acme.com")])
        .when(TenantCommand::MarkForDecommission {
            reason: "bye".into(),
        })
        .then([decommissioning()]);
    assert_eq!(state.state().status, Status::Decommissioning);
    state
        .when(TenantCommand::MarkForDecommission {
            reason: "again".into(),
        })
        .then_nothing();
    // Giving a name back stays possible: it frees it for other tenants.
    state
        .when(TenantCommand::RemoveDomain {
            domain: "app.acme.com".into(),
        })
        .then([TenantEvent::DomainRemoved(pb::TenantDomainRemoved {
            domain: "app.acme.com".into(),
        })]);
    let closed = DomainError::Precondition("tenant is being decommissioned".into());
    state
        .when(add_domain("new.acme.com"))
        .then_error(closed.clone());
    state
        .when(TenantCommand::Suspend { reason: "r".into() })
        .then_error(closed);
}

#[test]
fn given_a_trial_when_its_type_changes_then_type_changed_and_the_same_type_changes_nothing() {
    let state = given([created(TenantKind::Trial)])
        .when(TenantCommand::ChangeType {
            to: TenantKind::Enterprise,
        })
        .then([TenantEvent::TypeChanged(pb::TenantTypeChanged {
            from: pb::TenantType::Trial as i32,
            to: pb::TenantType::Enterprise as i32,
        })]);
    assert_eq!(state.state().kind, TenantKind::Enterprise);
    state
        .when(TenantCommand::ChangeType {
            to: TenantKind::Enterprise,
        })
        .then_nothing();
}

#[test]
fn given_created_when_a_domain_is_added_then_added_and_adding_it_again_changes_nothing() {
    let state = given([created(TenantKind::Business)])
        .when(add_domain("app.acme.com"))
        .then([domain_added("app.acme.com")]);
    assert_eq!(
        state.state().domain("app.acme.com"),
        Some(&Domain {
            name: "app.acme.com".into(),
            verified: false,
            verification_token: "t".into(),
        })
    );
    state.when(add_domain("app.acme.com")).then_nothing();
}

#[test]
fn given_the_most_domains_when_another_is_added_then_refused_but_a_held_one_is_not() {
    let full = given([created(TenantKind::Business)])
        .and((0..MAX_DOMAINS).map(|i| domain_added(&format!("d{i}.acme.com"))));
    full.when(add_domain("one-more.acme.com"))
        .then_error(DomainError::limit(
            "max_custom_domains",
            format!("a tenant has at most {MAX_DOMAINS} custom domains"),
        ));
    full.when(add_domain("d0.acme.com")).then_nothing();
}

#[test]
fn given_domains_at_the_plans_cap_when_another_is_added_then_refused_naming_the_cap() {
    let two = given([created(TenantKind::Business)])
        .and([domain_added("a.acme.com"), domain_added("b.acme.com")]);
    two.when(add_domain_under("c.acme.com", 2))
        .then_error(DomainError::limit(
            "max_custom_domains",
            "a tenant has at most 2 custom domains",
        ));
    two.when(add_domain_under("c.acme.com", 3))
        .then([domain_added("c.acme.com")]);
    // A cap lowered under what the tenant holds: it keeps them, and adds none.
    two.when(add_domain_under("a.acme.com", 1)).then_nothing();
    two.when(add_domain_under("c.acme.com", 1))
        .then_error(DomainError::limit(
            "max_custom_domains",
            "a tenant has at most 1 custom domains",
        ));
}

#[test]
fn given_a_domain_when_verified_again_or_an_unknown_one_verified_then_nothing_or_not_found() {
    let verified = given([
        created(TenantKind::Business),
        domain_added("app.acme.com"),
        TenantEvent::DomainVerified(pb::TenantDomainVerified {
            domain: "app.acme.com".into(),
        }),
    ]);
    assert!(verified.state().domains[0].verified);
    // Verified once is enough: a later failed proof does not undo it.
    verified
        .when(TenantCommand::VerifyDomain {
            domain: "app.acme.com".into(),
            proved: false,
        })
        .then_nothing();
    verified
        .when(TenantCommand::VerifyDomain {
            domain: "other.acme.com".into(),
            proved: true,
        })
        .then_error(DomainError::NotFound("domain other.acme.com".into()));
}

#[test]
fn given_flags_when_set_and_unset_then_only_the_changes_are_recorded() {
    let state = given([
        created(TenantKind::Business),
        flags_set([("beta".to_string(), true), ("dark".to_string(), false)]),
    ]);
    let changed = state
        .when(TenantCommand::SetFeatureFlags {
            set: [("beta".to_string(), true), ("dark".to_string(), true)].into(),
            unset: vec!["beta".into(), "absent".into()],
        })
        .then([TenantEvent::FeatureFlagsChanged(
            pb::TenantFeatureFlagsChanged {
                set: [("dark".to_string(), true)].into(),
                unset: vec!["beta".into()],
            },
        )]);
    assert_eq!(
        changed.state().feature_flags,
        [("dark".to_string(), true)].into()
    );
}

#[test]
fn given_the_most_flags_when_another_is_set_then_refused_unless_one_is_unset() {
    let full = given([
        created(TenantKind::Business),
        flags_set((0..MAX_FLAGS).map(|i| (format!("f{i}"), true))),
    ]);
    full.when(TenantCommand::SetFeatureFlags {
        set: [("one-more".to_string(), true)].into(),
        unset: vec![],
    })
    .then_error(DomainError::limit(
        "max_feature_flags",
        format!("a tenant has at most {MAX_FLAGS} feature flags"),
    ));
    full.when(TenantCommand::SetFeatureFlags {
        set: [("one-more".to_string(), true)].into(),
        unset: vec!["f0".into()],
    })
    .then([TenantEvent::FeatureFlagsChanged(
        pb::TenantFeatureFlagsChanged {
            set: [("one-more".to_string(), true)].into(),
            unset: vec!["f0".into()],
        },
    )]);
}
