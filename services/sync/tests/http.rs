//! The seed's HTTP shapes on sync's port: create, validate, sync status and a manual sync;
//! another tenant refused; bad input answered 400 naming the body's field, nothing appended.

mod common;

use std::time::Duration;

use common::source::{Source, TOKEN};
use serde_json::{Value, json};
use tenantry_eventstore::StreamKind;
use tenantry_kit::Role;
use uuid::Uuid;

const PREFIX: &str = "/api/v2/tenant-integrations";

/// The seed's flat body for an `http_json` integration reading `url`.
fn http_json_body(tenant: Uuid, url: &str, auth_value: &str) -> Value {
    json!({
        "tenant_id": tenant.to_string(),
        "integration_type": "http_json",
        "name": "Store items",
        "url": url,
        "auth_header": "Authorization",
        "records_path": "$.data.items[*]",
        "id_field": "id",
        "cursor_field": "updated_at",
        "cursor_param": "updated_since",
        "page_param": "page",
        "page_size": 2,
        "stream": "items",
        "auth_value": auth_value,
        "auto_sync": true,
        "sync_frequency": "daily",
    })
}

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: format!("http://{addr}{PREFIX}"),
        }
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn create_validate_status_and_sync_in_the_seeds_shapes() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    source.add(2, "2026-01-02", "two");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let member = h.token(tenant, Role::Member);
    let http = Http::new(h.svc.addr);

    let (status, created) = http
        .post("", &member, &http_json_body(tenant, &url, TOKEN))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["integration_type"], "http_json");
    assert_eq!(created["sync_frequency"], "daily");
    assert_eq!(created["tenant_id"], tenant.to_string());
    assert!(!created["webhook_secret"].as_str().unwrap().is_empty());
    // The credential is never answered.
    assert!(!created.to_string().contains(TOKEN), "{created}");

    // Validation: the caller's tenant (the seed's body names none); one call to the source.
    let mut fields = http_json_body(tenant, &url, TOKEN);
    for envelope in [
        "tenant_id",
        "integration_type",
        "name",
        "auto_sync",
        "sync_frequency",
    ] {
        fields.as_object_mut().unwrap().remove(envelope);
    }
    let (status, valid) = http.post("/validate/http_json", &member, &fields).await;
    assert_eq!(status, 200, "{valid}");
    assert_eq!(valid["valid"], true, "{valid}");
    fields["auth_value"] = json!("Bearer wrong");
    let (status, invalid) = http.post("/validate/http_json", &member, &fields).await;
    assert_eq!(status, 200);
    assert_eq!(invalid["valid"], false);
    assert!(
        invalid["problems"][0]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{invalid}"
    );

    // A manual sync of the tenant's http_json integrations, through the job queue.
    let viewer = h.token(tenant, Role::Viewer);
    let (status, triggered) = http
        .post(
            &format!("/{tenant}/sync"),
            &member,
            &json!({"integration_types": ["http_json"], "sync_type": "full", "priority": "high"}),
        )
        .await;
    assert_eq!(status, 202, "{triggered}");
    assert_eq!(triggered["runs"].as_array().unwrap().len(), 1);
    assert_eq!(triggered["runs"][0]["integration_id"], id.as_str());
    assert_eq!(triggered["sync_type"], "full");

    let synced = tenantry_testkit::eventually(
        "the run in the sync status",
        Duration::from_secs(10),
        || async {
            let (status, body) = http.get(&format!("/{tenant}/sync-status"), &viewer).await;
            (status == 200 && body["integrations"][0]["records_synced"] == 2).then_some(body)
        },
    )
    .await;
    assert_eq!(synced["tenant_id"], tenant.to_string());
    assert_eq!(synced["overall_status"], "healthy");
    let row = &synced["integrations"][0];
    assert_eq!(row["id"], id.as_str());
    assert_eq!(row["type"], "http_json");
    assert_eq!(row["status"], "active");
    assert_eq!(row["errors"], 0);
    assert!(row["last_sync"].is_string(), "{row}");
    assert!(row["next_sync"].is_string(), "{row}");
    assert!(row["sync_duration_minutes"].is_number(), "{row}");
    // Two pages were read: two calls of the day's budget (no plan: no limit).
    assert_eq!(synced["api_budget"]["used"], 2, "{synced}");
    assert_eq!(synced["api_budget"]["limit"], 0);

    // A viewer reads but does not write.
    let (status, _) = http
        .post(&format!("/{tenant}/sync"), &viewer, &json!({}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = http
        .post("", &viewer, &http_json_body(tenant, &url, TOKEN))
        .await;
    assert_eq!(status, 403);
    let (status, _) = http.get(&format!("/{tenant}/sync-status"), "nope").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn another_tenant_cannot_create_validate_trigger_or_read_the_status_of_a_tenants_integrations()
 {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    let (_, url) = source.serve().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let http = Http::new(h.svc.addr);
    let (status, _) = http
        .post(
            "",
            &h.token(a, Role::Member),
            &http_json_body(a, &url, TOKEN),
        )
        .await;
    assert_eq!(status, 201);
    let store = h.env.event_store().await;
    let before = store.last_position_of(StreamKind::Events).await.unwrap();

    let b_owner = h.token(b, Role::Owner);
    let (status, body) = http
        .post("", &b_owner, &http_json_body(a, &url, TOKEN))
        .await;
    assert_eq!(status, 404, "{body}");
    let mut fields = http_json_body(a, &url, TOKEN);
    for envelope in ["integration_type", "name", "auto_sync", "sync_frequency"] {
        fields.as_object_mut().unwrap().remove(envelope);
    }
    let (status, body) = http.post("/validate/http_json", &b_owner, &fields).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = http.get(&format!("/{a}/sync-status"), &b_owner).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = http.post(&format!("/{a}/sync"), &b_owner, &json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = http.get(&format!("/{a}/alerts"), &b_owner).await;
    assert_eq!(status, 404, "{body}");
    // B's own status shows none of A's.
    let (status, body) = http.get(&format!("/{b}/sync-status"), &b_owner).await;
    assert_eq!(status, 200);
    assert_eq!(body["integrations"], json!([]));
    assert_eq!(
        store.last_position_of(StreamKind::Events).await.unwrap(),
        before,
        "nothing appended"
    );
    assert!(source.requests().is_empty(), "no run of A's");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_bodys_field_and_nothing_is_appended() {
    let h = common::start().await;
    let tenant = Uuid::now_v7();
    let member = h.token(tenant, Role::Member);
    let http = Http::new(h.svc.addr);
    let store = h.env.event_store().await;
    let before = store.last_position_of(StreamKind::Events).await.unwrap();
    let vtex = || {
        json!({
            "tenant_id": tenant.to_string(),
            "integration_type": "vtex",
            "account_name": "chelseaio",
            "environment": "vtexcommercestable",
            "app_key": "vtexappkey-chelseaio-X",
            "app_token": "token",
            "sync_frequency": "daily",
        })
    };
    let with = |field: &str, value: Value| {
        let mut body = vtex();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = vtex();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "integration_type",
            with("integration_type", json!("shopify")),
        ),
        ("account_name", with("account_name", json!("bad name!"))),
        ("site_id", with("site_id", json!("MLA"))),
        ("sync_frequency", with("sync_frequency", json!("often"))),
        ("cron", {
            let mut b = with("sync_frequency", json!("cron"));
            b["cron"] = json!("61 * * * *");
            b
        }),
        ("credentials", without("app_token")),
        ("auto_sync", with("auto_sync", json!("yes"))),
        ("tenant_id", with("tenant_id", json!(56))),
        ("records_path", {
            json!({
                "tenant_id": tenant.to_string(),
                "integration_type": "http_json",
                "url": "https://api.example.com/items",
                "records_path": "$.data[?(",
                "id_field": "id",
            })
        }),
        ("page_size", {
            let mut b = http_json_body(tenant, "https://api.example.com/items", "x");
            b["page_size"] = json!(-1);
            b
        }),
        ("page_size", {
            let mut b = http_json_body(tenant, "https://api.example.com/items", "x");
            b.as_object_mut().unwrap().remove("page_param");
            b["page_size"] = json!(50);
            b
        }),
    ];
    for (field, body) in cases {
        let (status, answer) = http.post("", &member, &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{field}: {answer}"
        );
    }
    let (status, answer) = http.post("/validate/shopify", &member, &json!({})).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().starts_with("type: "));
    let sync = format!("/{tenant}/sync");
    for (field, body) in [
        ("sync_type", json!({"sync_type": "partial"})),
        ("priority", json!({"priority": "urgent"})),
        ("priority", json!({"priority": 12})),
        (
            "integration_types",
            json!({"integration_types": ["shopify"]}),
        ),
    ] {
        let (status, answer) = http.post(&sync, &member, &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}: ")),
            "{field}: {answer}"
        );
    }
    let (status, answer) = http
        .post(&sync, &member, &json!({"sync_types": "full"}))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("sync_types"));
    assert_eq!(
        store.last_position_of(StreamKind::Events).await.unwrap(),
        before,
        "nothing appended"
    );
}
