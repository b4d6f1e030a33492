//! `Stripe-Signature` verification, as Stripe documents it
//! (<https://docs.stripe.com/webhooks#verify-manually>) and its libraries implement it.

use ring::hmac;

/// The header Stripe signs every webhook delivery with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Stripe's libraries' default window: an older (or as far future) delivery is a replay.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The only scheme Stripe signs live events with; `v0` (test-mode legacy) is ignored.
const SCHEME: &str = "v1";

/// Why a delivery is not taken as Stripe's. Each is answered 400: Stripe retries, and a
/// forged request learns nothing it did not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    /// No `t=` with whole seconds.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// No `v1` is the body's HMAC under our secret (another secret, an altered body, or a
    /// header without any `v1`).
    #[error("no Stripe-Signature v1 signature matches the payload")]
    NoMatchingSignature,
    /// Authentic, but signed too long ago (or ahead): replayed or a badly skewed clock.
    #[error("the Stripe-Signature timestamp is outside the tolerance window")]
    TimestampOutsideTolerance,
}

/// Checks that `payload` (the raw body, byte for byte) was signed by Stripe with `secret`
/// (the whole `whsec_…` string is the HMAC key, as in Stripe's libraries) within
/// `tolerance_secs` of `now_unix`.
///
/// The signature is checked before the timestamp, as Stripe's libraries do, so only an
/// authentic delivery is ever reported as stale.
pub fn verify_signature(
    header: Option<&str>,
    payload: &[u8],
    secret: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let parsed = parse_header(header)?;

    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = Vec::with_capacity(parsed.timestamp_raw.len() + 1 + payload.len());
    signed.extend_from_slice(parsed.timestamp_raw.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(payload);
    // `hmac::verify` compares in constant time; every candidate is tried so the time taken
    // does not tell which one (if any) matched.
    let matched = parsed
        .signatures
        .iter()
        .filter_map(|hex| decode_hex(hex))
        .fold(false, |found, tag| {
            hmac::verify(&key, &signed, &tag).is_ok() | found
        });
    if !matched {
        return Err(SignatureError::NoMatchingSignature);
    }

    let age = now_unix.saturating_sub(parsed.timestamp);
    if age.saturating_abs() > tolerance_secs {
        return Err(SignatureError::TimestampOutsideTolerance);
    }
    Ok(())
}

struct Parsed<'a> {
    timestamp: i64,
    /// Signed as sent: the HMAC covers the header's digits, not our re-rendering of them.
    timestamp_raw: &'a str,
    signatures: Vec<&'a str>,
}

/// `t=<unix>,v1=<hex>,v1=<hex>,v0=<hex>,…`; keys Stripe may add (`secret`, `payload`,
/// `destination` debug hints) are ignored, as are empty items and spaces after commas.
fn parse_header(header: &str) -> Result<Parsed<'_>, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            // A second `t` is ambiguous: which one did Stripe sign?
            "t" if timestamp.is_some() => return Err(SignatureError::Malformed),
            "t" => {
                let seconds = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse::<i64>().ok())
                    .flatten()
                    .ok_or(SignatureError::Malformed)?;
                timestamp = Some((seconds, value));
            }
            SCHEME => signatures.push(value),
            _ => {}
        }
    }
    let (timestamp, timestamp_raw) = timestamp.ok_or(SignatureError::Malformed)?;
    Ok(Parsed {
        timestamp,
        timestamp_raw,
        signatures,
    })
}

/// Lower- or upper-case hex; `None` for anything else (such a signature matches nothing).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_testkit::fakes::stripe_sign as test_sign;

    const SECRET: &str = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn verify(header: Option<&str>, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        verify_signature(header, body, secret, now(), DEFAULT_TOLERANCE_SECS)
    }

    #[tokio::test]
    async fn a_header_from_stripes_library_is_accepted() {
        let header = test_sign::header(BODY, SECRET, now()).await;
        assert_eq!(verify(Some(&header), BODY, SECRET), Ok(()));
    }

    #[tokio::test]
    async fn one_matching_v1_among_several_is_enough() {
        // As while a secret is rolled: Stripe signs with the old and the new one.
        let t = now();
        let other = test_sign::header(BODY, "whsec_the_other_endpoint", t).await;
        let ours = test_sign::header(BODY, SECRET, t).await;
        let v1 = |h: &str| h.split_once(",v1=").unwrap().1.to_owned();
        let header = format!("t={t},v1={},v1={},v0={}", v1(&other), v1(&ours), v1(&other));
        assert_eq!(verify(Some(&header), BODY, SECRET), Ok(()));
        let reversed = format!("t={t}, v1={}, v1={}", v1(&ours), v1(&other));
        assert_eq!(verify(Some(&reversed), BODY, SECRET), Ok(()));
    }

    #[tokio::test]
    async fn another_secret_is_refused() {
        let header = test_sign::header(BODY, "whsec_not_ours", now()).await;
        assert_eq!(
            verify(Some(&header), BODY, SECRET),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[tokio::test]
    async fn an_altered_body_is_refused() {
        let header = test_sign::header(BODY, SECRET, now()).await;
        let altered = br#"{"id":"evt_1","object":"event","type":"invoice.paid" }"#;
        assert_eq!(
            verify(Some(&header), altered, SECRET),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[tokio::test]
    async fn a_stale_or_future_timestamp_is_refused() {
        for skew in [-(DEFAULT_TOLERANCE_SECS + 60), DEFAULT_TOLERANCE_SECS + 60] {
            let header = test_sign::header(BODY, SECRET, now() + skew).await;
            assert_eq!(
                verify(Some(&header), BODY, SECRET),
                Err(SignatureError::TimestampOutsideTolerance),
                "skew {skew}"
            );
        }
        // Inside the window (an old delivery Stripe retried quickly) is fine.
        let header = test_sign::header(BODY, SECRET, now() - 200).await;
        assert_eq!(verify(Some(&header), BODY, SECRET), Ok(()));
    }

    #[tokio::test]
    async fn a_replayed_header_on_a_timestamp_edited_by_hand_does_not_match() {
        // Moving `t` forward to pass the window breaks the HMAC, which covers it.
        let old = now() - 3600;
        let header = test_sign::header(BODY, SECRET, old).await;
        let moved = header.replace(&format!("t={old}"), &format!("t={}", now()));
        assert_eq!(
            verify(Some(&moved), BODY, SECRET),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn a_missing_header_is_refused() {
        assert_eq!(verify(None, BODY, SECRET), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some("  "), BODY, SECRET),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_malformed_header_is_refused() {
        let sig = "v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";
        for header in [
            "garbage".to_owned(),
            sig.to_owned(),
            format!("t=,{sig}"),
            format!("t=12x4,{sig}"),
            format!("t=-5,{sig}"),
            format!("t=99999999999999999999999,{sig}"),
            format!("t=1,t=2,{sig}"),
        ] {
            assert_eq!(
                verify(Some(&header), BODY, SECRET),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn a_header_without_v1_or_with_bad_hex_matches_nothing() {
        let t = now();
        for header in [
            format!("t={t}"),
            format!("t={t},v0=abcd"),
            format!("t={t},v1=zz"),
            format!("t={t},v1=abc"),
        ] {
            assert_eq!(
                verify(Some(&header), BODY, SECRET),
                Err(SignatureError::NoMatchingSignature),
                "{header}"
            );
        }
    }
}
