//! Sync runs: jobs on the `JOBS` work queue, the worker that takes them, and the runner that
//! reads a source into records.
//!
//! - [`job`]: a run's job and its subject (`<jobs root>.sync.<priority>.<tenant>`).
//! - [`runner`]: one run: open the credentials, read the source page by page, upsert the
//!   records (with their usage), record the outcome on the integration.
//! - [`scheduler`]: due schedules queued as incremental runs, once per due time (and late
//!   syncs alerted).
//! - [`slots`]: a replica's run slots, given to the best ranked waiting job (the plan's
//!   processing priority, then the job's).
//! - [`worker`]: the durable consumer `sync_runs` that hands jobs to the runner; a job is
//!   acknowledged once its outcome is recorded, so a worker killed mid-run leaves it to be
//!   delivered again (and the upserts make the second run write nothing twice).

pub mod job;
pub mod runner;
pub mod scheduler;
pub mod slots;
pub mod worker;

pub use job::{Job, Mode};
pub use runner::Runner;
