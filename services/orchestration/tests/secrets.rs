//! Secret environment variables: sealed before anything is written, opened only to start an
//! instance, never in the clear on the log or in an answer; bound to their tenant, deployment
//! and name; changed and removed by an update.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{BURN, Harness, healthy, with_token};
use futures::StreamExt;
use tenantry_kit::Role;
use tenantry_kit::seal::SealError;
use tenantry_orchestration::secrets;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1::{self as api};
use tonic::Code;
use uuid::Uuid;

fn burn_spec() -> pb::DeploymentSpec {
    let mut s = common::spec(1);
    s.image = BURN.into();
    s.env = HashMap::from([("PLAIN".to_owned(), "visible".to_owned())]);
    s
}

async fn provision_with(
    h: &Harness,
    tenant: Uuid,
    spec: pb::DeploymentSpec,
    secrets: &[(&str, &str)],
) -> Result<String, tonic::Status> {
    h.client()
        .provision(with_token(
            api::ProvisionRequest {
                tenant_id: tenant.to_string(),
                spec: Some(spec),
                deployment_id: String::new(),
                secrets: secrets
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            &h.token(tenant, Role::Owner),
        ))
        .await
        .map(|r| r.into_inner().deployment_id)
}

/// The value of `name` in the environment of the deployment's one healthy instance of
/// `generation` (`None`: unset).
async fn env_of(
    h: &Harness,
    tenant: Uuid,
    id: &str,
    generation: u64,
    name: &str,
) -> Option<String> {
    let d = h
        .deployment_where(tenant, id, "one healthy instance of the revision", |d| {
            healthy(d, 1) && d.instances[0].generation == generation
        })
        .await;
    let url = format!("http://{}/env/{name}", d.instances[0].address);
    let answer = reqwest::get(&url).await.unwrap();
    match answer.status().as_u16() {
        200 => Some(answer.text().await.unwrap()),
        404 => None,
        other => panic!("{url}: {other}"),
    }
}

/// Every byte of the tenant's events on the log, raw (as NATS holds them).
async fn raw_log(h: &Harness, tenant: Uuid) -> Vec<u8> {
    let store = h.env.event_store().await;
    let stream = store
        .jetstream()
        .get_stream(store.names().events_stream.clone())
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{}.{tenant}.>", store.root()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut all = Vec::new();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(Duration::from_millis(300), messages.next()).await
    {
        all.extend_from_slice(&m.payload);
    }
    assert!(!all.is_empty(), "the tenant's events were read");
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_secret_reaches_its_instance_and_is_nowhere_in_the_clear() {
    let h = common::start().await;
    let tenant = h.tenant(1).await;
    let canary = format!("canary-{}", Uuid::now_v7().simple());
    let id = provision_with(&h, tenant, burn_spec(), &[("API_TOKEN", &canary)])
        .await
        .unwrap();
    assert_eq!(
        env_of(&h, tenant, &id, 1, "API_TOKEN").await.as_deref(),
        Some(canary.as_str()),
        "the instance reads its secret"
    );
    assert_eq!(
        env_of(&h, tenant, &id, 1, "PLAIN").await.as_deref(),
        Some("visible")
    );
    // The answer names the secret, with no ciphertext and no value.
    let answer = h.deployment(tenant, &id).await;
    let sealed = &answer.spec.as_ref().unwrap().secret_env;
    assert_eq!(sealed.keys().collect::<Vec<_>>(), ["API_TOKEN"]);
    assert!(sealed["API_TOKEN"].ciphertext.is_empty());
    assert!(!format!("{answer:?}").contains(&canary));
    // On the log: sealed, never in the clear.
    let log = raw_log(&h, tenant).await;
    assert!(
        !contains(&log, &canary),
        "the canary is on the log in the clear"
    );
    let provisioned = h.events(tenant, &id).await;
    let tenantry_contracts::orchestration::DeploymentEvent::Provisioned(p) = &provisioned[0] else {
        panic!("first event: {:?}", provisioned[0]);
    };
    assert!(
        !p.spec.as_ref().unwrap().secret_env["API_TOKEN"]
            .ciphertext
            .is_empty()
    );
}

#[tokio::test]
async fn a_sealed_secret_opens_only_for_its_tenant_deployment_and_name_and_not_once_shredded() {
    let h = common::start().await;
    let keystore = &h.svc.keystore;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (deployment, other) = (Uuid::now_v7(), Uuid::now_v7());
    let changes = HashMap::from([("DB_PASSWORD".to_owned(), "hunter2".to_owned())]);
    let sealed = secrets::apply(keystore, a, deployment, &changes, HashMap::new())
        .await
        .unwrap();
    let spec = |secret_env: HashMap<String, pb::SealedSecret>| pb::DeploymentSpec {
        secret_env,
        ..Default::default()
    };
    let opened = secrets::open_all(keystore, a, deployment, &spec(sealed.clone()))
        .await
        .unwrap();
    assert_eq!(opened["DB_PASSWORD"], "hunter2");
    // Copied to another deployment of the same tenant, or under another name: no.
    assert!(matches!(
        secrets::open_all(keystore, a, other, &spec(sealed.clone())).await,
        Err(SealError::Open)
    ));
    let renamed = HashMap::from([("API_KEY".to_owned(), sealed["DB_PASSWORD"].clone())]);
    assert!(matches!(
        secrets::open_all(keystore, a, deployment, &spec(renamed)).await,
        Err(SealError::Open)
    ));
    // Presented as another tenant's: B has no such key (or another one).
    assert!(
        secrets::open_all(keystore, b, deployment, &spec(sealed.clone()))
            .await
            .is_err()
    );
    // The tenant's data keys shredded: nothing of it opens any more.
    keystore.shred(a).await.unwrap();
    assert!(matches!(
        secrets::open_all(keystore, a, deployment, &spec(sealed)).await,
        Err(SealError::NoKey(_))
    ));
}

#[tokio::test]
async fn an_update_changes_and_removes_secrets_and_keeps_the_others() {
    let h = common::start().await;
    let tenant = h.tenant(1).await;
    let id = provision_with(
        &h,
        tenant,
        burn_spec(),
        &[("KEEP", "k1"), ("CHANGE", "c1"), ("DROP", "d1")],
    )
    .await
    .unwrap();
    assert_eq!(
        env_of(&h, tenant, &id, 1, "DROP").await.as_deref(),
        Some("d1")
    );
    let mut next = burn_spec();
    next.version = "1.1.0".into();
    h.client()
        .update(with_token(
            api::UpdateRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.clone(),
                spec: Some(next),
                secrets: HashMap::from([
                    ("CHANGE".to_owned(), "c2".to_owned()),
                    ("DROP".to_owned(), String::new()),
                    ("ADD".to_owned(), "a2".to_owned()),
                ]),
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap();
    assert_eq!(
        env_of(&h, tenant, &id, 2, "KEEP").await.as_deref(),
        Some("k1")
    );
    assert_eq!(
        env_of(&h, tenant, &id, 2, "CHANGE").await.as_deref(),
        Some("c2")
    );
    assert_eq!(
        env_of(&h, tenant, &id, 2, "ADD").await.as_deref(),
        Some("a2")
    );
    assert_eq!(env_of(&h, tenant, &id, 2, "DROP").await, None);
    let names: Vec<String> = {
        let d = h.deployment(tenant, &id).await;
        let mut n: Vec<String> = d.spec.unwrap().secret_env.into_keys().collect();
        n.sort();
        n
    };
    assert_eq!(names, ["ADD", "CHANGE", "KEEP"]);
}

/// A spec, the request's secrets, and the field the refusal must name.
type Case = (
    pb::DeploymentSpec,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[tokio::test]
async fn bad_secrets_are_invalid_argument_naming_the_field_and_nothing_is_appended() {
    let h = common::start().await;
    let tenant = h.tenant(5).await;
    let forged = {
        let mut s = burn_spec();
        s.secret_env = HashMap::from([(
            "TOKEN".to_owned(),
            pb::SealedSecret {
                key_version: 1,
                ciphertext: vec![1; 40],
            },
        )]);
        s
    };
    let cases: Vec<Case> = vec![
        (burn_spec(), vec![("lower_case", "x")], "secrets: "),
        (burn_spec(), vec![("PLAIN", "x")], "secrets: "),
        (burn_spec(), vec![("TOKEN", "")], "secrets: "),
        (burn_spec(), vec![("TENANTRY_TENANT_ID", "x")], "secrets: "),
        (burn_spec(), vec![("PORT", "1")], "secrets: "),
        (forged, vec![], "spec.secret_env: "),
    ];
    for (spec, secrets, field) in cases {
        let e = provision_with(&h, tenant, spec, &secrets)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{secrets:?}: {e:?}");
        assert!(e.message().starts_with(field), "{secrets:?}: {e:?}");
    }
    let listed = h
        .client()
        .list_deployments(with_token(
            api::ListDeploymentsRequest {
                tenant_id: tenant.to_string(),
                ..Default::default()
            },
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .deployments;
    assert!(listed.is_empty(), "nothing was provisioned: {listed:?}");
}
