//! Starting the billing service in-process for a test, on the real NATS and Postgres, and
//! playing the parts of the other services: the tenant service's `tenant.created` and the
//! gateway's usage reports.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use prost::Message;
use tenantry_billing::{BillingConfig, BillingService, Handle};
use tenantry_contracts::tenant::TenantEvent;
use tenantry_contracts::usage;
use tenantry_kit::service::Running;
use tenantry_kit::{Clock, ManualClock, Role};
use tenantry_proto::billing::v1::billing_service_client::BillingServiceClient;
use tenantry_proto::billing::v1::{self as api};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

pub struct Harness {
    pub svc: Running<Handle>,
    pub clock: ManualClock,
    pub channel: Channel,
    pub env: TestEnv,
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

/// With the settings as `adjust` leaves them (payment providers, say).
pub async fn start_with(adjust: impl FnOnce(&mut BillingConfig)) -> Harness {
    let env = TestEnv::new().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let mut config = BillingConfig::ephemeral();
    adjust(&mut config);
    let svc = env
        .start(BillingService {
            config,
            clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
        })
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    Harness {
        svc,
        clock,
        channel,
        env,
    }
}

pub async fn start_on(env: &TestEnv, clock: &ManualClock) -> Running<Handle> {
    env.start(BillingService {
        config: BillingConfig::ephemeral(),
        clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
    })
    .await
}

/// Attaches a bearer token to a request.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

impl Harness {
    pub fn client(&self) -> BillingServiceClient<Channel> {
        BillingServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> String {
        self.env.admin_token()
    }

    pub fn owner(&self, tenant: Uuid) -> String {
        self.env.token(Some(tenant), Role::Owner)
    }

    /// A tenant created as the tenant service would, and its subscription once open.
    pub async fn tenant(&self, kind: pb::TenantType) -> (Uuid, api::Subscription) {
        let id = Uuid::now_v7();
        let store = self.env.event_store().await;
        tenantry_testkit::append(
            &store,
            &id.to_string(),
            &id.to_string(),
            TenantEvent::Created(pb::TenantCreated {
                tenant_id: id.to_string(),
                name: "Acme".into(),
                slug: format!("t-{}", &id.simple().to_string()[20..]),
                r#type: kind as i32,
                settings: None,
                trial_ends_at: None,
            }),
        )
        .await
        .unwrap();
        let subscription = self.subscription(id).await;
        (id, subscription)
    }

    /// The tenant's subscription, waiting for it to be open.
    pub async fn subscription(&self, tenant: Uuid) -> api::Subscription {
        let client = self.client();
        let token = self.owner(tenant);
        tenantry_testkit::eventually("the subscription", Duration::from_secs(10), || {
            let mut client = client.clone();
            let token = token.clone();
            async move {
                client
                    .get_subscription(with_token(
                        api::GetSubscriptionRequest {
                            tenant_id: tenant.to_string(),
                            min_position: 0,
                        },
                        &token,
                    ))
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().subscription)
            }
        })
        .await
    }

    /// Waits until the tenant's subscription satisfies `check`.
    pub async fn subscription_where(
        &self,
        tenant: Uuid,
        check: impl Fn(&api::Subscription) -> bool,
    ) -> api::Subscription {
        tenantry_testkit::eventually("the subscription", Duration::from_secs(10), || async {
            let s = self.subscription(tenant).await;
            check(&s).then_some(s)
        })
        .await
    }

    /// Defines `plan` in the catalog as a platform admin.
    pub async fn define(&self, plan: api::Plan) -> u64 {
        self.client()
            .define_plan(with_token(
                api::DefinePlanRequest { plan: Some(plan) },
                &self.admin(),
            ))
            .await
            .unwrap()
            .into_inner()
            .position
    }

    /// Changes the tenant's plan and waits until billing's read model has it, so the quotas
    /// the roll-up checks a report against are the new plan's from then on (a report rolled
    /// up before would be checked against the old ones, and only the next report against the
    /// new).
    pub async fn change_plan(&self, tenant: Uuid, plan: &str) -> Result<u64, tonic::Status> {
        let position = self
            .client()
            .change_plan(with_token(
                api::ChangePlanRequest {
                    tenant_id: tenant.to_string(),
                    plan: plan.into(),
                },
                &self.owner(tenant),
            ))
            .await?
            .into_inner()
            .position;
        self.client()
            .get_subscription(with_token(
                api::GetSubscriptionRequest {
                    tenant_id: tenant.to_string(),
                    min_position: position,
                },
                &self.owner(tenant),
            ))
            .await?;
        Ok(position)
    }

    pub async fn usage(&self, tenant: Uuid) -> Vec<api::MeterUsage> {
        self.client()
            .get_usage(with_token(
                api::GetUsageRequest {
                    tenant_id: tenant.to_string(),
                },
                &self.owner(tenant),
            ))
            .await
            .unwrap()
            .into_inner()
            .meters
    }

    pub async fn used(&self, tenant: Uuid, meter: &str) -> u64 {
        self.usage(tenant)
            .await
            .into_iter()
            .find(|m| m.meter == meter)
            .map_or(0, |m| m.used)
    }

    pub async fn alerts(&self, tenant: Uuid) -> Vec<api::Alert> {
        self.client()
            .list_alerts(with_token(
                api::ListAlertsRequest {
                    tenant_id: tenant.to_string(),
                    min_position: 0,
                },
                &self.owner(tenant),
            ))
            .await
            .unwrap()
            .into_inner()
            .alerts
    }

    /// Publishes a gateway's report of `requests` for `tenant` as reporter `instance`'s
    /// `sequence`th, with the message id the gateway gives it.
    pub async fn report(&self, tenant: Uuid, instance: &str, sequence: u64, requests: u64) {
        let id = usage::message_id(instance, &tenant.to_string(), sequence);
        self.report_as(tenant, instance, sequence, requests, &id)
            .await;
    }

    /// [`Harness::report`] under another message id (a duplicate JetStream cannot spot).
    pub async fn report_as(
        &self,
        tenant: Uuid,
        instance: &str,
        sequence: u64,
        requests: u64,
        message_id: &str,
    ) {
        let store = self.env.event_store().await;
        let root = &store.names().usage_root;
        let report = pb::UsageReport {
            tenant_id: tenant.to_string(),
            instance_id: instance.into(),
            window_start: chrono::Utc::now().timestamp() - 1,
            window_seconds: 1,
            requests,
            bytes_in: requests * 10,
            bytes_out: requests * 100,
            sequence,
            quantity: 0,
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", message_id);
        store
            .jetstream()
            .publish_with_headers(
                usage::subject(root, &tenant.to_string(), usage::HTTP).unwrap(),
                headers,
                report.encode_to_vec().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// A monthly BRL plan metering `requests` with `limit` and `behaviour` at 100%.
pub fn plan(name: &str, price: i64, limit: u64, behaviour: pb::QuotaBehaviour) -> api::Plan {
    api::Plan {
        name: name.into(),
        display_name: String::new(),
        price_minor: price,
        currency: "BRL".into(),
        interval: pb::BillingInterval::Monthly as i32,
        limits: Some(pb::PlanLimitsChanged {
            requests_per_second: 1000,
            meters: vec![pb::MeterQuota {
                meter: "requests".into(),
                limit,
                behaviour: behaviour as i32,
                ..Default::default()
            }],
            ..Default::default()
        }),
        retired: false,
    }
}
