//! Tenant isolation at the API and in the database, and bad input.

mod common;

use common::{slug, start, with_token};
use tenantry_kit::Role;
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_proto::events::v1::{TenantSettings, TenantType};
use tenantry_proto::tenant::v1 as api;
use tonic::Code;

#[tokio::test]
async fn another_tenants_token_cannot_read_or_change_it() {
    let h = start().await;
    let (a, _) = h.create(&slug(), TenantType::Business).await;
    let (b, _) = h.create(&slug(), TenantType::Business).await;
    let b_owner = h.token(b.tenant_id.parse().unwrap(), Role::Owner);
    let mut c = h.client();
    let id = a.tenant_id.clone();

    let codes = vec![
        c.get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: id.clone(),
                min_position: 0,
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
        c.update_settings(with_token(
            api::UpdateSettingsRequest {
                tenant_id: id.clone(),
                settings: Some(TenantSettings::default()),
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
        c.set_feature_flags(with_token(
            api::SetFeatureFlagsRequest {
                tenant_id: id.clone(),
                set: [("x".to_string(), true)].into(),
                unset: vec![],
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
        c.add_domain(with_token(
            api::AddDomainRequest {
                tenant_id: id.clone(),
                domain: "x.example.com".into(),
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
        c.verify_domain(with_token(
            api::VerifyDomainRequest {
                tenant_id: id.clone(),
                domain: "x.example.com".into(),
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
        c.remove_domain(with_token(
            api::RemoveDomainRequest {
                tenant_id: id.clone(),
                domain: "x.example.com".into(),
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
        c.mark_for_decommission(with_token(
            api::MarkForDecommissionRequest {
                tenant_id: id.clone(),
                reason: String::new(),
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err()
        .code(),
    ];
    assert!(codes.iter().all(|c| *c == Code::NotFound), "{codes:?}");
    let listed = c
        .list_tenants(with_token(
            api::ListTenantsRequest::default(),
            Some(&b_owner),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tenants.iter().all(|t| t.tenant_id != id));

    // Platform-level RPCs are out of reach of any tenant role, even an owner.
    let suspend = c
        .suspend_tenant(with_token(
            api::SuspendTenantRequest {
                tenant_id: id.clone(),
                reason: "x".into(),
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err();
    assert_eq!(suspend.code(), Code::PermissionDenied);
    let create = c
        .create_tenant(with_token(
            api::CreateTenantRequest {
                name: "x".into(),
                slug: slug(),
                r#type: 1,
                settings: None,
            },
            Some(&b_owner),
        ))
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn roles_and_tokens_are_enforced() {
    let h = start().await;
    let (a, created_at) = h.create(&slug(), TenantType::Business).await;
    let id = a.tenant_id.clone();
    let tenant = id.parse().unwrap();
    let mut c = h.client();
    let update = |token: Option<String>| {
        let mut c = h.client();
        let id = id.clone();
        async move {
            c.update_settings(with_token(
                api::UpdateSettingsRequest {
                    tenant_id: id,
                    settings: Some(TenantSettings {
                        currency: "EUR".into(),
                        ..Default::default()
                    }),
                },
                token.as_deref(),
            ))
            .await
        }
    };
    assert_eq!(
        update(Some(h.token(tenant, Role::Viewer)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        update(None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        update(Some("not-a-jwt".into())).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // A token signed by a key that is not in the JWKS.
    let stranger = tenantry_kit::auth::SigningKey::generate(h.env.key.kid.clone());
    let forged = stranger
        .sign(&h.env.claims(Some(tenant), Role::Owner))
        .unwrap();
    assert_eq!(
        update(Some(forged)).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // An expired token (beyond the 60 s skew).
    let mut claims = h.env.claims(Some(tenant), Role::Owner);
    claims.exp = chrono::Utc::now().timestamp() - 120;
    assert_eq!(
        update(Some(h.env.key.sign(&claims).unwrap()))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert!(update(Some(h.token(tenant, Role::Member))).await.is_ok());
    // A viewer reads; no token reads nothing.
    assert!(
        c.get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: id.clone(),
                min_position: created_at
            },
            Some(&h.token(tenant, Role::Viewer))
        ))
        .await
        .is_ok()
    );
    assert_eq!(
        c.get_tenant(with_token(
            api::GetTenantRequest {
                tenant_id: id,
                min_position: 0
            },
            None
        ))
        .await
        .unwrap_err()
        .code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_transaction_scoped_to_b_sees_none_of_as_rows_without_any_where_clause() {
    let h = start().await;
    let (a, pa) = h.create(&slug(), TenantType::Business).await;
    let (b, pb) = h.create(&slug(), TenantType::Business).await;
    h.svc
        .positions
        .wait_for(pa.max(pb), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let pool = h.env.db("tenant").service_pool().await.unwrap();

    let mut tx = scoped_tx(&pool, Scope::Tenant(b.tenant_id.parse().unwrap()))
        .await
        .unwrap();
    let ids: Vec<(uuid::Uuid,)> = sqlx::query_as("SELECT tenant_id FROM tenants")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        ids.iter().map(|(i,)| i.to_string()).collect::<Vec<_>>(),
        vec![b.tenant_id.clone()]
    );
    // Writes into another tenant's rows are refused by the policy's WITH CHECK / USING.
    let changed = sqlx::query("UPDATE tenants SET name = 'stolen'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "only B's own row");
    tx.rollback().await.unwrap();

    // Without any scope set, the service role sees nothing at all.
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    let _ = a;
}

#[tokio::test]
async fn the_service_role_owns_nothing_and_every_tenant_table_is_protected() {
    let h = start().await;
    let admin = h.env.admin_pool().await;
    let schema = h.env.schema("tenant");
    let (superuser, bypass): (bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'tenantry_tenant'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(!superuser && !bypass);
    let (owned,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'tenantry_tenant'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(owned, 0);
    let unprotected: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
          WHERE n.nspname = $1 AND c.relkind = 'r'
            AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                     AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))",
    )
    .bind(&schema)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(unprotected.is_empty(), "{unprotected:?}");
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(&schema)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(tables >= 1, "the check looked at no table");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_appended() {
    let h = start().await;
    let (a, _) = h.create(&slug(), TenantType::Business).await;
    let admin = h.admin();
    let member = h.token(a.tenant_id.parse().unwrap(), Role::Member);
    let before = h.last_position().await;
    let mut c = h.client();
    let create = |name: String, slug: String, kind: i32, settings: Option<TenantSettings>| {
        api::CreateTenantRequest {
            name,
            slug,
            r#type: kind,
            settings,
        }
    };

    let mut cases: Vec<(tonic::Status, &str)> = Vec::new();
    for bad_slug in ["Bad Slug", "a.b", "a*b", "a>b", "ab"] {
        cases.push((
            c.create_tenant(with_token(
                create("ok".into(), bad_slug.into(), 1, None),
                Some(&admin),
            ))
            .await
            .unwrap_err(),
            "slug",
        ));
    }
    cases.push((
        c.create_tenant(with_token(
            create("x".repeat(201), slug(), 1, None),
            Some(&admin),
        ))
        .await
        .unwrap_err(),
        "name",
    ));
    cases.push((
        c.create_tenant(with_token(
            create("ok".into(), slug(), 42, None),
            Some(&admin),
        ))
        .await
        .unwrap_err(),
        "type",
    ));
    cases.push((
        c.create_tenant(with_token(
            create("ok".into(), slug(), 0, None),
            Some(&admin),
        ))
        .await
        .unwrap_err(),
        "type",
    ));
    let bad_settings = TenantSettings {
        language: "x".repeat(300),
        ..Default::default()
    };
    cases.push((
        c.create_tenant(with_token(
            create("ok".into(), slug(), 1, Some(bad_settings)),
            Some(&admin),
        ))
        .await
        .unwrap_err(),
        "settings.language",
    ));
    for bad_id in ["a.b", "*", ">", "not-a-uuid", ""] {
        cases.push((
            c.get_tenant(with_token(
                api::GetTenantRequest {
                    tenant_id: bad_id.into(),
                    min_position: 0,
                },
                Some(&admin),
            ))
            .await
            .unwrap_err(),
            "tenant_id",
        ));
        cases.push((
            c.suspend_tenant(with_token(
                api::SuspendTenantRequest {
                    tenant_id: bad_id.into(),
                    reason: "r".into(),
                },
                Some(&admin),
            ))
            .await
            .unwrap_err(),
            "tenant_id",
        ));
    }
    cases.push((
        c.set_feature_flags(with_token(
            api::SetFeatureFlagsRequest {
                tenant_id: a.tenant_id.clone(),
                set: [("a.b".to_string(), true)].into(),
                unset: vec![],
            },
            Some(&member),
        ))
        .await
        .unwrap_err(),
        "set",
    ));
    cases.push((
        c.add_domain(with_token(
            api::AddDomainRequest {
                tenant_id: a.tenant_id.clone(),
                domain: "*.evil.com".into(),
            },
            Some(&member),
        ))
        .await
        .unwrap_err(),
        "domain",
    ));
    cases.push((
        c.update_settings(with_token(
            api::UpdateSettingsRequest {
                tenant_id: a.tenant_id.clone(),
                settings: None,
            },
            Some(&member),
        ))
        .await
        .unwrap_err(),
        "settings",
    ));
    cases.push((
        c.update_settings(with_token(
            api::UpdateSettingsRequest {
                tenant_id: a.tenant_id.clone(),
                settings: Some(TenantSettings {
                    data_retention_days: 99_999,
                    ..Default::default()
                }),
            },
            Some(&member),
        ))
        .await
        .unwrap_err(),
        "settings.data_retention_days",
    ));
    cases.push((
        c.change_tenant_type(with_token(
            api::ChangeTenantTypeRequest {
                tenant_id: a.tenant_id.clone(),
                r#type: 7,
            },
            Some(&admin),
        ))
        .await
        .unwrap_err(),
        "type",
    ));
    cases.push((
        c.list_tenants(with_token(
            api::ListTenantsRequest {
                page_size: 10_000,
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap_err(),
        "page_size",
    ));
    let mut keyed = with_token(
        api::ReactivateTenantRequest {
            tenant_id: a.tenant_id.clone(),
        },
        Some(&admin),
    );
    keyed
        .metadata_mut()
        .insert("idempotency-key", "has.a.dot".parse().unwrap());
    cases.push((
        c.reactivate_tenant(keyed).await.unwrap_err(),
        "idempotency-key",
    ));

    for (status, field) in &cases {
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}:")),
            "expected {field}, got {:?}",
            status.message()
        );
    }
    assert_eq!(
        h.last_position().await,
        before,
        "bad input appended something"
    );
}
