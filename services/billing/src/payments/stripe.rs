//! Stripe: the API client (customers, Checkout Sessions) and webhook verification.
//!
//! # Layout
//! - [`verify_signature`]: the `Stripe-Signature` header checked against the raw body, as
//!   Stripe documents it (HMAC-SHA256 of `"{t}.{body}"`, any `v1` may match, a timestamp
//!   window against replays).

mod signature;
#[cfg(test)]
mod test_sign;

pub use signature::{DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER, SignatureError, verify_signature};
