//! The one reading of `Authorization: Bearer <token>`, shared by every service's interceptor,
//! the gateway's API edge and its per-key rate limit: three readings with different rules let
//! a client pick the one that skips a check (`bearer tk_…` in lower case once escaped the
//! gateway's per-key limit while services accepted it).

/// The bearer token of `headers`, if any: the scheme is case-insensitive (RFC 7235), the
/// token is what follows the spaces after it, and an empty token is none.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches(|c| c == ' ' || c == '\t');
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_trimmed() {
        for value in [
            "Bearer tk_abc",
            "bearer tk_abc",
            "BEARER  tk_abc ",
            "bEaReR tk_abc",
        ] {
            assert_eq!(bearer(&with(value)), Some("tk_abc"), "{value:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_none() {
        assert_eq!(bearer(&http::HeaderMap::new()), None);
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer   ",
            "Bearertk_abc",
            "tk_abc",
        ] {
            assert_eq!(bearer(&with(value)), None, "{value:?}");
        }
    }
}
