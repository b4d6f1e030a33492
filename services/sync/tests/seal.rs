//! Sealed credentials against the real keystore (sync's Postgres under RLS): what opens, and
//! what must not.

mod common;

use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::seal::{SealError, Sealed};
use tenantry_kit::service::Service;
use tenantry_sync::{SyncConfig, SyncService};
use uuid::Uuid;

#[tokio::test]
async fn a_credential_opens_only_for_its_tenant_integration_and_key_version() {
    let h = common::start().await;
    let ks = &h.svc.keystore;
    let (tenant, other_tenant) = (Uuid::now_v7(), Uuid::now_v7());
    let (integration, other_integration) = (Uuid::now_v7(), Uuid::now_v7());
    let sealed = ks
        .seal(tenant, integration, b"app-token-123")
        .await
        .unwrap();
    assert_eq!(sealed.key_version, 1);
    assert!(!sealed.ciphertext.windows(13).any(|w| w == b"app-token-123"));
    assert_eq!(
        ks.open(tenant, integration, &sealed).await.unwrap(),
        b"app-token-123"
    );

    // Tampered associated data: another integration, another tenant, another key version.
    assert!(matches!(
        ks.open(tenant, other_integration, &sealed).await,
        Err(SealError::Open)
    ));
    ks.seal(other_tenant, integration, b"x").await.unwrap();
    assert!(matches!(
        ks.open(other_tenant, integration, &sealed).await,
        Err(SealError::Open)
    ));
    ks.rotate(tenant).await.unwrap();
    let relabelled = Sealed {
        key_version: 2,
        ..sealed.clone()
    };
    assert!(matches!(
        ks.open(tenant, integration, &relabelled).await,
        Err(SealError::Open)
    ));
    // Tampered ciphertext.
    let mut flipped = sealed.clone();
    flipped.ciphertext[20] ^= 0x40;
    assert!(matches!(
        ks.open(tenant, integration, &flipped).await,
        Err(SealError::Open)
    ));
}

#[tokio::test]
async fn rotation_seals_under_the_new_version_and_old_ciphertext_still_opens() {
    let h = common::start().await;
    let ks = &h.svc.keystore;
    let (tenant, integration) = (Uuid::now_v7(), Uuid::now_v7());
    let old = ks.seal(tenant, integration, b"old-secret").await.unwrap();
    assert_eq!(ks.rotate(tenant).await.unwrap(), 2);
    let new = ks.seal(tenant, integration, b"new-secret").await.unwrap();
    assert_eq!((old.key_version, new.key_version), (1, 2));
    assert_eq!(
        ks.open(tenant, integration, &old).await.unwrap(),
        b"old-secret"
    );
    assert_eq!(
        ks.open(tenant, integration, &new).await.unwrap(),
        b"new-secret"
    );
}

#[tokio::test]
async fn a_new_master_key_rewraps_every_data_key_and_old_ciphertext_still_opens() {
    let h = common::start().await;
    let (tenant, integration) = (Uuid::now_v7(), Uuid::now_v7());
    let sealed = h
        .svc
        .keystore
        .seal(tenant, integration, b"before-rotation")
        .await
        .unwrap();
    let wrapped_before = wrapped(&h, tenant).await;

    // A second replica with a new master key, the old one listed as previous: it re-wraps
    // at start.
    let new_key = common::master_key_file(&h.env, "master2", 2);
    let mut config = SyncConfig::ephemeral(new_key.clone());
    config.previous_master_key_files = vec![h.master_key.clone()];
    let rotated = h.env.start(SyncService::new(config)).await;
    let wrapped_after = wrapped(&h, tenant).await;
    assert_ne!(
        wrapped_before.0, wrapped_after.0,
        "the master key id changed"
    );
    assert_ne!(
        wrapped_before.1, wrapped_after.1,
        "the data key was re-wrapped"
    );
    assert_eq!(
        rotated
            .keystore
            .open(tenant, integration, &sealed)
            .await
            .unwrap(),
        b"before-rotation"
    );

    // The old master key retired: a replica with only the new key still opens it.
    let mut config = SyncConfig::ephemeral(new_key.clone());
    config.previous_master_key_files = vec![];
    let retired = h.env.start(SyncService::new(config)).await;
    assert_eq!(
        retired
            .keystore
            .open(tenant, integration, &sealed)
            .await
            .unwrap(),
        b"before-rotation"
    );
    // The old replica's master key no longer opens the re-wrapped key.
    assert!(
        h.svc
            .keystore
            .open(tenant, integration, &sealed)
            .await
            .is_err()
    );
    std::fs::remove_file(new_key).unwrap();
}

#[tokio::test]
async fn a_shredded_tenant_key_opens_nothing_and_makes_no_new_key() {
    let h = common::start().await;
    let ks = &h.svc.keystore;
    let (tenant, neighbour, integration) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let v1 = ks.seal(tenant, integration, b"one").await.unwrap();
    ks.rotate(tenant).await.unwrap();
    let v2 = ks.seal(tenant, integration, b"two").await.unwrap();
    let theirs = ks.seal(neighbour, integration, b"neighbour").await.unwrap();

    assert_eq!(ks.shred(tenant).await.unwrap(), 2);
    assert!(matches!(
        ks.open(tenant, integration, &v1).await,
        Err(SealError::NoKey(1))
    ));
    assert!(matches!(
        ks.open(tenant, integration, &v2).await,
        Err(SealError::NoKey(2))
    ));
    assert!(matches!(
        ks.seal(tenant, integration, b"again").await,
        Err(SealError::Shredded)
    ));
    assert!(matches!(ks.rotate(tenant).await, Err(SealError::Shredded)));
    // Another tenant's keys are untouched.
    assert_eq!(
        ks.open(neighbour, integration, &theirs).await.unwrap(),
        b"neighbour"
    );
}

#[tokio::test]
async fn data_keys_are_under_forced_rls() {
    let h = common::start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    h.svc.keystore.seal(a, Uuid::now_v7(), b"a").await.unwrap();
    h.svc.keystore.seal(b, Uuid::now_v7(), b"b").await.unwrap();
    let mut tx = scoped_tx(&h.svc.pool, Scope::Tenant(b)).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM data_keys")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, vec![b]);
    let admin = h.env.admin_pool().await;
    let forced: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT relname::text, relrowsecurity, relforcerowsecurity FROM pg_class
         WHERE relnamespace = $1::regnamespace AND relname IN ('data_keys', 'shredded_tenants')
         ORDER BY relname",
    )
    .bind(h.env.schema("sync"))
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(
        forced,
        vec![
            ("data_keys".into(), true, true),
            ("shredded_tenants".into(), true, true)
        ]
    );
}

#[tokio::test]
async fn the_service_refuses_to_start_without_a_master_key() {
    let env = tenantry_testkit::TestEnv::new().await;
    let mut config = SyncConfig::ephemeral("unused".into());
    config.master_key_file = None;
    let error = env
        .try_start_with(&env.common(), SyncService::new(config))
        .await
        .err()
        .expect("no start without a master key");
    assert!(
        error.to_string().contains("sync-master-key-file"),
        "{error}"
    );
}

async fn wrapped(h: &common::Harness, tenant: Uuid) -> (String, Vec<u8>) {
    let mut tx = scoped_tx(&h.svc.pool, Scope::Tenant(tenant)).await.unwrap();
    sqlx::query_as("SELECT master_id, wrapped FROM data_keys WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}
