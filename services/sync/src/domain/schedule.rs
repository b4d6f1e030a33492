//! When an integration runs on its own: never (manual), hourly, daily, weekly, or on a cron
//! expression (5 fields: minute hour day-of-month month day-of-week, in UTC).

use chrono::{DateTime, Duration, Utc};
use tenantry_proto::events::v1::{self as pb, ScheduleFrequency};

use super::DomainError;

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    #[default]
    Manual,
    Hourly,
    Daily,
    Weekly,
    Cron(String),
}

impl Schedule {
    /// From the wire; an unset schedule is manual.
    pub fn from_proto(schedule: Option<&pb::Schedule>) -> Result<Self, DomainError> {
        let Some(s) = schedule else {
            return Ok(Self::Manual);
        };
        let frequency = ScheduleFrequency::try_from(s.frequency)
            .map_err(|_| DomainError::invalid("schedule.frequency", "is not a known frequency"))?;
        if frequency != ScheduleFrequency::Cron && !s.cron.is_empty() {
            return Err(DomainError::invalid(
                "schedule.cron",
                "is only for the CRON frequency",
            ));
        }
        Ok(match frequency {
            ScheduleFrequency::Unspecified | ScheduleFrequency::Manual => Self::Manual,
            ScheduleFrequency::Hourly => Self::Hourly,
            ScheduleFrequency::Daily => Self::Daily,
            ScheduleFrequency::Weekly => Self::Weekly,
            ScheduleFrequency::Cron => {
                let expression = s.cron.trim();
                if expression.len() > 200 {
                    return Err(DomainError::invalid(
                        "schedule.cron",
                        "is longer than 200 characters",
                    ));
                }
                parse_cron(expression)?;
                Self::Cron(expression.to_owned())
            }
        })
    }

    pub fn to_proto(&self) -> pb::Schedule {
        let (frequency, cron) = match self {
            Self::Manual => (ScheduleFrequency::Manual, String::new()),
            Self::Hourly => (ScheduleFrequency::Hourly, String::new()),
            Self::Daily => (ScheduleFrequency::Daily, String::new()),
            Self::Weekly => (ScheduleFrequency::Weekly, String::new()),
            Self::Cron(c) => (ScheduleFrequency::Cron, c.clone()),
        };
        pb::Schedule {
            frequency: frequency as i32,
            cron,
        }
    }

    /// The first run due after `after` (`None` for a manual schedule).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Manual => None,
            Self::Hourly => Some(after + Duration::hours(1)),
            Self::Daily => Some(after + Duration::days(1)),
            Self::Weekly => Some(after + Duration::weeks(1)),
            // Parsed when the schedule was accepted; a failure here means no next run.
            Self::Cron(c) => parse_cron(c)
                .ok()
                .and_then(|cron| cron.find_next_occurrence(&after, false).ok()),
        }
    }
}

fn parse_cron(expression: &str) -> Result<croner::Cron, DomainError> {
    expression.parse::<croner::Cron>().map_err(|e| {
        DomainError::invalid("schedule.cron", format!("is not a cron expression: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn cron(expression: &str) -> pb::Schedule {
        pb::Schedule {
            frequency: ScheduleFrequency::Cron as i32,
            cron: expression.into(),
        }
    }

    #[test]
    fn cron_expressions_are_parsed_and_bad_ones_name_the_field() {
        let every_15 = Schedule::from_proto(Some(&cron("*/15 * * * *"))).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 7, 0).unwrap();
        assert_eq!(
            every_15.next_after(at),
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 10, 15, 0).unwrap())
        );
        for bad in ["61 * * * *", "every day", "* * *"] {
            match Schedule::from_proto(Some(&cron(bad))) {
                Err(DomainError::Invalid { field, .. }) => assert_eq!(field, "schedule.cron"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn fixed_frequencies_and_manual() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        assert_eq!(Schedule::from_proto(None).unwrap().next_after(at), None);
        let daily = Schedule::from_proto(Some(&pb::Schedule {
            frequency: ScheduleFrequency::Daily as i32,
            cron: String::new(),
        }))
        .unwrap();
        assert_eq!(daily.next_after(at), Some(at + Duration::days(1)));
        assert_eq!(
            Schedule::from_proto(Some(&daily.to_proto())).unwrap(),
            daily
        );
    }
}
