//! The billing service: the plan catalog, subscriptions, usage roll-ups and quotas, invoices
//! and payments.

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod mail;
pub mod payments;
pub mod usage;

pub use config::BillingConfig;
