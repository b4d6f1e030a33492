//! The `integration` aggregate: one tenant's connection to one external system.
//!
//! Its credentials are held only sealed (the command carries them sealed, the events too).
//! Runs report their outcome here: a success moves the cursors and clears the failure streak;
//! failures in a row warn at [`WARN_AFTER`] and disable the integration at [`DISABLE_AFTER`].
//! An outcome is recorded once per run id, so a retried report changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tenantry_contracts::sync::IntegrationEvent;
use tenantry_eventstore::time::{from_proto, to_proto};
use tenantry_eventstore::{Aggregate, AggregateAddress, EventMeta, InvalidToken};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::DomainError;
use super::schedule::Schedule;
use super::source::{SourceKind, kind_of};

/// Failures in a row that raise a warning (an event and an alert).
pub const WARN_AFTER: u32 = 20;
/// Failures in a row after which the integration disables itself.
pub const DISABLE_AFTER: u32 = 30;

pub fn address(tenant: Uuid, integration: Uuid) -> Result<AggregateAddress, InvalidToken> {
    AggregateAddress::of::<Integration>(tenant.to_string(), integration.to_string())
}

/// A new integration, validated and with its credentials sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntegration {
    pub name: String,
    pub kind: SourceKind,
    pub config: pb::IntegrationConfig,
    pub schedule: Schedule,
    pub credentials: pb::SealedSecret,
    pub credential_names: Vec<String>,
    pub webhook_secret: pb::SealedSecret,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Succeeded {
        records: u64,
        bytes: u64,
        /// Stream → cursor after the run (streams not named keep theirs).
        cursors: BTreeMap<String, String>,
    },
    /// In our words: never the source's body, never a credential.
    Failed { error: String },
    /// Stopped before or while reading: the tenant's daily API budget is spent. Not the
    /// source's failure: the failure streak stays as it was.
    BudgetExhausted { error: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum IntegrationCommand {
    Create(Box<NewIntegration>),
    ReplaceCredentials {
        credentials: pb::SealedSecret,
        names: Vec<String>,
    },
    ChangeSchedule(Schedule),
    Enable,
    Disable {
        reason: String,
    },
    RecordRun {
        run_id: String,
        /// `incremental` or `full`.
        mode: String,
        started_at: DateTime<Utc>,
        outcome: RunOutcome,
    },
    /// An alert (`kind`) about `key` (a day, a due time, a plan's storage): raised once per
    /// key of its kind.
    RaiseAlert {
        kind: String,
        message: String,
        key: String,
    },
}

/// The state (also the read model's row, as JSON: the credentials are left out of it).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Integration {
    pub tenant_id: Option<Uuid>,
    pub id: Option<Uuid>,
    pub name: String,
    pub kind: Option<SourceKind>,
    #[serde(with = "super::proto_serde")]
    pub config: pb::IntegrationConfig,
    pub schedule: Schedule,
    pub enabled: bool,
    #[serde(skip)]
    pub credentials: Option<pb::SealedSecret>,
    pub credential_names: Vec<String>,
    #[serde(skip)]
    pub webhook_secret: Option<pb::SealedSecret>,
    pub cursors: BTreeMap<String, String>,
    pub failure_streak: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the last run ended, however it ended (the schedule counts from it).
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// How long the last successful run took, in seconds.
    pub last_duration_secs: i64,
    pub records_synced: u64,
    pub last_error: String,
    pub disabled_reason: String,
    /// The last run whose outcome was recorded (a retried report is recognised by it).
    pub last_run_id: String,
    /// Alert kind → the key it was last raised for (one alert per condition).
    pub alerted: BTreeMap<String, String>,
}

impl Integration {
    pub fn exists(&self) -> bool {
        self.created_at.is_some()
    }

    /// When the schedule wants the next run: after the last run ended (or the creation);
    /// `None` for a manual schedule or a disabled integration.
    pub fn next_run_at(&self) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        self.schedule
            .next_after(self.last_attempt_at.or(self.created_at)?)
    }

    fn require(&self) -> Result<(), DomainError> {
        if self.exists() {
            Ok(())
        } else {
            Err(DomainError::NotFound("integration".into()))
        }
    }
}

fn names_valid(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "must be 1–100 characters without control characters",
        ));
    }
    Ok(())
}

