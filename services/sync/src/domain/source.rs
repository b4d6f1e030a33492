//! The integration types, the configuration each takes and the credentials each needs.
//!
//! Validation is pure and names the field it refuses (`config.http_json.records_path`), so a
//! bad request is answered INVALID_ARGUMENT before anything is sealed or appended.

use std::collections::BTreeMap;

use tenantry_proto::events::v1 as pb;
use tenantry_proto::events::v1::integration_config::Source;

use super::DomainError;

/// The systems an integration can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Vtex,
    #[serde(rename = "mercadolibre")]
    MercadoLibre,
    GoogleAds,
    FacebookAds,
    HttpJson,
}

impl SourceKind {
    pub const ALL: [SourceKind; 5] = [
        Self::Vtex,
        Self::MercadoLibre,
        Self::GoogleAds,
        Self::FacebookAds,
        Self::HttpJson,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vtex => "vtex",
            Self::MercadoLibre => "mercadolibre",
            Self::GoogleAds => "google_ads",
            Self::FacebookAds => "facebook_ads",
            Self::HttpJson => "http_json",
        }
    }

    pub fn parse(field: &'static str, value: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!(
                        "{value:?} is not an integration type (vtex, mercadolibre, google_ads, \
                         facebook_ads, http_json)"
                    ),
                )
            })
    }

    /// The credentials this type needs, then those it may take.
    pub fn credentials(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Self::Vtex => (&["app_key", "app_token"], &[]),
            Self::MercadoLibre => (
                &["client_id", "client_secret", "refresh_token"],
                &["access_token"],
            ),
            Self::GoogleAds => (
                &[
                    "developer_token",
                    "client_id",
                    "client_secret",
                    "refresh_token",
                ],
                &[],
            ),
            Self::FacebookAds => (&["access_token"], &[]),
            Self::HttpJson => (&[], &["auth_value"]),
        }
    }
}

const MAX_CREDENTIAL: usize = 8192;

/// The largest page an `http_json` source may declare (a page is parsed whole in memory).
const MAX_PAGE_SIZE: u32 = 100_000;

/// Checks that `credentials` are exactly what `kind` needs (and may take); answers their names.
pub fn validate_credentials(
    kind: SourceKind,
    credentials: &BTreeMap<String, String>,
) -> Result<Vec<String>, DomainError> {
    let (required, optional) = kind.credentials();
    for name in required {
        match credentials.get(*name) {
            Some(v) if !v.is_empty() => {}
            _ => {
                return Err(DomainError::invalid(
                    "credentials",
                    format!("{name} is required for {}", kind.as_str()),
                ));
            }
        }
    }
    for (name, value) in credentials {
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            // The name only: a value may be a secret put in the wrong place.
            return Err(DomainError::invalid(
                "credentials",
                format!("{name:?} is not a credential of {}", kind.as_str()),
            ));
        }
        if value.len() > MAX_CREDENTIAL || value.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "credentials",
                format!("{name} must be at most {MAX_CREDENTIAL} bytes without control characters"),
            ));
        }
    }
    Ok(credentials.keys().cloned().collect())
}

fn token(field: &'static str, value: &str, max: usize, extra: &str) -> Result<(), DomainError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be 1–{max} characters of letters, digits or {extra:?}"),
        ))
    }
}

fn digits(
    field: &'static str,
    value: &str,
    len: std::ops::RangeInclusive<usize>,
) -> Result<(), DomainError> {
    if len.contains(&value.len()) && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be {} to {} digits", len.start(), len.end()),
        ))
    }
}

