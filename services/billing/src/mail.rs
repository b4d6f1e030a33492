//! Alert e-mails (quota thresholds, upgrade notices) through an SMTP relay.
//!
//! Billing hands each message to one configured relay and lets it do the rest (queueing,
//! retries towards the recipient's server, DKIM). The client speaks plain SMTP without TLS:
//! the relay is expected on the same host or a private network, never across the internet.
//! With no relay configured, alerts are still recorded as events; only the e-mail is skipped.
//!
//! - [`MailConfig`]: the relay, sender and credentials.
//! - [`Mailer`]: sends a [`Message`], one SMTP session each.
//! - `message`: [`Message`], [`alert_message`]'s wording, addresses and headers.
//! - `smtp`: the client side of an RFC 5321 session.

mod message;
mod smtp;

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

pub use message::{Message, alert_message, validate_address};

/// Where alert e-mails go out. Flattened into the billing service's settings.
///
/// The relay is reached over plain TCP: there is no TLS, so it must run locally or on a
/// private network (an SMTP relay there may then use TLS onwards). Credentials, when set,
/// cross that network in the clear (`AUTH PLAIN`).
#[derive(Clone, clap::Args)]
pub struct MailConfig {
    /// The SMTP relay, `host:port` (plain SMTP, no TLS: local or private network only).
    /// Empty: no e-mail is sent; alerts are still recorded.
    #[arg(
        id = "billing-smtp-relay",
        long = "billing-smtp-relay",
        env = "TENANTRY_BILLING_SMTP_RELAY",
        default_value = ""
    )]
    pub relay: String,

    /// The sender of alert e-mails (envelope and `From:`); its domain also names us in `EHLO`.
    #[arg(
        id = "billing-smtp-from",
        long = "billing-smtp-from",
        env = "TENANTRY_BILLING_SMTP_FROM",
        default_value = "billing@tenantry.localhost"
    )]
    pub from: String,

    /// A user to authenticate as (`AUTH PLAIN`), for relays that require it.
    #[arg(
        id = "billing-smtp-user",
        long = "billing-smtp-user",
        env = "TENANTRY_BILLING_SMTP_USER"
    )]
    pub user: Option<String>,

    /// That user's password.
    #[arg(
        id = "billing-smtp-password",
        long = "billing-smtp-password",
        env = "TENANTRY_BILLING_SMTP_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// How long each step of a session (connecting, each command and its reply) may take, so
    /// a stuck relay cannot hold an alert forever.
    #[arg(
        id = "billing-smtp-timeout-ms",
        long = "billing-smtp-timeout-ms",
        env = "TENANTRY_BILLING_SMTP_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub timeout_ms: u64,
}

impl MailConfig {
    /// E-mail off (tests, development without a relay).
    pub fn disabled() -> Self {
        Self {
            relay: String::new(),
            from: "billing@tenantry.localhost".into(),
            user: None,
            password: None,
            timeout_ms: 10_000,
        }
    }
}

/// Settings are printed at start-up: the password is not.
impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("relay", &self.relay)
            .field("from", &self.from)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A step of an SMTP session, named in errors so an operator knows where a relay refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Greeting,
    Ehlo,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// The message text and the final `.`.
    Message,
    Quit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::Auth => "AUTH PLAIN",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "message data",
            Self::Quit => "QUIT",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The settings cannot work (found when the mailer is built, not at the first alert).
    #[error("smtp settings: {0}")]
    Config(String),
    /// An address that would not be one envelope address or header (line breaks, no `@`).
    #[error("{field}: the address {reason}")]
    Address { field: &'static str, reason: String },
    /// The message itself cannot be sent as is.
    #[error("message: {0}")]
    Message(String),
    #[error("smtp {step}: no answer within {after:?}")]
    Timeout { step: Step, after: Duration },
    #[error("smtp {step}: {source}")]
    Io { step: Step, source: std::io::Error },
    /// The relay answered with something that is not an SMTP reply.
    #[error("smtp {step}: malformed reply")]
    Protocol { step: Step },
    /// The relay refused: its code and the first line of its text, nothing more.
    #[error("smtp {step}: refused with {code}: {text}")]
    Rejected { step: Step, code: u16, text: String },
    /// The relay lacks something our settings need.
    #[error("smtp {step}: {what}")]
    Unsupported { step: Step, what: &'static str },
}

impl MailError {
    /// Whether trying again cannot help: the address or message is at fault, or the relay
    /// refused it for good (a 5xx reply).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Address { .. } | Self::Message(_) => true,
            Self::Rejected { code, .. } => *code >= 500,
            _ => false,
        }
    }
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The relay accepted it.
    Delivered,
    /// No relay is configured: nothing was sent.
    Disabled,
}