impl Aggregate for Integration {
    type Command = IntegrationCommand;
    type Event = IntegrationEvent;
    type Error = DomainError;

    fn decide(&self, command: &IntegrationCommand) -> Result<Vec<IntegrationEvent>, DomainError> {
        use IntegrationCommand as C;
        use IntegrationEvent as E;
        match command {
            C::Create(new) => {
                if self.exists() {
                    return Err(DomainError::AlreadyExists("integration".into()));
                }
                names_valid(&new.name)?;
                if kind_of(&new.config) != Some(new.kind) {
                    return Err(DomainError::invalid(
                        "config",
                        format!("must hold the {} configuration", new.kind.as_str()),
                    ));
                }
                Ok(vec![E::Created(pb::IntegrationCreated {
                    name: new.name.clone(),
                    r#type: new.kind.as_str().into(),
                    config: Some(new.config.clone()),
                    schedule: Some(new.schedule.to_proto()),
                    credentials: Some(new.credentials.clone()),
                    credential_names: new.credential_names.clone(),
                    webhook_secret: Some(new.webhook_secret.clone()),
                })])
            }
            C::ReplaceCredentials { credentials, names } => {
                self.require()?;
                Ok(vec![E::CredentialsReplaced(pb::CredentialsReplaced {
                    credentials: Some(credentials.clone()),
                    credential_names: names.clone(),
                })])
            }
            C::ChangeSchedule(schedule) => {
                self.require()?;
                if *schedule == self.schedule {
                    return Ok(vec![]);
                }
                Ok(vec![E::ScheduleChanged(pb::ScheduleChanged {
                    schedule: Some(schedule.to_proto()),
                })])
            }
            C::Enable => {
                self.require()?;
                if self.enabled {
                    return Ok(vec![]);
                }
                Ok(vec![E::Enabled(pb::IntegrationEnabled {})])
            }
            C::Disable { reason } => {
                self.require()?;
                if reason.len() > 500 {
                    return Err(DomainError::invalid(
                        "reason",
                        "is longer than 500 characters",
                    ));
                }
                if !self.enabled {
                    return Ok(vec![]);
                }
                Ok(vec![E::Disabled(pb::IntegrationDisabled {
                    reason: reason.clone(),
                    automatic: false,
                })])
            }
            C::RecordRun {
                run_id,
                mode,
                started_at,
                outcome,
            } => {
                self.require()?;
                if *run_id == self.last_run_id {
                    return Ok(vec![]); // recorded before
                }
                match outcome {
                    RunOutcome::Succeeded {
                        records,
                        bytes,
                        cursors,
                    } => Ok(vec![E::RunSucceeded(pb::RunSucceeded {
                        run_id: run_id.clone(),
                        mode: mode.clone(),
                        started_at: Some(to_proto(*started_at)),
                        records: *records,
                        bytes: *bytes,
                        cursors: cursors.clone().into_iter().collect(),
                    })]),
                    RunOutcome::BudgetExhausted { error } => {
                        Ok(vec![E::RunFailed(pb::RunFailed {
                            run_id: run_id.clone(),
                            mode: mode.clone(),
                            started_at: Some(to_proto(*started_at)),
                            error: error.clone(),
                            failure_streak: self.failure_streak,
                            budget_exhausted: true,
                        })])
                    }
                    RunOutcome::Failed { error } => {
                        let streak = self.failure_streak.saturating_add(1);
                        let mut events = vec![E::RunFailed(pb::RunFailed {
                            run_id: run_id.clone(),
                            mode: mode.clone(),
                            started_at: Some(to_proto(*started_at)),
                            error: error.clone(),
                            failure_streak: streak,
                            budget_exhausted: false,
                        })];
                        if streak == WARN_AFTER {
                            events.push(E::Failing(pb::IntegrationFailing {
                                failure_streak: streak,
                            }));
                        }
                        if streak >= DISABLE_AFTER && self.enabled {
                            events.push(E::Disabled(pb::IntegrationDisabled {
                                reason: format!("failed {streak} times in a row"),
                                automatic: true,
                            }));
                        }
                        Ok(events)
                    }
                }
            }
            C::RaiseAlert { kind, message, key } => {
                self.require()?;
                if self.alerted.get(kind) == Some(key) {
                    return Ok(vec![]); // raised for this before
                }
                Ok(vec![E::AlertRaised(pb::AlertRaised {
                    kind: kind.clone(),
                    message: message.clone(),
                    key: key.clone(),
                })])
            }
        }
    }

