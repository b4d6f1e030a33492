//! Money: integer minor units of an ISO 4217 currency, never floats.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// The currencies plans may be priced in (ISO 4217; all have two decimal places).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    BRL,
    USD,
    EUR,
}

impl Currency {
    /// `code` as a known currency; `field` names the request field in the error.
    pub fn parse(field: &'static str, code: &str) -> Result<Self, DomainError> {
        match code {
            "BRL" => Ok(Self::BRL),
            "USD" => Ok(Self::USD),
            "EUR" => Ok(Self::EUR),
            _ => Err(DomainError::invalid(
                field,
                format!("{code:?} is not a supported ISO 4217 currency (BRL, USD, EUR)"),
            )),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::BRL => "BRL",
            Self::USD => "USD",
            Self::EUR => "EUR",
        }
    }

    /// Digits after the decimal point: `amount_minor` / 10^exponent is the amount.
    pub fn exponent(self) -> u32 {
        2
    }

    /// `amount_minor` written as a decimal amount, e.g. 4990 → "49.90".
    pub fn format(self, amount_minor: i64) -> String {
        let unit = 10_i64.pow(self.exponent());
        let sign = if amount_minor < 0 { "-" } else { "" };
        let abs = amount_minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / unit.unsigned_abs(),
            abs % unit.unsigned_abs(),
            width = self.exponent() as usize
        )
    }
}

/// `amount × numerator / denominator`, rounded half away from zero, without overflow
/// (prorations: a price times the part of a period left).
pub fn prorate(amount_minor: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator == 0 {
        return 0;
    }
    let product = i128::from(amount_minor) * i128::from(numerator);
    let d = i128::from(denominator);
    let half = d.abs() / 2;
    let rounded = if (product >= 0) == (d > 0) {
        (product.abs() + half) / d.abs()
    } else {
        -((product.abs() + half) / d.abs())
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_currencies_name_the_field() {
        let err = Currency::parse("plan.currency", "XYZ").unwrap_err();
        assert!(err.to_string().contains("plan.currency"), "{err}");
        assert_eq!(Currency::parse("c", "BRL").unwrap(), Currency::BRL);
    }

    #[test]
    fn amounts_format_from_minor_units() {
        assert_eq!(Currency::BRL.format(4990), "49.90");
        assert_eq!(Currency::USD.format(5), "0.05");
        assert_eq!(Currency::USD.format(-120), "-1.20");
    }

    #[test]
    fn prorations_round_half_away_from_zero() {
        assert_eq!(prorate(1000, 1, 3), 333);
        assert_eq!(prorate(1000, 2, 3), 667);
        assert_eq!(prorate(-1000, 2, 3), -667);
        assert_eq!(prorate(i64::MAX, 2, 1), i64::MAX);
        assert_eq!(prorate(100, 1, 0), 0);
    }
}
