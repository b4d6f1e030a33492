//! What the attacks share: reading until the gateway closes or answers, and the tenant's usage
//! as its reports on the `USAGE` stream add up.

use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message as _;
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use uuid::Uuid;

pub const RR: BalanceAlgorithm = BalanceAlgorithm::RoundRobin;

/// Reads `tcp` until its far end closes it: what came before, or `None` if it is still open
/// after 5 s.
pub async fn closed_within_5s(tcp: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await {
        // A reset is a close too.
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

/// Reads a response head from `tcp`: `None` if none arrived within 5 s.
pub async fn head_within_5s(tcp: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if out.windows(4).any(|w| w == b"\r\n\r\n") {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// The tenant's requests and bytes as its usage reports on the `USAGE` stream add up, read
/// until `enough` holds or 20 s have passed; and how many reports there were.
pub async fn usage_of(
    js: &async_nats::jetstream::Context,
    names: &tenantry_eventstore::StreamNames,
    tenant: Uuid,
    enough: impl Fn(&pb::UsageReport) -> bool,
) -> (pb::UsageReport, usize) {
    let stream = js.get_stream(&names.usage_stream).await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{}.{tenant}.>", names.usage_root),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut total = pb::UsageReport::default();
    let mut reports = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !enough(&total) && Instant::now() < deadline {
        let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(500), messages.next()).await
        else {
            continue;
        };
        let report = pb::UsageReport::decode(m.payload.as_ref()).unwrap();
        total.requests += report.requests;
        total.bytes_in += report.bytes_in;
        total.bytes_out += report.bytes_out;
        reports += 1;
    }
    (total, reports)
}
