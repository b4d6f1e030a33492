//! Usage metering: what the gateway counts reaches the USAGE stream within a couple of
//! seconds, every request and byte once.

mod common;

use std::time::{Duration, Instant};

use common::{Upstream, route, start};
use futures::StreamExt;
use prost::Message;
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};

#[tokio::test]
async fn requests_and_bytes_are_published_per_tenant_once_a_second() {
    let h = start().await;
    let t = h.tenant().await;
    let other = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let c = h.client(&t.host);
    let mut bytes_out = 0u64;
    let mut bytes_in = 0u64;
    for i in 0..25 {
        let body = vec![b'x'; i * 10];
        bytes_in += body.len() as u64;
        let r = c
            .post(h.url(&t.host, "/echo"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        bytes_out += r.bytes().await.unwrap().len() as u64;
    }

    let store = h.env.event_store().await;
    let names = store.names().clone();
    let stream = store
        .jetstream()
        .get_stream(&names.usage_stream)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{}.{}.>", names.usage_root, t.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let (mut requests, mut seen_in, mut seen_out) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(4);
    while requests < 25 && Instant::now() < deadline {
        let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(500), messages.next()).await
        else {
            continue;
        };
        let report = pb::UsageReport::decode(m.payload.as_ref()).unwrap();
        assert_eq!(report.tenant_id, t.id.to_string());
        assert!(
            m.headers
                .as_ref()
                .and_then(|hd| hd.get("Nats-Msg-Id"))
                .is_some()
        );
        requests += report.requests;
        seen_in += report.bytes_in;
        seen_out += report.bytes_out;
    }
    assert_eq!(requests, 25);
    assert_eq!(seen_in, bytes_in);
    assert_eq!(seen_out, bytes_out);
    // Nothing was reported for a tenant that sent nothing.
    let quiet = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{}.{}.>", names.usage_root, other.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut quiet = quiet.messages().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), quiet.next())
            .await
            .is_err()
    );
}
