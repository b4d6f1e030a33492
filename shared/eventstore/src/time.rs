//! Conversions between `chrono` UTC times and protobuf timestamps.

use chrono::{DateTime, TimeZone, Utc};

pub fn to_proto(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Out-of-range or missing timestamps read as the epoch: stored events were validated on write.
pub fn from_proto(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    t.and_then(|t| Utc.timestamp_opt(t.seconds, t.nanos.max(0) as u32).single())
        .unwrap_or_default()
}