/// Sends messages through the configured relay, one session per message (alerts are few;
/// a pooled connection would only outlive the relay's idle timeout).
#[derive(Debug, Clone)]
pub struct Mailer {
    /// `None`: e-mail is off.
    relay: Option<String>,
    from: String,
    /// The part of `from` after `@`: our name in `EHLO` and in Message-IDs.
    domain: String,
    credentials: Option<Credentials>,
    timeout: Duration,
}

/// For `AUTH PLAIN`; its `Debug` leaves the password out.
#[derive(Clone)]
struct Credentials {
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings: a relay that is not `host:port`, a bad sender, or a user without
    /// a password (or the reverse) are refused here rather than at the first alert.
    pub fn new(config: &MailConfig) -> Result<Self, MailError> {
        validate_address("billing-smtp-from", &config.from)?;
        let domain = config
            .from
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_owned())
            .unwrap_or_default();
        let relay = match config.relay.trim() {
            "" => None,
            relay => {
                let port = relay
                    .rsplit_once(':')
                    .filter(|(host, _)| !host.is_empty())
                    .and_then(|(_, port)| port.parse::<u16>().ok());
                if !matches!(port, Some(port) if port != 0) {
                    return Err(MailError::Config(format!(
                        "billing-smtp-relay {relay:?} is not host:port"
                    )));
                }
                Some(relay.to_owned())
            }
        };
        let credentials = match (&config.user, &config.password) {
            (None, None) => None,
            (Some(user), Some(password)) if !user.is_empty() => Some(Credentials {
                user: user.clone(),
                password: password.clone(),
            }),
            _ => {
                return Err(MailError::Config(
                    "billing-smtp-user and billing-smtp-password go together".into(),
                ));
            }
        };
        if config.timeout_ms == 0 {
            return Err(MailError::Config(
                "billing-smtp-timeout-ms must be positive".into(),
            ));
        }
        Ok(Self {
            relay,
            from: config.from.clone(),
            domain,
            credentials,
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// Whether messages are sent at all (a relay is configured).
    pub fn is_enabled(&self) -> bool {
        self.relay.is_some()
    }

    /// Sends `message`, or returns [`Sent::Disabled`] when no relay is configured. The
    /// message is checked first either way, so a bad recipient is refused the same in every
    /// deployment.
    pub async fn send(&self, message: &Message) -> Result<Sent, MailError> {
        message.validate()?;
        let Some(relay) = &self.relay else {
            return Ok(Sent::Disabled);
        };
        let message_id = format!("<{}@{}>", Uuid::new_v4().simple(), self.domain);
        let data = message.render(&self.from, Utc::now(), &message_id);
        let stream = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(relay))
            .await
            .map_err(|_| MailError::Timeout {
                step: Step::Connect,
                after: self.timeout,
            })?
            .map_err(|source| MailError::Io {
                step: Step::Connect,
                source,
            })?;
        // SMTP is lock-step (a command, then its reply): nothing is gained by Nagle's
        // batching, and each step would wait on the relay's delayed ACK.
        stream.set_nodelay(true).map_err(|source| MailError::Io {
            step: Step::Connect,
            source,
        })?;
        let envelope = smtp::Envelope {
            helo: &self.domain,
            from: &self.from,
            to: message.to(),
            data: &data,
            credentials: self
                .credentials
                .as_ref()
                .map(|c| (c.user.as_str(), c.password.as_str())),
        };
        smtp::deliver(stream, &envelope, self.timeout).await?;
        Ok(Sent::Delivered)
    }
}

#[cfg(test)]
mod tests;
