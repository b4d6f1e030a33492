//! The `tenantry` command's generated part: every RPC of every Tenantry service, from the
//! descriptor set the services are built from, with no hand-written code per RPC.
//!
//! `tenantry <service> <rpc> --field value …` builds the request from flags (and `--json`),
//! calls the RPC as a unary gRPC call on dynamic messages, and prints the answer as a table,
//! proto3 JSON or YAML. A service added under `proto/tenantry/<service>/v1` appears here when
//! the CLI is rebuilt.
//!
//! # Layout
//! - [`catalog`]: services (one per `tenantry.<service>.v1` package) and their RPCs, named
//!   for the command line, with their comments from the descriptors' source info.
//! - [`commands`]: the clap commands built from the catalog (flags per request field, the
//!   connection options).
//! - [`fields`]: how each request field is spelt as a flag and what its values look like.
//! - [`request`]: parsed flags (and `--json`) → the request message.
//! - [`codec`]: a tonic codec for `prost_reflect::DynamicMessage`.
//! - [`call`]: where and how the call goes (endpoint, token, idempotency key) and the call.
//! - [`output`]: the response as a table, JSON or YAML ([`yaml`]: a small YAML emitter).
//! - [`run`]: one RPC command from parsed arguments to printed output, and its exit code.
//! - [`events`]: `tenantry events --tenant <id>`, following the orchestration feed.

pub mod call;
pub mod catalog;
pub mod codec;
pub mod commands;
pub mod events;
pub mod fields;
pub mod output;
pub mod request;
mod run;
pub mod yaml;

pub use catalog::{Catalog, Rpc, ServiceGroup};
pub use run::{CliError, run};