/// Checks `config` for `kind` and fills its defaults; answers the configuration to keep.
pub fn validate_config(
    kind: SourceKind,
    config: Option<&pb::IntegrationConfig>,
) -> Result<pb::IntegrationConfig, DomainError> {
    let source = config.and_then(|c| c.source.clone());
    let source = match (kind, source) {
        (SourceKind::Vtex, Some(Source::Vtex(mut c))) => {
            token("config.vtex.account_name", &c.account_name, 63, "-")?;
            if c.environment.is_empty() {
                c.environment = "vtexcommercestable".into();
            }
            token("config.vtex.environment", &c.environment, 63, "")?;
            Source::Vtex(c)
        }
        (SourceKind::MercadoLibre, Some(Source::Mercadolibre(c))) => {
            digits("config.mercadolibre.seller_id", &c.seller_id, 1..=20)?;
            Source::Mercadolibre(c)
        }
        (SourceKind::GoogleAds, Some(Source::GoogleAds(c))) => {
            digits("config.google_ads.customer_id", &c.customer_id, 10..=10)?;
            if !c.login_customer_id.is_empty() {
                digits(
                    "config.google_ads.login_customer_id",
                    &c.login_customer_id,
                    10..=10,
                )?;
            }
            Source::GoogleAds(c)
        }
        (SourceKind::FacebookAds, Some(Source::FacebookAds(c))) => {
            match c.ad_account_id.strip_prefix("act_") {
                Some(rest) => {
                    digits("config.facebook_ads.ad_account_id", rest, 1..=20).map_err(|_| {
                        DomainError::invalid(
                            "config.facebook_ads.ad_account_id",
                            "must be act_<digits>",
                        )
                    })?
                }
                None => {
                    return Err(DomainError::invalid(
                        "config.facebook_ads.ad_account_id",
                        "must be act_<digits>",
                    ));
                }
            }
            Source::FacebookAds(c)
        }
        (SourceKind::HttpJson, Some(Source::HttpJson(c))) => Source::HttpJson(http_json(c)?),
        (kind, _) => {
            return Err(DomainError::invalid(
                "config",
                format!("must hold the {} configuration", kind.as_str()),
            ));
        }
    };
    Ok(pb::IntegrationConfig {
        source: Some(source),
    })
}

fn http_json(mut c: pb::HttpJsonConfig) -> Result<pb::HttpJsonConfig, DomainError> {
    // Where it points is checked again at connect time, on the resolved address, by the
    // egress policy; here only its shape.
    let url = (c.url.len() <= 2048)
        .then(|| reqwest::Url::parse(&c.url).ok())
        .flatten()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.username().is_empty() && u.password().is_none());
    if url.is_none() {
        return Err(DomainError::invalid(
            "config.http_json.url",
            "must be an absolute http or https URL without user information",
        ));
    }
    if !c.auth_header.is_empty() && http::HeaderName::from_bytes(c.auth_header.as_bytes()).is_err()
    {
        return Err(DomainError::invalid(
            "config.http_json.auth_header",
            "is not a header name",
        ));
    }
    if c.records_path.len() > 500 {
        return Err(DomainError::invalid(
            "config.http_json.records_path",
            "is longer than 500 characters",
        ));
    }
    serde_json_path::JsonPath::parse(&c.records_path).map_err(|e| {
        DomainError::invalid(
            "config.http_json.records_path",
            format!("is not a JSONPath: {e}"),
        )
    })?;
    token("config.http_json.id_field", &c.id_field, 100, "_-.")?;
    if !c.cursor_field.is_empty() {
        token("config.http_json.cursor_field", &c.cursor_field, 100, "_-.")?;
        token(
            "config.http_json.cursor_param",
            &c.cursor_param,
            100,
            "_-.[]",
        )?;
    }
    if !c.page_param.is_empty() {
        token("config.http_json.page_param", &c.page_param, 100, "_-.[]")?;
    }
    if c.page_size > 0 && c.page_param.is_empty() {
        return Err(DomainError::invalid(
            "config.http_json.page_size",
            "needs page_param (a source without pages has one)",
        ));
    }
    if c.page_size > MAX_PAGE_SIZE {
        return Err(DomainError::invalid(
            "config.http_json.page_size",
            format!("is more than {MAX_PAGE_SIZE}"),
        ));
    }
    if c.stream.is_empty() {
        c.stream = "records".into();
    }
    token("config.http_json.stream", &c.stream, 60, "_-")?;
    Ok(c)
}

