//! Orchestration's figures (issue 20), each beside its baseline in the same run:
//! 1. `provision`: provision → healthy on the process runtime (from the `Provision` call to
//!    the healthy `health.changed` on the log), beside the floor: the same program spawned
//!    directly and probed until it answers;
//! 2. `feed`: the WebSocket feed's fan-out, append → delivery at every subscriber, and the
//!    service's memory per idle subscriber, beside core NATS subscriptions to the same events;
//! 3. `reconcile`: a restarted service's reconciler applying 1,000 tenants' Kubernetes objects
//!    to the Kubernetes API stand-in, beside the same apply requests sent by a plain client.
//!
//! Without a subcommand, all three with their defaults. The service runs as the release
//! `tenantry-orchestration` binary in its own process (built beside this one), on its own
//! world's streams, deleted at the end with every instance it started.
//!
//! # Layout
//! - `world`: the binary started in a world, tenants' plans, cleanup, memory and load.
//! - `provision`, `feed`, `reconcile`: one figure each.

mod feed;
mod provision;
mod reconcile;
mod world;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    figure: Option<Figure>,
}

#[derive(Subcommand)]
enum Figure {
    /// Provision → healthy on the process runtime, beside spawning the program directly.
    Provision(provision::Args),
    /// WebSocket feed fan-out and memory per idle subscriber, beside core NATS.
    Feed(feed::Args),
    /// Reconcile after a restart: every tenant's Kubernetes objects applied again, beside a
    /// plain client sending the same requests.
    Reconcile(reconcile::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Interrupted (Ctrl-C, `timeout`): the figure's future is dropped, and with it its world,
    // whose `Drop` kills the service and its instances and deletes the streams.
    tokio::select! {
        outcome = run(cli.figure) => outcome,
        () = tenantry_bench::interrupted() => anyhow::bail!("interrupted; the bench's streams and instances are deleted"),
    }
}

async fn run(figure: Option<Figure>) -> anyhow::Result<()> {
    match figure {
        Some(Figure::Provision(args)) => provision::run(args).await,
        Some(Figure::Feed(args)) => feed::run(args).await,
        Some(Figure::Reconcile(args)) => reconcile::run(args).await,
        None => {
            let defaults = |name: &str| Cli::parse_from(["orchestration", name]).figure;
            for figure in [
                defaults("provision"),
                defaults("feed"),
                defaults("reconcile"),
            ]
            .into_iter()
            .flatten()
            {
                match figure {
                    Figure::Provision(args) => provision::run(args).await?,
                    Figure::Feed(args) => feed::run(args).await?,
                    Figure::Reconcile(args) => reconcile::run(args).await?,
                }
                println!();
            }
            Ok(())
        }
    }
}
