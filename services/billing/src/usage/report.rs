//! Usage reports: which period a request asks for, and the hourly roll-up rendered as CSV or
//! JSON for the tenant's own books or a payment provider's import.
//!
//! Everything here is pure (the clock arrives as `now`), so the HTTP handler only looks the
//! rows up between parsing and rendering.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use crate::domain::DomainError;

/// The longest period one report covers: a leap year. Longer ranges are refused rather than
/// truncated, so a report never silently misses usage.
const MAX_PERIOD_DAYS: i64 = 366;

/// One tenant's use of one meter during one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    pub meter: String,
    pub quantity: u64,
}

/// The `[from, to)` range a report's `period` names, at `now`:
///
/// - `"current"` or `""`: from the start of this calendar month (UTC) until `now`;
/// - `"last-month"`: the whole previous calendar month;
/// - `"FROM..TO"`: each side RFC 3339 or `YYYY-MM-DD` (midnight UTC), `TO` exclusive, at most
///   366 days long.
pub fn parse_period(
    period: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), DomainError> {
    let period = period.trim();
    match period {
        "" | "current" => Ok((month_start(now.year(), now.month())?, now)),
        "last-month" => {
            let (year, month) = match now.month() {
                1 => (now.year() - 1, 12),
                month => (now.year(), month - 1),
            };
            Ok((
                month_start(year, month)?,
                month_start(now.year(), now.month())?,
            ))
        }
        _ => {
            let Some((from, to)) = period.split_once("..") else {
                return Err(DomainError::invalid(
                    "period",
                    format!(
                        "{period:?} is not \"current\", \"last-month\" or FROM..TO \
                         (RFC 3339 or YYYY-MM-DD)"
                    ),
                ));
            };
            let from = parse_instant("FROM", from)?;
            let to = parse_instant("TO", to)?;
            if to <= from {
                return Err(DomainError::invalid(
                    "period",
                    format!("{period:?} is empty or inverted: TO must be after FROM"),
                ));
            }
            if to - from > TimeDelta::days(MAX_PERIOD_DAYS) {
                return Err(DomainError::invalid(
                    "period",
                    format!("{period:?} is longer than {MAX_PERIOD_DAYS} days"),
                ));
            }
            Ok((from, to))
        }
    }
}

/// Midnight UTC on the first day of `month` of `year`.
fn month_start(year: i32, month: u32) -> Result<DateTime<Utc>, DomainError> {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        // Only past chrono's year range (±262 143), which no clock reports.
        .ok_or_else(|| DomainError::invalid("period", "the date is out of range"))
}

/// One side of `FROM..TO`: RFC 3339 (any offset, converted to UTC) or a date at midnight UTC.
fn parse_instant(side: &str, text: &str) -> Result<DateTime<Utc>, DomainError> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    Err(DomainError::invalid(
        "period",
        format!("{side} {text:?} is neither RFC 3339 nor YYYY-MM-DD"),
    ))
}

/// The rows as CSV (RFC 4180: CRLF line ends, fields quoted when they need it), with a
/// `tenant_id,hour,meter,quantity` header and hours in RFC 3339.
pub fn render_csv(tenant_id: &str, rows: &[UsageRow]) -> String {
    let mut out = String::from("tenant_id,hour,meter,quantity\r\n");
    let tenant = csv_field(tenant_id);
    for row in rows {
        out.push_str(&tenant);
        out.push(',');
        out.push_str(&rfc3339(row.hour));
        out.push(',');
        out.push_str(&csv_field(&row.meter));
        out.push(',');
        out.push_str(&row.quantity.to_string());
        out.push_str("\r\n");
    }
    out
}

