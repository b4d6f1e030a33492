//! A service's whole binary: `fn main() -> ExitCode { tenantry_kit::service::main::<S>() }`.

use std::process::ExitCode;

use clap::{Args, Command, FromArgMatches};

use super::{Service, run};
use crate::config::CommonConfig;

/// Parses the common settings and the service's own (flags or `TENANTRY_*` variables),
/// starts telemetry, serves the service on its port until SIGINT or SIGTERM, and exits
/// non-zero with the reason if it cannot start.
pub fn main<S: Service>() -> ExitCode {
    let binary: &'static str = Box::leak(format!("tenantry-{}", S::NAME).into_boxed_str());
    let command = Command::new(binary).about(format!("Tenantry {} service", S::NAME));
    let command = S::Config::augment_args(CommonConfig::augment_args(command));
    let matches = command.get_matches();
    let parsed = CommonConfig::from_arg_matches(&matches)
        .and_then(|common| Ok((common, S::Config::from_arg_matches(&matches)?)));
    let (common, config) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{binary}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome: Result<(), String> = runtime.block_on(async {
        let _telemetry =
            crate::telemetry::init(binary, common.log_format).map_err(|e| e.to_string())?;
        let service = S::new(config);
        let listen = service.listen();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        let running = run(&common, service, listener, crate::server::shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        running.task.await.map_err(|e| e.to_string())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: {e}");
            ExitCode::FAILURE
        }
    }
}
