//! Attacks on the gateway (issue 17), each performed against a running gateway: each succeeded
//! before the fix its module names and fails now. One module per attack surface, under
//! `tests/attacks/`.

mod common;

#[path = "attacks/support.rs"]
mod support;

/// Items 1, 9 and 14: the open proxy into the platform network (SSRF, DNS rebinding), route
/// state shared across tenants, unbounded configuration.
#[path = "attacks/outbound.rs"]
mod outbound;

/// Item 3: connections held for free.
#[path = "attacks/connections.rs"]
mod connections;

/// Item 4: one tenant taking every request slot.
#[path = "attacks/in_flight.rs"]
mod in_flight;

/// Items 7 and 8: unbounded metric labels, metrics on the public port.
#[path = "attacks/metrics.rs"]
mod metrics;

/// Item 12: forwarded-host poisoning, forged forwarding headers.
#[path = "attacks/forwarding.rs"]
mod forwarding;

/// Item 17: usage reports piling up while NATS is down.
#[path = "attacks/usage_reports.rs"]
mod usage_reports;
