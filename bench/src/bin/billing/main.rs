//! Billing's figures (issue 19), each beside its baseline in the same run:
//! 1. `rollup`: usage reports rolled up into Postgres per second, beside a raw JetStream pull
//!    consumer reading the same reports (fetch + ack only); totals checked to the unit;
//! 2. `crossing`: from the request that crosses a tenant's quota to the gateway's first 429,
//!    and how many requests got through past the quota, through the whole loop;
//! 3. `close`: closing 100,000 subscriptions' periods (renewed and invoiced), beside one
//!    `INSERT … SELECT` of as many invoice rows.
//!
//! Without a subcommand, all three with their defaults. Billing and the gateway run in this
//! process (release build, the system allocator as billing's binary has), each on its own
//! world's streams and schema, deleted at the end.
//!
//! # Layout
//! - `world`: tenants created in bulk, billing started on a clock of its own, table counts.
//! - `rollup`, `crossing`, `close`: one figure each.
//! - `phases`: `close --phases N`, where a period close's time goes.

mod close;
mod crossing;
mod phases;
mod rollup;
mod world;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    figure: Option<Figure>,
}

#[derive(Subcommand)]
enum Figure {
    /// Usage roll-up throughput beside a raw JetStream consumer.
    Rollup(rollup::Args),
    /// Quota crossing → first refusal at the gateway, and the overshoot.
    Crossing(crossing::Args),
    /// Period close for many subscriptions beside a plain `INSERT … SELECT`.
    Close(close::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs only when asked (`RUST_LOG=tenantry_eventstore=debug` shows each batch applied).
    let _telemetry = tenantry_bench::telemetry_if_asked()?;
    // Interrupted (Ctrl-C, `timeout`): the figure's future is dropped, and with it its test
    // world, whose `Drop` deletes the streams and schemas it made.
    tokio::select! {
        outcome = run(cli.figure) => outcome,
        () = tenantry_bench::interrupted() => anyhow::bail!("interrupted; the bench's streams and schemas are deleted"),
    }
}

async fn run(figure: Option<Figure>) -> anyhow::Result<()> {
    match figure {
        Some(Figure::Rollup(args)) => rollup::run(args).await,
        Some(Figure::Crossing(args)) => crossing::run(args).await,
        Some(Figure::Close(args)) => close::run(args).await,
        None => {
            let defaults = |name: &str| Cli::parse_from(["billing", name]).figure;
            for figure in [defaults("rollup"), defaults("crossing"), defaults("close")]
                .into_iter()
                .flatten()
            {
                match figure {
                    Figure::Rollup(args) => rollup::run(args).await?,
                    Figure::Crossing(args) => crossing::run(args).await?,
                    Figure::Close(args) => close::run(args).await?,
                }
                println!();
            }
            Ok(())
        }
    }
}
