//! A plan of the catalog (platform-wide, id = its name): price, interval, limits and
//! per-meter quotas. The catalog ships with the seeds' plans ([`default_catalog`]).

use serde::{Deserialize, Serialize};
use tenantry_eventstore::Aggregate;
use tenantry_eventstore::subject::PLATFORM_TENANT;
use tenantry_eventstore::{AggregateAddress, InvalidToken};
use tenantry_proto::events::v1 as pb;

use super::DomainError;
use super::money::Currency;
use tenantry_contracts::billing::{API_CALLS, BYTES, PlanEvent, REQUESTS};

/// The meters a plan may meter (others may report, but have no quota yet). Quotas are per
/// calendar month, but `api_calls` (the gateway's requests) is per day.
pub const METERS: [&str; 6] = [
    REQUESTS,
    BYTES,
    API_CALLS,
    "records",
    "storage",
    "instance_hours",
];
const MAX_NAME: usize = 40;
const MAX_DISPLAY_NAME: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Monthly,
    Yearly,
}

impl Interval {
    pub fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Yearly => 12,
        }
    }

    /// Stripe's `recurring.interval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "month",
            Self::Yearly => "year",
        }
    }

    pub fn to_proto(self) -> pb::BillingInterval {
        match self {
            Self::Monthly => pb::BillingInterval::Monthly,
            Self::Yearly => pb::BillingInterval::Yearly,
        }
    }
}

/// A plan, validated. Its limits travel as the gateway's `plan_limits_changed` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub display_name: String,
    pub price_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub limits: pb::PlanLimitsChanged,
    pub retired: bool,
}

impl Plan {
    /// Checks a plan as a client defined it; errors name the field (`plan.…`).
    pub fn from_definition(d: pb::PlanDefined) -> Result<Self, DomainError> {
        let name = d.name;
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(DomainError::invalid(
                "plan.name",
                "must be 1–40 lower-case letters, digits or '-'",
            ));
        }
        if d.display_name.chars().count() > MAX_DISPLAY_NAME {
            return Err(DomainError::invalid(
                "plan.display_name",
                "is longer than 100 characters",
            ));
        }
        if d.price_minor < 0 {
            return Err(DomainError::invalid(
                "plan.price_minor",
                "must not be negative",
            ));
        }
        let currency = Currency::parse("plan.currency", &d.currency)?;
        let interval = match pb::BillingInterval::try_from(d.interval) {
            Ok(pb::BillingInterval::Monthly) => Interval::Monthly,
            Ok(pb::BillingInterval::Yearly) => Interval::Yearly,
            _ => {
                return Err(DomainError::invalid(
                    "plan.interval",
                    "must be MONTHLY or YEARLY",
                ));
            }
        };
        let mut limits = d.limits.unwrap_or_default();
        limits.plan = name.clone();
        validate_limits(&limits)?;
        // API calls per day are the `api_calls` meter's quota: one number, two places.
        match limits.meters.iter().find(|m| m.meter == API_CALLS) {
            Some(m) => limits.api_calls_per_day = m.limit,
            None if limits.api_calls_per_day > 0 => limits.meters.push(pb::MeterQuota {
                meter: API_CALLS.into(),
                limit: limits.api_calls_per_day,
                behaviour: limits.quota_behaviour,
                throttle_rps: limits.throttle_rps,
                overage_price_minor: 0,
                overage_unit: 0,
            }),
            None => {}
        }
        Ok(Self {
            display_name: if d.display_name.is_empty() {
                name.clone()
            } else {
                d.display_name
            },
            name,
            price_minor: d.price_minor,
            currency,
            interval,
            limits,
            retired: d.retired,
        })
    }

    pub fn to_definition(&self) -> pb::PlanDefined {
        pb::PlanDefined {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            price_minor: self.price_minor,
            currency: self.currency.code().into(),
            interval: self.interval.to_proto() as i32,
            limits: Some(self.limits.clone()),
            retired: self.retired,
        }
    }

    /// The price of a month of this plan (a yearly price spread over 12), to tell an upgrade
    /// from a downgrade.
    pub fn monthly_price(&self) -> i64 {
        self.price_minor / i64::from(self.interval.months())
    }

    /// The quota of `meter`, if the plan meters it.
    pub fn quota(&self, meter: &str) -> Option<&pb::MeterQuota> {
        self.limits
            .meters
            .iter()
            .find(|m| m.meter == meter && m.limit > 0)
    }
}

