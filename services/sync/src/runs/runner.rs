//! One run of an integration.
//!
//! A source's failure (refused address, bad answer, 429s without end, credentials that no
//! longer open) is the run's outcome, recorded on the integration. A failure to store what
//! was read, or to record the outcome, is ours: the job is retried, and the records it had
//! written are upserted again without change.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use tenantry_eventstore::{CommandMeta, ExecuteError, Repository};
use tenantry_kit::Clock;
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::egress::OutboundHttp;
use tenantry_proto::events::v1::integration_config::Source;
use tenantry_proto::events::v1::{
    FacebookAdsConfig, GoogleAdsConfig, HttpJsonConfig, MercadoLibreConfig, VtexConfig,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::job::{Job, Mode};
use crate::alerts;
use crate::budget::{self, Budget, Meter};
use crate::connectors::facebook_ads::{self, FacebookAds};
use crate::connectors::google_ads::{self, GoogleAds};
use crate::connectors::http_json::{HttpJson, later};
use crate::connectors::mercadolibre::{self, MercadoLibre, Tokens};
use crate::connectors::vtex::{self, Vtex};
use crate::connectors::{ConnectorError, Pacing};
use crate::domain::integration::{self, Integration, IntegrationCommand, RunOutcome};
use crate::records::{self, Written};
use tenantry_kit::seal::{Keystore, SealError, Sealed};

/// Everything a run needs. Cheap to share.
pub struct Runner {
    pub pool: PgPool,
    pub keystore: Keystore,
    pub integrations: Repository<Integration>,
    pub http: OutboundHttp,
    pub pacing: Pacing,
    /// Woken after records were written, so their usage is published at once.
    pub usage_wake: Arc<Notify>,
    pub clock: Arc<dyn Clock>,
    /// VTEX accounts' base URL template (`{account}`, `{environment}`).
    pub vtex_base: String,
    /// MercadoLibre's API (`https://api.mercadolibre.com`).
    pub mercadolibre_api: String,
    /// The Graph API with its version (`https://graph.facebook.com/v19.0`).
    pub facebook_graph: String,
    /// The Google Ads API with its version, and Google's OAuth token endpoint.
    pub google_ads_api: String,
    pub google_token_url: String,
    /// The tenants' daily API budgets (and their plans, for the storage alert).
    pub budget: Budget,
}

/// Ours, not the source's: the job is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(String);

/// The credentials of an integration, opened (name → value).
pub type Credentials = BTreeMap<String, String>;

impl Runner {
    /// Runs `job`; answers its outcome, or `None` when there was nothing to run (the
    /// integration is gone or disabled, or this run was recorded before).
    pub async fn run(&self, job: &Job) -> Result<Option<RunOutcome>, RunError> {
        let address = integration::address(job.tenant_id, job.integration_id)
            .map_err(|e| RunError(e.to_string()))?;
        let (state, _) = self
            .integrations
            .load(&address)
            .await
            .map_err(|e| RunError(e.to_string()))?;
        let run_id = job.run_id.to_string();
        if !state.exists() || !state.enabled || state.last_run_id == run_id {
            tracing::info!(
                tenant_id = %job.tenant_id, integration_id = %job.integration_id, run_id = %run_id,
                "nothing to run (no such integration, disabled, or recorded before)"
            );
            return Ok(None);
        }
        let started_at = self.clock.now();
        let meter = Meter {
            budget: self.budget.clone(),
            integrations: self.integrations.clone(),
            clock: self.clock.clone(),
            tenant: job.tenant_id,
            integration: job.integration_id,
            prepaid: Arc::default(),
        };
        let read = budget::METER
            .scope(meter.clone(), self.read(job, &state, &meter))
            .await;
        let mut tenant_bytes = None;
        let outcome = match read {
            Ok(read) => {
                tenant_bytes = read.tenant_bytes;
                RunOutcome::Succeeded {
                    records: read.written.records,
                    bytes: read.written.bytes,
                    cursors: read.cursors,
                }
            }
            Err(ConnectorError::Store(e)) => return Err(RunError(format!("storing records: {e}"))),
            Err(ConnectorError::Unrecorded(e)) => {
                return Err(RunError(format!("recording new credentials: {e}")));
            }
            // Recorded as the run's end, so the job is not retried: the budget is the day's.
            Err(e @ ConnectorError::BudgetExhausted(_)) => {
                tracing::info!(
                    tenant_id = %job.tenant_id, integration_id = %job.integration_id,
                    run_id = %run_id, "sync run stopped: the API budget is spent"
                );
                RunOutcome::BudgetExhausted {
                    error: e.to_string(),
                }
            }
            Err(e) => {
                tracing::info!(
                    tenant_id = %job.tenant_id, integration_id = %job.integration_id,
                    run_id = %run_id, error = %e, "sync run failed"
                );
                RunOutcome::Failed {
                    error: e.to_string(),
                }
            }
        };
        self.usage_wake.notify_one();
        let meta = CommandMeta {
            command_id: format!("sync-run-{run_id}"),
            actor: "system:sync".into(),
            correlation_id: run_id.clone(),
            occurred_at: self.clock.now(),
            traceparent: None,
            fingerprint: None,
        };
        let command = IntegrationCommand::RecordRun {
            run_id,
            mode: job.mode.as_str().into(),
            started_at,
            outcome: outcome.clone(),
        };
        if let Some(used) = tenant_bytes
            && let Err(e) = self.check_storage(job, used).await
        {
            tracing::warn!(tenant_id = %job.tenant_id, error = %e, "the storage alert is not checked");
        }
        match self.integrations.execute(&address, &command, &meta).await {
            Ok(_) => Ok(Some(outcome)),
            // Gone meanwhile: nothing to record it on.
            Err(ExecuteError::Rejected(e)) => {
                tracing::warn!(error = %e, "the run's outcome was refused");
                Ok(None)
            }
            Err(e) => Err(RunError(format!("recording the outcome: {e}"))),
        }
    }

    /// Alerts when the tenant's records (`used` bytes, as the run's last write left them)
    /// reached 80% of its plan's storage (once per plan storage size).
    async fn check_storage(&self, job: &Job, used: u64) -> Result<(), String> {
        let limit = self
            .budget
            .plans
            .limits(job.tenant_id)
            .map_or(0, |l| l.storage_bytes);
        if limit == 0 || u128::from(used) * 10 < u128::from(limit) * 8 {
            return Ok(());
        }
        alerts::raise_once_for_tenant(
            &self.pool,
            &self.integrations,
            &self.clock,
            job.tenant_id,
            job.integration_id,
            alerts::STORAGE_80,
            format!("the records take {used} of the plan's {limit} bytes of storage"),
            &limit.to_string(),
        )
        .await
    }

    /// Opens the integration's credentials.
    pub async fn credentials(
        &self,
        job: &Job,
        state: &Integration,
    ) -> Result<Credentials, ConnectorError> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(job.tenant_id)).await?;
        let credentials = self.credentials_in(&mut tx, job, state).await?;
        tx.commit().await?;
        Ok(credentials)
    }

    /// [`Runner::credentials`] in the caller's transaction, scoped to the job's tenant.
    async fn credentials_in(
        &self,
        tx: &mut PgConnection,
        job: &Job,
        state: &Integration,
    ) -> Result<Credentials, ConnectorError> {
        let Some(sealed) = &state.credentials else {
            return Ok(Credentials::new());
        };
        let plain = match self
            .keystore
            .open_in(tx, job.tenant_id, job.integration_id, &Sealed::from(sealed))
            .await
        {
            Ok(plain) => plain,
            Err(SealError::Db(e)) => return Err(ConnectorError::Store(e)),
            Err(_) => return Err(ConnectorError::Credentials),
        };
        serde_json::from_slice(&plain).map_err(|_| ConnectorError::Credentials)
    }

    /// The run's start in one transaction of the tenant's: its first call spent from the
    /// budget (refused when the day's is spent, before anything is opened) and its
    /// credentials opened.
    async fn start(
        &self,
        job: &Job,
        state: &Integration,
        meter: &Meter,
    ) -> Result<Credentials, ConnectorError> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(job.tenant_id)).await?;
        let used = meter.prepay(&mut tx).await?;
        let credentials = self.credentials_in(&mut tx, job, state).await?;
        tx.commit().await?;
        meter.spent(used).await;
        Ok(credentials)
    }

    async fn read(
        &self,
        job: &Job,
        state: &Integration,
        meter: &Meter,
    ) -> Result<Read, ConnectorError> {
        let credentials = self.start(job, state, meter).await?;
        match &state.config.source {
            Some(Source::HttpJson(c)) => {
                self.read_http_json(
                    job,
                    state,
                    c,
                    credentials.get("auth_value").map(String::as_str),
                )
                .await
            }
            Some(Source::Vtex(c)) => self.read_vtex(job, state, c, &credentials).await,
            Some(Source::GoogleAds(c)) => self.read_google_ads(job, state, c, &credentials).await,
            Some(Source::FacebookAds(c)) => {
                let token = credentials.get("access_token").map(String::as_str);
                self.read_facebook_ads(job, state, c, token.unwrap_or_default())
                    .await
            }
            Some(Source::Mercadolibre(c)) => {
                self.read_mercadolibre(job, state, c, &credentials).await
            }
            _ => Err(ConnectorError::NotBuilt(
                state.kind.map(|k| k.as_str()).unwrap_or("unknown"),
            )),
        }
    }

    /// The VTEX client for an account, with its credentials.
    pub fn vtex<'a>(&'a self, config: &VtexConfig, credentials: &'a Credentials) -> Vtex<'a> {
        let get = |name: &str| {
            credentials
                .get(name)
                .map(String::as_str)
                .unwrap_or_default()
        };
        Vtex {
            http: &self.http,
            pacing: self.pacing,
            base: vtex::base_url(&self.vtex_base, &config.account_name, &config.environment),
            app_key: get("app_key"),
            app_token: get("app_token"),
        }
    }

    async fn read_vtex(
        &self,
        job: &Job,
        state: &Integration,
        config: &VtexConfig,
        credentials: &Credentials,
    ) -> Result<Read, ConnectorError> {
        let since = resume_from(job, state, vtex::STREAM);
        let source = self.vtex(config, credentials);
        // One window for the whole run: orders created while it pages wait for the next.
        let until = self.clock.now();
        let mut progress = Progress::new(self, job, vtex::STREAM, since.clone());
        for page in 1..=self.pacing.max_pages {
            let fetched = source
                .page(page, vtex::PER_PAGE, since.as_deref(), until)
                .await?;
            if fetched.records.is_empty() {
                break;
            }
            progress
                .store(fetched.records, fetched.cursor, later_text)
                .await?;
            if page >= fetched.pages {
                break;
            }
        }
        Ok(progress.done())
    }

    /// The Google Ads client for a customer, with its credentials.
    pub fn google_ads<'a>(
        &'a self,
        config: &'a GoogleAdsConfig,
        credentials: &'a Credentials,
    ) -> GoogleAds<'a> {
        let get = |name: &str| {
            credentials
                .get(name)
                .map(String::as_str)
                .unwrap_or_default()
        };
        GoogleAds {
            http: &self.http,
            pacing: self.pacing,
            api: self.google_ads_api.trim_end_matches('/'),
            token_url: &self.google_token_url,
            customer_id: &config.customer_id,
            login_customer_id: &config.login_customer_id,
            developer_token: get("developer_token"),
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            refresh_token: get("refresh_token"),
        }
    }

    async fn read_google_ads(
        &self,
        job: &Job,
        state: &Integration,
        config: &GoogleAdsConfig,
        credentials: &Credentials,
    ) -> Result<Read, ConnectorError> {
        let since = resume_from(job, state, google_ads::STREAM);
        // The same days as Facebook's insights: from the cursor's day, or 90 days back.
        let range = facebook_ads::time_range(since.as_deref(), self.clock.now());
        let source = self.google_ads(config, credentials);
        let token = source.access_token().await?;
        let rows = match source.campaign_days(&token, range).await {
            // Expired meanwhile: one more token.
            Err(ConnectorError::Status(401)) => {
                let token = source.access_token().await?;
                source.campaign_days(&token, range).await?
            }
            other => other?,
        };
        let mut progress = Progress::new(self, job, google_ads::STREAM, since);
        progress
            .store(rows.records, rows.cursor, later_text)
            .await?;
        Ok(progress.done())
    }

    /// The Facebook Ads client for an ad account.
    pub fn facebook_ads<'a>(
        &'a self,
        config: &'a FacebookAdsConfig,
        access_token: &'a str,
    ) -> FacebookAds<'a> {
        FacebookAds {
            http: &self.http,
            pacing: self.pacing,
            graph: self.facebook_graph.trim_end_matches('/'),
            ad_account_id: &config.ad_account_id,
            access_token,
        }
    }

    async fn read_facebook_ads(
        &self,
        job: &Job,
        state: &Integration,
        config: &FacebookAdsConfig,
        access_token: &str,
    ) -> Result<Read, ConnectorError> {
        let since = resume_from(job, state, facebook_ads::STREAM);
        let range = facebook_ads::time_range(since.as_deref(), self.clock.now());
        let source = self.facebook_ads(config, access_token);
        let mut progress = Progress::new(self, job, facebook_ads::STREAM, since);
        let mut after: Option<String> = None;
        for _ in 0..self.pacing.max_pages {
            let fetched = source
                .page(range, facebook_ads::LIMIT, after.as_deref())
                .await?;
            if fetched.records.is_empty() {
                break;
            }
            progress
                .store(fetched.records, fetched.cursor, later_text)
                .await?;
            match fetched.after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(progress.done())
    }

    /// The MercadoLibre client for a seller.
    pub fn mercadolibre<'a>(&'a self, config: &'a MercadoLibreConfig) -> MercadoLibre<'a> {
        MercadoLibre {
            http: &self.http,
            pacing: self.pacing,
            api: self.mercadolibre_api.trim_end_matches('/'),
            seller_id: &config.seller_id,
        }
    }

    async fn read_mercadolibre(
        &self,
        job: &Job,
        state: &Integration,
        config: &MercadoLibreConfig,
        credentials: &Credentials,
    ) -> Result<Read, ConnectorError> {
        let get = |name: &str| credentials.get(name).cloned().unwrap_or_default();
        let mut tokens = Tokens {
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            refresh_token: get("refresh_token"),
            access_token: get("access_token"),
        };
        let since = resume_from(job, state, mercadolibre::STREAM);
        let source = self.mercadolibre(config);
        let mut progress = Progress::new(self, job, mercadolibre::STREAM, since.clone());
        let mut offset = 0u64;
        let mut refreshed = false;
        for _ in 0..self.pacing.max_pages {
            let fetched = match source
                .page(
                    &tokens.access_token,
                    offset,
                    mercadolibre::LIMIT,
                    since.as_deref(),
                )
                .await
            {
                // Expired (or never had one): refresh once per run, and keep the new pair
                // before using it.
                Err(ConnectorError::Status(401)) if !refreshed => {
                    tokens = source.refresh(&tokens).await?;
                    self.keep_tokens(job, &tokens).await?;
                    refreshed = true;
                    continue;
                }
                other => other?,
            };
            if fetched.records.is_empty() {
                break;
            }
            offset += fetched.records.len() as u64;
            progress
                .store(fetched.records, fetched.cursor, later_text)
                .await?;
            if offset >= fetched.total {
                break;
            }
        }
        Ok(progress.done())
    }

    /// Seals `tokens` as the integration's credentials and records them
    /// (`integration.credentials_replaced.v1`). A failure here is ours: the run is retried,
    /// and the refresh token it spent is lost with it (MercadoLibre's are single-use), which
    /// the next run reports as a refused refresh.
    async fn keep_tokens(&self, job: &Job, tokens: &Tokens) -> Result<(), ConnectorError> {
        let credentials = Credentials::from([
            ("client_id".to_owned(), tokens.client_id.clone()),
            ("client_secret".to_owned(), tokens.client_secret.clone()),
            ("refresh_token".to_owned(), tokens.refresh_token.clone()),
            ("access_token".to_owned(), tokens.access_token.clone()),
        ]);
        let plain = serde_json::to_vec(&credentials).map_err(|_| ConnectorError::Credentials)?;
        let sealed = match self
            .keystore
            .seal(job.tenant_id, job.integration_id, &plain)
            .await
        {
            Ok(sealed) => sealed,
            Err(SealError::Db(e)) => return Err(ConnectorError::Store(e)),
            Err(_) => return Err(ConnectorError::Credentials),
        };
        let meta = CommandMeta {
            command_id: format!("sync-tokens-{}-{}", job.run_id, Uuid::now_v7()),
            actor: "system:sync".into(),
            correlation_id: job.run_id.to_string(),
            occurred_at: self.clock.now(),
            traceparent: None,
            fingerprint: None,
        };
        let address = integration::address(job.tenant_id, job.integration_id)
            .map_err(|_| ConnectorError::Credentials)?;
        self.integrations
            .execute(
                &address,
                &IntegrationCommand::ReplaceCredentials {
                    credentials: sealed.into(),
                    names: credentials.keys().cloned().collect(),
                },
                &meta,
            )
            .await
            .map_err(|e| ConnectorError::Unrecorded(e.to_string()))?;
        Ok(())
    }

    async fn read_http_json(
        &self,
        job: &Job,
        state: &Integration,
        config: &HttpJsonConfig,
        auth_value: Option<&str>,
    ) -> Result<Read, ConnectorError> {
        let cursor = resume_from(job, state, &config.stream);
        let source = HttpJson {
            http: &self.http,
            pacing: self.pacing,
            config,
            auth_value,
        };
        let mut progress = Progress::new(self, job, &config.stream, cursor.clone());
        for page in 1..=self.pacing.max_pages {
            let fetched = source.page(page, cursor.as_deref()).await?;
            if fetched.records.is_empty() {
                break;
            }
            // A short page is the last one when the source's page size is known.
            let last = config.page_param.is_empty()
                || (config.page_size > 0 && fetched.records.len() < config.page_size as usize);
            progress
                .store(fetched.records, fetched.cursor, later)
                .await?;
            if last {
                break;
            }
        }
        Ok(progress.done())
    }
}

