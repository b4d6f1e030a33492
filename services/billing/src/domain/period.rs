//! Billing periods: calendar months (UTC), as Lago's calendar billing. Quotas reset on the
//! first of every month whatever the plan's interval; a yearly plan's billing period is
//! twelve of them.

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// The first instant of `t`'s month.
pub fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

/// `t` (a month's start) `n` months later.
pub fn add_months(t: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    let months = t.year() * 12 + t.month0() as i32 + n as i32;
    Utc.with_ymd_and_hms(months / 12, (months % 12) as u32 + 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

/// The first instant of `t`'s day (UTC).
pub fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .unwrap_or(t)
}

/// How long a meter's quota runs before it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Day,
    Month,
}

impl Window {
    /// The window `meter`'s quota is counted over: API calls per day, the rest per month.
    pub fn of(meter: &str) -> Self {
        if meter == tenantry_contracts::billing::API_CALLS {
            Self::Day
        } else {
            Self::Month
        }
    }

    /// The start of the window `t` falls in.
    pub fn start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Day => day_start(t),
            Self::Month => month_start(t),
        }
    }

    /// The start of the window after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Day => start + chrono::Duration::days(1),
            Self::Month => add_months(start, 1),
        }
    }
}

/// The month before `t`'s (a month's start).
pub fn previous_month(t: DateTime<Utc>) -> DateTime<Utc> {
    let months = t.year() * 12 + t.month0() as i32 - 1;
    Utc.with_ymd_and_hms(months / 12, (months % 12) as u32 + 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 13, 30, 0).unwrap()
    }

    #[test]
    fn months_roll_over_years() {
        assert_eq!(
            month_start(at(2026, 12, 7)),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        let dec = month_start(at(2026, 12, 7));
        assert_eq!(
            add_months(dec, 1),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            add_months(dec, 12),
            Utc.with_ymd_and_hms(2027, 12, 1, 0, 0, 0).unwrap()
        );
        let jan = month_start(at(2027, 1, 31));
        assert_eq!(previous_month(jan), dec);
    }
}
