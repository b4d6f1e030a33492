//! The read model rebuilt from position 1 into fresh tables equals the live one.

mod common;

use std::time::Duration;

use common::{slug, start, with_token};
use sqlx::PgPool;
use tenantry_eventstore::{ProjectionRunner, RunnerConfig};
use tenantry_kit::Role;
use tenantry_proto::events::v1::{TenantSettings, TenantType};
use tenantry_proto::tenant::v1 as api;
use tenantry_tenant::projection::TenantsProjection;

async fn dump(pool: &PgPool, schema: &str) -> Vec<serde_json::Value> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(t) FROM {schema}.tenants t ORDER BY tenant_id"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(v,)| v).collect()
}

#[tokio::test]
async fn rebuilding_from_position_one_gives_the_live_tables() {
    let h = start().await;
    for i in 0..12 {
        let (t, _) = h
            .create(
                &slug(),
                if i % 2 == 0 {
                    TenantType::Trial
                } else {
                    TenantType::Business
                },
            )
            .await;
        let member = h.token(t.tenant_id.parse().unwrap(), Role::Member);
        h.client()
            .update_settings(with_token(
                api::UpdateSettingsRequest {
                    tenant_id: t.tenant_id.clone(),
                    settings: Some(TenantSettings {
                        currency: "BRL".into(),
                        data_retention_days: 10 + i,
                        ..Default::default()
                    }),
                },
                Some(&member),
            ))
            .await
            .unwrap();
        h.client()
            .set_feature_flags(with_token(
                api::SetFeatureFlagsRequest {
                    tenant_id: t.tenant_id.clone(),
                    set: [("beta".to_string(), i % 3 == 0)].into(),
                    unset: vec![],
                },
                Some(&member),
            ))
            .await
            .unwrap();
    }
    let last = h.last_position().await;
    h.svc
        .positions
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();

    let mut fresh = h.env.db("tenant");
    fresh.schema = format!("{}_rebuild", h.env.id);
    fresh.prepare(&tenantry_tenant::MIGRATOR).await.unwrap();
    let pool = fresh.service_pool().await.unwrap();
    let store = h.env.event_store().await;
    let config = RunnerConfig {
        consumer_name: Some("tenant_tenants_rebuild".into()),
        ..Default::default()
    };
    ProjectionRunner::new(store, pool, TenantsProjection::default(), config)
        .catch_up()
        .await
        .unwrap();

    let admin = h.env.admin_pool().await;
    let live = dump(&admin, &h.env.schema("tenant")).await;
    assert_eq!(live.len(), 12);
    assert_eq!(live, dump(&admin, &fresh.schema).await);
}