    fn evolve(&mut self, event: &IntegrationEvent, meta: &EventMeta) {
        use IntegrationEvent as E;
        match event {
            E::Created(e) => {
                self.tenant_id = Uuid::try_parse(&meta.tenant_id).ok();
                self.id = Uuid::try_parse(&meta.aggregate_id).ok();
                self.name = e.name.clone();
                self.kind = SourceKind::parse("type", &e.r#type).ok();
                self.config = e.config.clone().unwrap_or_default();
                // Accepted when it was decided; an unreadable one runs manually only.
                self.schedule = Schedule::from_proto(e.schedule.as_ref()).unwrap_or_default();
                self.enabled = true;
                self.credentials = e.credentials.clone();
                self.credential_names = e.credential_names.clone();
                self.webhook_secret = e.webhook_secret.clone();
                self.created_at = Some(meta.occurred_at);
            }
            E::CredentialsReplaced(e) => {
                self.credentials = e.credentials.clone();
                self.credential_names = e.credential_names.clone();
            }
            E::ScheduleChanged(e) => {
                self.schedule = Schedule::from_proto(e.schedule.as_ref()).unwrap_or_default();
            }
            E::Enabled(_) => {
                self.enabled = true;
                self.failure_streak = 0;
                self.disabled_reason.clear();
            }
            E::Disabled(e) => {
                self.enabled = false;
                self.disabled_reason = e.reason.clone();
            }
            E::RunSucceeded(e) => {
                self.last_run_id = e.run_id.clone();
                self.last_attempt_at = Some(meta.occurred_at);
                self.failure_streak = 0;
                self.last_error.clear();
                self.last_success_at = Some(meta.occurred_at);
                self.last_duration_secs = (meta.occurred_at - from_proto(e.started_at.as_ref()))
                    .num_seconds()
                    .max(0);
                self.records_synced = self.records_synced.saturating_add(e.records);
                self.cursors
                    .extend(e.cursors.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            E::RunFailed(e) => {
                self.last_run_id = e.run_id.clone();
                self.last_attempt_at = Some(meta.occurred_at);
                self.failure_streak = e.failure_streak;
                self.last_error = e.error.clone();
            }
            E::Failing(_) => {}
            E::AlertRaised(e) => {
                self.alerted.insert(e.kind.clone(), e.key.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tenantry_kit::gwt::given;
    use tenantry_proto::events::v1::integration_config::Source;

    use super::*;

    fn sealed(byte: u8) -> pb::SealedSecret {
        pb::SealedSecret {
            key_version: 1,
            ciphertext: vec![byte; 40],
        }
    }

    fn new() -> NewIntegration {
        NewIntegration {
            name: "Chelsea VTEX".into(),
            kind: SourceKind::Vtex,
            config: pb::IntegrationConfig {
                source: Some(Source::Vtex(pb::VtexConfig {
                    account_name: "chelseaio".into(),
                    environment: "vtexcommercestable".into(),
                })),
            },
            schedule: Schedule::Hourly,
            credentials: sealed(1),
            credential_names: vec!["app_key".into(), "app_token".into()],
            webhook_secret: sealed(2),
        }
    }

    fn created() -> IntegrationEvent {
        let n = new();
        IntegrationEvent::Created(pb::IntegrationCreated {
            name: n.name,
            r#type: "vtex".into(),
            config: Some(n.config),
            schedule: Some(n.schedule.to_proto()),
            credentials: Some(n.credentials),
            credential_names: n.credential_names,
            webhook_secret: Some(n.webhook_secret),
        })
    }

    fn failed(run: u32) -> IntegrationCommand {
        IntegrationCommand::RecordRun {
            run_id: format!("run-{run}"),
            mode: "incremental".into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            outcome: RunOutcome::Failed {
                error: "the source answered 500".into(),
            },
        }
    }

    #[test]
    fn creating_holds_only_sealed_credentials() {
        let g = given::<Integration>([])
            .when(IntegrationCommand::Create(Box::new(new())))
            .then([created()]);
        let state = g.state();
        assert!(state.enabled);
        assert_eq!(state.credentials, Some(sealed(1)));
        given::<Integration>([created()])
            .when(IntegrationCommand::Create(Box::new(new())))
            .then_error(DomainError::AlreadyExists("integration".into()));
    }

    #[test]
    fn a_config_of_another_type_or_a_bad_name_is_refused() {
        let mut wrong = new();
        wrong.kind = SourceKind::HttpJson;
        given::<Integration>([])
            .when(IntegrationCommand::Create(Box::new(wrong)))
            .then_error(DomainError::invalid(
                "config",
                "must hold the http_json configuration",
            ));
        let mut unnamed = new();
        unnamed.name = " ".into();
        given::<Integration>([])
            .when(IntegrationCommand::Create(Box::new(unnamed)))
            .then_error(DomainError::invalid(
                "name",
                "must be 1–100 characters without control characters",
            ));
    }

    #[test]
    fn a_success_moves_the_cursors_and_clears_the_streak_once_per_run() {
        let run = IntegrationCommand::RecordRun {
            run_id: "run-ok".into(),
            mode: "incremental".into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            outcome: RunOutcome::Succeeded {
                records: 3,
                bytes: 300,
                cursors: [("orders".to_string(), "2026-01-01".to_string())].into(),
            },
        };
        let after = given::<Integration>([created()])
            .when(failed(1))
            .then_state()
            .when(run.clone())
            .then_state();
        let state = after.state();
        assert_eq!(state.failure_streak, 0);
        assert_eq!(state.records_synced, 3);
        assert_eq!(state.cursors["orders"], "2026-01-01");
        // The same run reported again: nothing.
        after.when(run).then_nothing();
    }

    #[test]
    fn failures_in_a_row_warn_at_20_and_disable_at_30() {
        let mut g = given::<Integration>([created()]);
        for run in 1..WARN_AFTER {
            g = g.when(failed(run)).then_state();
        }
        assert_eq!(g.state().failure_streak, 19);
        let events = g.when(failed(WARN_AFTER)).then_events();
        assert!(matches!(
            events.as_slice(),
            [IntegrationEvent::RunFailed(_), IntegrationEvent::Failing(f)] if f.failure_streak == 20
        ));
        for run in WARN_AFTER..DISABLE_AFTER {
            g = g.when(failed(run)).then_state();
        }
        assert!(g.state().enabled);
        let events = g.when(failed(DISABLE_AFTER)).then_events();
        assert!(matches!(
            events.as_slice(),
            [IntegrationEvent::RunFailed(_), IntegrationEvent::Disabled(d)]
                if d.automatic && d.reason == "failed 30 times in a row"
        ));
        g = g.when(failed(DISABLE_AFTER)).then_state();
        assert!(!g.state().enabled);
        assert_eq!(g.state().disabled_reason, "failed 30 times in a row");
        // Re-enabled: the streak starts again.
        let g = g.when(IntegrationCommand::Enable).then_state();
        assert_eq!(g.state().failure_streak, 0);
        assert!(g.state().enabled);
    }

    #[test]
    fn a_budget_stop_keeps_the_streak_and_an_alert_is_raised_once_per_key() {
        let stopped = IntegrationCommand::RecordRun {
            run_id: "run-budget".into(),
            mode: "incremental".into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            outcome: RunOutcome::BudgetExhausted {
                error: "spent".into(),
            },
        };
        let g = given::<Integration>([created()])
            .when(failed(1))
            .then_state()
            .when(stopped)
            .then_state();
        assert_eq!(g.state().failure_streak, 1);
        let alert = |key: &str| IntegrationCommand::RaiseAlert {
            kind: "api_budget_90".into(),
            message: "90%".into(),
            key: key.into(),
        };
        let g = g.when(alert("2026-12-07")).then_state();
        assert_eq!(g.state().alerted["api_budget_90"], "2026-12-07");
        let g = g.when(alert("2026-12-07")).then_nothing();
        assert_eq!(g.when(alert("2026-12-08")).then_events().len(), 1);
    }

    #[test]
    fn commands_on_a_missing_integration_are_not_found() {
        given::<Integration>([])
            .when(IntegrationCommand::Enable)
            .then_error(DomainError::NotFound("integration".into()));
    }
}
