//! One RPC command, from parsed arguments to printed output.

use std::io::{IsTerminal, Write};

use clap::ArgMatches;

use crate::call::{self, CallError, Target};
use crate::catalog::ServiceGroup;
use crate::commands::OUTPUT;
use crate::output::{self, Format};
use crate::request;

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line cannot make a call (exit 2, as clap's own usage errors).
    #[error("error: {0}\n\nFor more information, try '--help'.")]
    Usage(String),
    /// The server answered with an error status: `<CODE>: <message>` (exit 1).
    #[error("{0}")]
    Rpc(CallError),
    /// No answer, or it could not be printed (exit 1).
    #[error("error: {0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Rpc(_) | Self::Failed(_) => 1,
        }
    }
}

impl From<CallError> for CliError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Setting { .. } => Self::Usage(e.to_string()),
            CallError::Connect { .. } => Self::Failed(e.to_string()),
            CallError::Status(_) => Self::Rpc(e),
        }
    }
}

/// Runs the RPC named in `matches` (the service command's matches) and prints its answer.
pub async fn run(service: &ServiceGroup, matches: &ArgMatches) -> Result<(), CliError> {
    let Some((name, matches)) = matches.subcommand() else {
        return Err(CliError::Usage(format!(
            "name an RPC; `tenantry {} --help` lists them",
            service.name
        )));
    };
    let rpc = service.rpc(name).ok_or_else(|| {
        CliError::Usage(format!(
            "{name} is not an RPC of the {} service",
            service.name
        ))
    })?;
    if rpc.is_streaming() {
        return Err(CliError::Usage(format!(
            "{} is a streaming RPC; tenantry calls unary RPCs only (grpcurl can call it)",
            rpc.path()
        )));
    }
    let request =
        request::build(&rpc.method.input(), matches).map_err(|e| CliError::Usage(e.to_string()))?;
    let target = Target::from_matches(matches, service, |name| std::env::var(name).ok())?;
    let stdout = std::io::stdout();
    let format = Format::choose(
        matches
            .try_get_one::<String>(OUTPUT)
            .ok()
            .flatten()
            .map(String::as_str),
        stdout.is_terminal(),
    );
    let response = call::call(rpc, &target, request).await?;
    let text = output::render(&response, format)
        .map_err(|e| CliError::Failed(format!("printing the response: {e}")))?;
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Failed(format!("writing the response: {e}")))
        }
        _ => Ok(()),
    }
}
