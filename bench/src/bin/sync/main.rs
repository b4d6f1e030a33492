//! Sync's figures (issue 21), each beside its baseline in the same run:
//! 1. `records`: records per second into Postgres through sync's records path (an
//!    `http_json` full run against a local stand-in source serving big pages), beside the
//!    same rows fetched and written by plain multi-row `INSERT`s into a plain table;
//! 2. `schedules`: 1,000 integrations on one-minute schedules, on the real clock: how late
//!    their runs start after the minute they were due, beside the same runs started at once
//!    by the bench through as many slots;
//! 3. `webhooks`: a webhook delivery → its record queryable in Postgres, beside the run
//!    started by calling the runner directly.
//!
//! Without a subcommand, all three with their defaults. Sync runs in this process on the
//! real NATS and Postgres, on its world's streams and schema, deleted at the end.
//!
//! # Layout
//! - `world`: sync started in the bench's world, integrations created through its API.
//! - `source`: the stand-in JSON source (big pages; small feeds that report requests).
//! - `records`, `schedules`, `webhooks`: one figure each.

mod records;
mod schedules;
mod source;
mod webhooks;
mod world;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    figure: Option<Figure>,
}

#[derive(Subcommand)]
enum Figure {
    /// Records per second through a sync run beside plain multi-row INSERTs.
    Records(records::Args),
    /// Start drift of one-minute schedules beside runs started at once.
    Schedules(schedules::Args),
    /// Webhook → records queryable beside a run started directly.
    Webhooks(webhooks::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tenantry_kit::install_crypto();
    // Logs only when asked (`RUST_LOG=tenantry_sync=debug`).
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
        Some(Figure::Records(args)) => records::run(args).await,
        Some(Figure::Schedules(args)) => schedules::run(args).await,
        Some(Figure::Webhooks(args)) => webhooks::run(args).await,
        None => {
            let defaults = |name: &str| Cli::parse_from(["sync", name]).figure;
            for figure in [
                defaults("records"),
                defaults("webhooks"),
                defaults("schedules"),
            ]
            .into_iter()
            .flatten()
            {
                match figure {
                    Figure::Records(args) => records::run(args).await?,
                    Figure::Schedules(args) => schedules::run(args).await?,
                    Figure::Webhooks(args) => webhooks::run(args).await?,
                }
                println!();
            }
            Ok(())
        }
    }
}