/// The type of a configuration (what its `source` holds).
pub fn kind_of(config: &pb::IntegrationConfig) -> Option<SourceKind> {
    Some(match config.source.as_ref()? {
        Source::Vtex(_) => SourceKind::Vtex,
        Source::Mercadolibre(_) => SourceKind::MercadoLibre,
        Source::GoogleAds(_) => SourceKind::GoogleAds,
        Source::FacebookAds(_) => SourceKind::FacebookAds,
        Source::HttpJson(_) => SourceKind::HttpJson,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(records_path: &str) -> pb::IntegrationConfig {
        pb::IntegrationConfig {
            source: Some(Source::HttpJson(pb::HttpJsonConfig {
                url: "https://api.example.com/items".into(),
                records_path: records_path.into(),
                id_field: "id".into(),
                ..Default::default()
            })),
        }
    }

    fn field(e: DomainError) -> &'static str {
        match e {
            DomainError::Invalid { field, .. } => field,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn types_are_named_and_unknown_ones_refused() {
        assert_eq!(
            SourceKind::parse("type", "google_ads").unwrap(),
            SourceKind::GoogleAds
        );
        assert_eq!(
            field(SourceKind::parse("type", "shopify").unwrap_err()),
            "type"
        );
    }

    #[test]
    fn a_bad_jsonpath_names_its_field_and_defaults_are_filled() {
        let ok = validate_config(SourceKind::HttpJson, Some(&http("$.data[*]"))).unwrap();
        let Some(Source::HttpJson(c)) = ok.source else {
            panic!()
        };
        assert_eq!(c.stream, "records");
        assert_eq!(
            field(validate_config(SourceKind::HttpJson, Some(&http("$.data[?"))).unwrap_err()),
            "config.http_json.records_path"
        );
        assert_eq!(
            field(validate_config(SourceKind::Vtex, Some(&http("$"))).unwrap_err()),
            "config"
        );
    }

    #[test]
    fn urls_must_be_absolute_http_without_user_information() {
        for url in ["ftp://x/", "/relative", "https://user:pw@host/"] {
            let mut c = http("$");
            if let Some(Source::HttpJson(h)) = c.source.as_mut() {
                h.url = url.into();
            }
            assert_eq!(
                field(validate_config(SourceKind::HttpJson, Some(&c)).unwrap_err()),
                "config.http_json.url",
                "{url}"
            );
        }
    }

    #[test]
    fn a_page_size_needs_pages_and_a_bound() {
        let with = |page_param: &str, page_size: u32| {
            let mut c = http("$");
            if let Some(Source::HttpJson(h)) = c.source.as_mut() {
                h.page_param = page_param.into();
                h.page_size = page_size;
            }
            validate_config(SourceKind::HttpJson, Some(&c))
        };
        assert!(with("page", 100).is_ok());
        assert!(with("", 0).is_ok());
        assert_eq!(
            field(with("", 100).unwrap_err()),
            "config.http_json.page_size"
        );
        assert_eq!(
            field(with("page", MAX_PAGE_SIZE + 1).unwrap_err()),
            "config.http_json.page_size"
        );
    }

    #[test]
    fn credentials_are_exactly_what_the_type_needs() {
        let creds = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            validate_credentials(
                SourceKind::Vtex,
                &creds(&[("app_key", "k"), ("app_token", "t")])
            )
            .unwrap(),
            vec!["app_key", "app_token"]
        );
        let missing =
            validate_credentials(SourceKind::Vtex, &creds(&[("app_key", "k")])).unwrap_err();
        assert!(missing.to_string().contains("app_token"));
        let stray = validate_credentials(
            SourceKind::FacebookAds,
            &creds(&[("access_token", "a"), ("oops", "SECRET")]),
        )
        .unwrap_err();
        assert!(!stray.to_string().contains("SECRET"));
        assert!(
            validate_credentials(SourceKind::HttpJson, &creds(&[]))
                .unwrap()
                .is_empty()
        );
    }
}
