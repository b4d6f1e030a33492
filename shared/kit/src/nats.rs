//! Connecting to NATS as the service's own user.
//!
//! Each service has a NATS user named after it (`tenant`, `auth`, `gateway`) whose permissions
//! let it publish only its own aggregates' subjects and read what it projects (ADR 0009,
//! `deploy/nats/accounts.conf`). Its password is read from `<dir>/<service>.password`, `dir`
//! being `TENANTRY_NATS_CREDENTIALS_DIR`: a file, never a flag, so it stays out of process
//! listings and shell history.
//!
//! Replies (JetStream acks, API answers, pulled messages) come to an inbox of the service's own
//! (`_INBOX_<service>.>`), the only subjects its user may subscribe to: one service cannot
//! listen to another's replies.

use std::path::{Path, PathBuf};

use crate::config::CommonConfig;

/// Why a service could not connect to NATS.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("NATS password of the {service} user ({path}): {source}")]
    Credentials {
        service: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("NATS password of the {service} user ({path}) is empty")]
    EmptyPassword { service: String, path: PathBuf },
    #[error("connect to NATS at {url} as {user}: {source}")]
    Connect {
        url: String,
        user: String,
        source: async_nats::ConnectError,
    },
}

/// A client of the configured NATS server, connected as `service`'s user when a credentials
/// directory is configured (anonymously otherwise, for a NATS without authentication).
pub async fn connect(
    common: &CommonConfig,
    service: &str,
) -> Result<async_nats::Client, NatsError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("tenantry-{service}"))
        .custom_inbox_prefix(inbox_prefix(service))
        .event_callback(|event| async move { log_event(event) });
    let user = match &common.nats_credentials_dir {
        Some(dir) => {
            let password = read_password(dir, service)?;
            options = options.user_and_password(service.to_owned(), password);
            service.to_owned()
        }
        None => "anonymous".to_owned(),
    };
    options
        .connect(&common.nats_url)
        .await
        .map_err(|source| NatsError::Connect {
            url: common.nats_url.clone(),
            user,
            source,
        })
}

/// The service's inbox prefix: its NATS user may subscribe to `<prefix>.>` and nothing else.
pub fn inbox_prefix(service: &str) -> String {
    format!("_INBOX_{service}")
}

/// The password in `<dir>/<service>.password`, without surrounding whitespace.
pub fn read_password(dir: &Path, service: &str) -> Result<String, NatsError> {
    let path = dir.join(format!("{service}.password"));
    let text = std::fs::read_to_string(&path).map_err(|source| NatsError::Credentials {
        service: service.to_owned(),
        path: path.clone(),
        source,
    })?;
    let password = text.trim();
    if password.is_empty() {
        return Err(NatsError::EmptyPassword {
            service: service.to_owned(),
            path,
        });
    }
    Ok(password.to_owned())
}

/// Where `scripts/infra-up.sh` keeps the development NATS (its configuration, store and
/// generated passwords): `$XDG_DATA_HOME/tenantry/nats`, or `~/.local/share/tenantry/nats`.
/// Outside any clone, so a fresh clone (CI) finds the server an earlier run started.
pub fn dev_dir() -> Option<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(data.join("tenantry").join("nats"))
}

/// The development credentials (`<service>.password` for each user), see [`dev_dir`].
pub fn dev_credentials_dir() -> Option<PathBuf> {
    dev_dir().map(|dir| dir.join("credentials"))
}

/// A server error goes to the log as an error: a refused publish or subscription
/// (`Permissions Violation for Publish to "…"`) is how a permission mistake shows itself,
/// since NATS answers it with no reply at all (the request just times out). The client logs
/// the other connection events itself.
fn log_event(event: async_nats::Event) {
    if let async_nats::Event::ServerError(error) = event {
        tracing::error!(%error, "nats server refused a request");
    }
}
