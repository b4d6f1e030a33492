//! The billing service: the plan catalog, subscriptions, usage roll-ups and quotas, invoices
//! and payments.

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod payments;

pub use config::BillingConfig;