fn validate_limits(l: &pb::PlanLimitsChanged) -> Result<(), DomainError> {
    let known = |v: i32| pb::QuotaBehaviour::try_from(v).is_ok();
    if !known(l.quota_behaviour) {
        return Err(DomainError::invalid(
            "plan.limits.quota_behaviour",
            "is not a known behaviour",
        ));
    }
    if pb::WafLevel::try_from(l.waf_level).is_err() {
        return Err(DomainError::invalid(
            "plan.limits.waf_level",
            "is not a known level",
        ));
    }
    if pb::ProcessingPriority::try_from(l.processing_priority).is_err() {
        return Err(DomainError::invalid(
            "plan.limits.processing_priority",
            "is not a known priority",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &l.meters {
        if !METERS.contains(&m.meter.as_str()) {
            return Err(DomainError::invalid(
                "plan.limits.meters.meter",
                format!("{:?} is not a meter ({})", m.meter, METERS.join(", ")),
            ));
        }
        if !seen.insert(m.meter.as_str()) {
            return Err(DomainError::invalid(
                "plan.limits.meters.meter",
                format!("{} is listed twice", m.meter),
            ));
        }
        if !known(m.behaviour) {
            return Err(DomainError::invalid(
                "plan.limits.meters.behaviour",
                "is not a known behaviour",
            ));
        }
        if m.overage_price_minor < 0 {
            return Err(DomainError::invalid(
                "plan.limits.meters.overage_price_minor",
                "must not be negative",
            ));
        }
        if m.overage_price_minor > 0 && m.overage_unit == 0 {
            return Err(DomainError::invalid(
                "plan.limits.meters.overage_unit",
                "must be at least 1 when there is an overage price",
            ));
        }
        if m.behaviour == pb::QuotaBehaviour::Throttle as i32 && m.throttle_rps == 0 {
            return Err(DomainError::invalid(
                "plan.limits.meters.throttle_rps",
                "must be at least 1 with THROTTLE",
            ));
        }
    }
    Ok(())
}

/// The catalog entry's aggregate: `Defined` replaces the plan whole.
#[derive(Debug, Clone, Default)]
pub struct CatalogEntry {
    pub plan: Option<Plan>,
    pub version: u64,
}

#[derive(Debug, Clone)]
pub enum PlanCommand {
    Define(Plan),
}

/// Where the plan `name` lives.
pub fn address(name: &str) -> Result<AggregateAddress, InvalidToken> {
    AggregateAddress::of::<CatalogEntry>(PLATFORM_TENANT, name.to_owned())
}

impl Aggregate for CatalogEntry {
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = DomainError;

    fn decide(&self, command: &PlanCommand) -> Result<Vec<PlanEvent>, DomainError> {
        let PlanCommand::Define(plan) = command;
        // Defining the same plan again changes nothing (the seeding at every start).
        if self.plan.as_ref() == Some(plan) {
            return Ok(vec![]);
        }
        Ok(vec![PlanEvent::Defined(plan.to_definition())])
    }

    fn evolve(&mut self, event: &PlanEvent, meta: &tenantry_eventstore::EventMeta) {
        let PlanEvent::Defined(d) = event;
        // Written by `decide` from a valid plan; a definition that no longer validates
        // (a meter retired since) keeps the last valid one.
        if let Ok(plan) = Plan::from_definition(d.clone()) {
            self.plan = Some(plan);
        }
        self.version = meta.position;
    }
}

fn meter(
    meter: &str,
    limit: u64,
    behaviour: pb::QuotaBehaviour,
    overage_price_minor: i64,
    overage_unit: u64,
) -> pb::MeterQuota {
    pb::MeterQuota {
        meter: meter.into(),
        limit,
        behaviour: behaviour as i32,
        throttle_rps: 0,
        overage_price_minor,
        overage_unit,
    }
}

/// The seeds' plans: a free tier, and trial / business / enterprise with `TENANT_LIMITS`'
/// numbers (API calls per day, storage, processing priority); prices in BRL.
pub fn default_catalog() -> Vec<Plan> {
    use pb::QuotaBehaviour::{AlertOnly, BlockTraffic, Throttle};
    const GB: u64 = 1 << 30;
    let plan = |name: &str,
                display: &str,
                price: i64,
                calls_per_day: u64,
                storage_gb: u64,
                priority: pb::ProcessingPriority,
                rps: u32,
                waf: pb::WafLevel,
                seats: u32,
                custom_domains: u32,
                meters: Vec<pb::MeterQuota>| Plan {
        name: name.into(),
        display_name: display.into(),
        price_minor: price,
        currency: Currency::BRL,
        interval: Interval::Monthly,
        limits: pb::PlanLimitsChanged {
            plan: name.into(),
            requests_per_second: rps,
            burst: rps * 2,
            monthly_requests: calls_per_day * 30,
            monthly_bytes: 0,
            quota_behaviour: AlertOnly as i32,
            api_calls_per_day: calls_per_day,
            storage_bytes: storage_gb * GB,
            processing_priority: priority as i32,
            waf_level: waf as i32,
            // Explicit numbers: 0 would give the tenant service's default (20), not none.
            seats,
            custom_domains,
            integrations: seats,
            max_routes: if price == 0 { 5 } else { 0 },
            dedicated_instances: u32::from(name == "enterprise"),
            meters,
            ..Default::default()
        },
        retired: false,
    };
    vec![
        plan(
            "free",
            "Free",
            0,
            1_000,
            1,
            pb::ProcessingPriority::Low,
            10,
            pb::WafLevel::Basic,
            3,
            1,
            vec![
                meter(REQUESTS, 30_000, BlockTraffic, 0, 0),
                meter(API_CALLS, 1_000, BlockTraffic, 0, 0),
            ],
        ),
        plan(
            "trial",
            "Trial",
            0,
            1_000,
            1,
            pb::ProcessingPriority::Low,
            20,
            pb::WafLevel::Basic,
            5,
            1,
            vec![
                meter(REQUESTS, 30_000, BlockTraffic, 0, 0),
                meter(API_CALLS, 1_000, BlockTraffic, 0, 0),
                meter("storage", GB, AlertOnly, 0, 0),
            ],
        ),
        plan(
            "business",
            "Business",
            49_900,
            10_000,
            10,
            pb::ProcessingPriority::Normal,
            200,
            pb::WafLevel::Basic,
            25,
            20,
            vec![
                pb::MeterQuota {
                    throttle_rps: 10,
                    ..meter(REQUESTS, 300_000, Throttle, 100, 1_000)
                },
                pb::MeterQuota {
                    throttle_rps: 5,
                    ..meter(API_CALLS, 10_000, Throttle, 0, 0)
                },
                meter("storage", 10 * GB, AlertOnly, 50, GB),
            ],
        ),
        plan(
            "enterprise",
            "Enterprise",
            299_900,
            100_000,
            100,
            pb::ProcessingPriority::High,
            2_000,
            pb::WafLevel::Strict,
            500,
            100,
            vec![
                meter(REQUESTS, 3_000_000, AlertOnly, 50, 1_000),
                meter(API_CALLS, 100_000, AlertOnly, 0, 0),
                meter("storage", 100 * GB, AlertOnly, 30, GB),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition() -> pb::PlanDefined {
        default_catalog()[2].to_definition()
    }

    #[test]
    fn the_default_catalog_is_valid() {
        for plan in default_catalog() {
            let again = Plan::from_definition(plan.to_definition()).unwrap();
            assert_eq!(again, plan);
        }
    }

    #[test]
    fn the_default_catalog_sets_the_limits_other_services_own() {
        // 0 means the owning service's default (20 domains, auth's MAX_MEMBERS): every plan
        // of the catalog says its own numbers.
        let limits: Vec<(String, u32, u32)> = default_catalog()
            .into_iter()
            .map(|p| (p.name, p.limits.custom_domains, p.limits.seats))
            .collect();
        assert_eq!(
            limits,
            [
                ("free".to_owned(), 1, 3),
                ("trial".to_owned(), 1, 5),
                ("business".to_owned(), 20, 25),
                ("enterprise".to_owned(), 100, 500),
            ]
        );
    }

    #[test]
    fn bad_plans_name_the_field() {
        type Change = Box<dyn Fn(&mut pb::PlanDefined)>;
        let cases: Vec<(&str, Change)> = vec![
            ("plan.name", Box::new(|d| d.name = "Pro Plan".into())),
            ("plan.price_minor", Box::new(|d| d.price_minor = -1)),
            ("plan.currency", Box::new(|d| d.currency = "XYZ".into())),
            ("plan.interval", Box::new(|d| d.interval = 0)),
            (
                "plan.limits.meters.meter",
                Box::new(|d| d.limits.as_mut().unwrap().meters[0].meter = "cpu".into()),
            ),
            (
                "plan.limits.meters.overage_price_minor",
                Box::new(|d| d.limits.as_mut().unwrap().meters[0].overage_price_minor = -5),
            ),
        ];
        for (field, change) in cases {
            let mut d = definition();
            change(&mut d);
            let err = Plan::from_definition(d).unwrap_err();
            assert!(
                matches!(&err, DomainError::Invalid { field: f, .. } if *f == field),
                "{field}: {err:?}"
            );
        }
    }

    #[test]
    fn defining_the_same_plan_twice_writes_once() {
        let plan = default_catalog().remove(0);
        tenantry_kit::gwt::given::<CatalogEntry>([])
            .when(PlanCommand::Define(plan.clone()))
            .then([PlanEvent::Defined(plan.to_definition())])
            .when(PlanCommand::Define(plan))
            .then_nothing();
    }
}
