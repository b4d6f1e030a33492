//! Local stand-ins for third parties a test cannot reach, speaking their documented wire
//! formats (never our own services' or NATS/Postgres/Redis: those are real in every test).
//!
//! - [`efi`]: Efí's Pix and charges APIs over mutual TLS, and its Pix webhook calls.
//! - [`stripe`]: Stripe's API (customers, Checkout Sessions); [`stripe_sign`]: webhook
//!   signatures made by Stripe's own npm library.
//! - [`kube_api`]: a Kubernetes API server's REST and watch wire format, for the resources
//!   orchestration's `kubernetes` runtime manages.
//! - [`smtp`]: an SMTP relay (RFC 5321) that records the messages it accepts.

pub mod efi;
pub mod kube_api;
pub mod smtp;
pub mod stripe;
pub mod stripe_sign;
