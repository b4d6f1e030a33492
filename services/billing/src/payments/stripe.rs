//! Stripe: the API client (customers, Checkout Sessions) and webhook verification.
//!
//! # Layout
//! - [`verify_signature`]: the `Stripe-Signature` header checked against the raw body, as
//!   Stripe documents it (HMAC-SHA256 of `"{t}.{body}"`, any `v1` may match, a timestamp
//!   window against replays).
//! - [`parse_event`]: a verified event's JSON turned into the [`PaymentEvent`]s billing acts
//!   on.
//! - [`StripeClient`]: the [`PaymentProvider`] over Stripe's form-encoded API.
//!
//! [`PaymentEvent`]: super::PaymentEvent
//! [`PaymentProvider`]: super::PaymentProvider

mod client;
mod event;
mod form;
mod signature;

pub use client::{API_VERSION, StripeClient};
pub use event::{ParseError, parse_event};
pub use signature::{DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER, SignatureError, verify_signature};

/// The provider's name in [`super::Delivery::provider`] and errors.
pub const PROVIDER: &str = "stripe";