/// What a run read: what it wrote, its stream's cursor, and the tenant's stored bytes after
/// its last write (`None`: it wrote nothing).
pub struct Read {
    written: Written,
    cursors: BTreeMap<String, String>,
    tenant_bytes: Option<u64>,
}

/// What a run has written to its stream so far, and the furthest cursor seen (from the one
/// it resumed after): the stream's cursor once the run ends.
struct Progress<'a> {
    runner: &'a Runner,
    job: &'a Job,
    stream: &'a str,
    written: Written,
    tenant_bytes: Option<u64>,
    furthest: Option<String>,
}

impl<'a> Progress<'a> {
    fn new(runner: &'a Runner, job: &'a Job, stream: &'a str, since: Option<String>) -> Self {
        Self {
            runner,
            job,
            stream,
            written: Written::default(),
            tenant_bytes: None,
            furthest: since,
        }
    }

    /// Upserts a page's records, and keeps its cursor if `later` says it is further.
    async fn store(
        &mut self,
        records: Vec<records::Record>,
        cursor: Option<String>,
        later: fn(&str, &str) -> bool,
    ) -> Result<(), ConnectorError> {
        let (written, tenant_bytes) = records::upsert(
            &self.runner.pool,
            self.job.tenant_id,
            self.job.integration_id,
            self.stream,
            records,
            self.runner.clock.now(),
        )
        .await?;
        self.written += written;
        self.tenant_bytes = tenant_bytes.or(self.tenant_bytes);
        if let Some(c) = cursor
            && self.furthest.as_deref().is_none_or(|f| later(&c, f))
        {
            self.furthest = Some(c);
        }
        Ok(())
    }

    fn done(self) -> Read {
        let cursors = self
            .furthest
            .map(|f| BTreeMap::from([(self.stream.to_owned(), f)]))
            .unwrap_or_default();
        Read {
            written: self.written,
            cursors,
            tenant_bytes: self.tenant_bytes,
        }
    }
}

/// Where an incremental run of `stream` resumes (its saved cursor); a full run starts over.
fn resume_from(job: &Job, state: &Integration, stream: &str) -> Option<String> {
    match job.mode {
        Mode::Incremental => state.cursors.get(stream).cloned(),
        Mode::Full => None,
    }
}

/// Providers' cursors (dates and times in one format) order as text.
fn later_text(a: &str, b: &str) -> bool {
    a > b
}