/// `value` as one CSV field: quoted, with quotes doubled, when it holds a separator, a quote
/// or a line break. Meter names are validated tokens, but the tenant's books should not break
/// if that rule ever loosens.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The report as JSON: the tenant, the period, the rows and each meter's total over them.
/// A total that would pass `u64::MAX` stays at `u64::MAX` (JSON readers lose precision on
/// larger numbers anyway).
pub fn render_json(
    tenant_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: &[UsageRow],
) -> String {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        let total = totals.entry(row.meter.as_str()).or_default();
        *total = total.saturating_add(row.quantity);
    }
    let totals: Map<String, Value> = totals
        .into_iter()
        .map(|(meter, total)| (meter.to_owned(), Value::from(total)))
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "hour": rfc3339(row.hour),
                "meter": row.meter,
                "quantity": row.quantity,
            })
        })
        .collect();
    json!({
        "tenant_id": tenant_id,
        "from": rfc3339(from),
        "to": rfc3339(to),
        "rows": rows,
        "totals": totals,
    })
    .to_string()
}

/// Whole seconds and `Z`: the shape every consumer of these reports parses.
fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn range(period: &str, now: &str) -> (DateTime<Utc>, DateTime<Utc>) {
        parse_period(period, at(now)).unwrap()
    }

    fn refused(period: &str) -> String {
        match parse_period(period, at("2026-03-15T12:00:00Z")) {
            Err(DomainError::Invalid { field, reason }) => {
                assert_eq!(field, "period");
                reason
            }
            other => panic!("{period:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn current_runs_from_the_first_of_the_month_until_now() {
        let now = "2026-03-15T12:34:56Z";
        assert_eq!(range("current", now), (at("2026-03-01T00:00:00Z"), at(now)));
        assert_eq!(range("", now), range("current", now));
        // At the very start of a month the period is still this month, not the last one.
        let first = "2026-04-01T00:00:00Z";
        assert_eq!(range("current", first), (at(first), at(first)));
    }

    #[test]
    fn last_month_is_the_whole_previous_calendar_month() {
        assert_eq!(
            range("last-month", "2026-03-15T12:00:00Z"),
            (at("2026-02-01T00:00:00Z"), at("2026-03-01T00:00:00Z"))
        );
        // On the last instant of a month, "last month" is still the one before it.
        assert_eq!(
            range("last-month", "2026-03-31T23:59:59Z"),
            (at("2026-02-01T00:00:00Z"), at("2026-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn last_month_in_january_is_december_of_the_previous_year() {
        assert_eq!(
            range("last-month", "2027-01-01T00:00:00Z"),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            range("last-month", "2027-01-31T23:59:59Z"),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn february_has_29_days_in_leap_years_only() {
        let (from, to) = range("last-month", "2024-03-10T00:00:00Z");
        assert_eq!(from, at("2024-02-01T00:00:00Z"));
        assert_eq!(to - from, TimeDelta::days(29));
        let (from, to) = range("last-month", "2026-03-10T00:00:00Z");
        assert_eq!(to - from, TimeDelta::days(28));
        // 2000 is a leap year (divisible by 400), 2100 is not (by 100 only).
        let (from, to) = range("last-month", "2000-03-01T00:00:00Z");
        assert_eq!(to - from, TimeDelta::days(29));
        let (from, to) = range("last-month", "2100-03-01T00:00:00Z");
        assert_eq!(to - from, TimeDelta::days(28));
    }

    #[test]
    fn explicit_ranges_take_dates_or_rfc_3339() {
        let now = "2026-03-15T12:00:00Z";
        assert_eq!(
            range("2026-01-01..2026-02-01", now),
            (at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z"))
        );
        // Offsets are converted to UTC; fractions of a second are kept.
        assert_eq!(
            range("2026-01-01T00:00:00-03:00..2026-01-02T10:30:00.5Z", now),
            (at("2026-01-01T03:00:00Z"), at("2026-01-02T10:30:00.5Z"))
        );
        assert_eq!(
            range("2026-01-01..2026-01-01T06:00:00Z", now),
            (at("2026-01-01T00:00:00Z"), at("2026-01-01T06:00:00Z"))
        );
    }

    #[test]
    fn a_leap_year_fits_and_a_day_more_does_not() {
        let now = "2026-03-15T12:00:00Z";
        let (from, to) = range("2024-01-01..2025-01-01", now);
        assert_eq!(to - from, TimeDelta::days(366));
        let reason = refused("2023-01-01..2024-01-03");
        assert!(reason.contains("longer than 366 days"), "{reason}");
    }

    #[test]
    fn empty_and_inverted_ranges_are_refused() {
        assert!(refused("2026-01-01..2026-01-01").contains("empty or inverted"));
        assert!(refused("2026-02-01..2026-01-01").contains("empty or inverted"));
        assert!(
            refused("2026-01-01T10:00:00Z..2026-01-01T09:59:59Z").contains("empty or inverted")
        );
    }

    #[test]
    fn garbage_is_refused_naming_what_was_expected() {
        assert!(refused("last-year").contains("\"current\", \"last-month\" or FROM..TO"));
        assert!(refused("2026-13-01..2026-12-01").contains("FROM \"2026-13-01\" is neither"));
        assert!(refused("2026-01-01..").contains("TO \"\" is neither"));
        assert!(refused("..2026-01-01").contains("FROM \"\" is neither"));
        assert!(refused("2026-02-30..2026-03-01").contains("FROM"));
        assert!(refused("2026-01-01..tomorrow").contains("TO \"tomorrow\""));
    }

    fn rows() -> Vec<UsageRow> {
        vec![
            UsageRow {
                hour: at("2026-02-01T00:00:00Z"),
                meter: "requests".into(),
                quantity: 120,
            },
            UsageRow {
                hour: at("2026-02-01T00:00:00Z"),
                meter: "egress_bytes".into(),
                quantity: 4096,
            },
            UsageRow {
                hour: at("2026-02-01T01:00:00Z"),
                meter: "requests".into(),
                quantity: 30,
            },
        ]
    }

    #[test]
    fn csv_has_a_header_and_one_line_per_row() {
        let csv = render_csv("t-1", &rows());
        assert_eq!(
            csv,
            "tenant_id,hour,meter,quantity\r\n\
             t-1,2026-02-01T00:00:00Z,requests,120\r\n\
             t-1,2026-02-01T00:00:00Z,egress_bytes,4096\r\n\
             t-1,2026-02-01T01:00:00Z,requests,30\r\n"
        );
        assert_eq!(render_csv("t-1", &[]), "tenant_id,hour,meter,quantity\r\n");
    }

    #[test]
    fn csv_quotes_fields_that_need_it() {
        let row = UsageRow {
            hour: at("2026-02-01T00:00:00Z"),
            meter: "odd,\"meter\"\nname".into(),
            quantity: 1,
        };
        assert_eq!(
            render_csv("t,1", &[row]),
            "tenant_id,hour,meter,quantity\r\n\
             \"t,1\",2026-02-01T00:00:00Z,\"odd,\"\"meter\"\"\nname\",1\r\n"
        );
    }

    #[test]
    fn json_has_the_period_the_rows_and_totals_per_meter() {
        let json = render_json(
            "t-1",
            at("2026-02-01T00:00:00Z"),
            at("2026-03-01T00:00:00Z"),
            &rows(),
        );
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            json!({
                "tenant_id": "t-1",
                "from": "2026-02-01T00:00:00Z",
                "to": "2026-03-01T00:00:00Z",
                "rows": [
                    {"hour": "2026-02-01T00:00:00Z", "meter": "requests", "quantity": 120},
                    {"hour": "2026-02-01T00:00:00Z", "meter": "egress_bytes", "quantity": 4096},
                    {"hour": "2026-02-01T01:00:00Z", "meter": "requests", "quantity": 30},
                ],
                "totals": {"egress_bytes": 4096, "requests": 150},
            })
        );
    }

    #[test]
    fn json_totals_saturate_instead_of_wrapping() {
        let mut rows = rows();
        rows[0].quantity = u64::MAX;
        let json = render_json("t-1", rows[0].hour, rows[2].hour, &rows);
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["totals"]["requests"], json!(u64::MAX));
        let empty: Value =
            serde_json::from_str(&render_json("t-1", rows[0].hour, rows[2].hour, &[])).unwrap();
        assert_eq!(empty["rows"], json!([]));
        assert_eq!(empty["totals"], json!({}));
    }
}
