//! Local stand-ins for third parties a test cannot reach, speaking their documented wire
//! formats (never our own services' or NATS/Postgres/Redis: those are real in every test).
//!
//! - [`smtp`]: an SMTP relay (RFC 5321) that records the messages it accepts.

pub mod smtp;
