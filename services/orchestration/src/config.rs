//! The orchestration service's own settings (the shared ones are in `tenantry_kit::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct OrchestrationConfig {
    /// Address of the orchestration service's gRPC and HTTP port.
    #[arg(
        id = "orchestration-listen",
        long = "orchestration-listen",
        env = "TENANTRY_ORCHESTRATION_LISTEN",
        default_value = "127.0.0.1:7004"
    )]
    pub listen: SocketAddr,

    #[arg(
        id = "orchestration-db-schema",
        long = "orchestration-db-schema",
        env = "TENANTRY_ORCHESTRATION_DB_SCHEMA",
        default_value = "orchestration"
    )]
    pub db_schema: String,

    #[arg(
        id = "orchestration-db-role",
        long = "orchestration-db-role",
        env = "TENANTRY_ORCHESTRATION_DB_ROLE",
        default_value = "tenantry_orchestration"
    )]
    pub db_role: String,

    #[arg(
        id = "orchestration-db-max-connections",
        long = "orchestration-db-max-connections",
        env = "TENANTRY_ORCHESTRATION_DB_MAX_CONNECTIONS",
        default_value_t = 8
    )]
    pub db_max_connections: u32,

    /// File holding the 32-byte master key (base64) that wraps each tenant's data key (the
    /// data keys seal deployments' secret environment variables). Required: only
    /// `tenantry dev` generates one when unset (`.tenantry/dev/orchestration-master.key`).
    #[arg(
        id = "orchestration-master-key-file",
        long = "orchestration-master-key-file",
        env = "TENANTRY_ORCHESTRATION_MASTER_KEY_FILE"
    )]
    pub master_key_file: Option<PathBuf>,

    /// Files holding earlier master keys, comma-separated: data keys still wrapped by one of
    /// them open, and are re-wrapped under the current master key at start (rotation).
    #[arg(
        id = "orchestration-previous-master-key-files",
        long = "orchestration-previous-master-key-files",
        env = "TENANTRY_ORCHESTRATION_PREVIOUS_MASTER_KEY_FILES",
        value_delimiter = ','
    )]
    pub previous_master_key_files: Vec<PathBuf>,

    /// Where the process runtime keeps a record of each instance it runs (to adopt them after
    /// a restart) and their output. Default: `$XDG_DATA_HOME/tenantry/orchestration` or
    /// `~/.local/share/tenantry/orchestration`.
    #[arg(
        id = "orchestration-state-dir",
        long = "orchestration-state-dir",
        env = "TENANTRY_ORCHESTRATION_STATE_DIR"
    )]
    pub state_dir: Option<PathBuf>,

    /// The programs the process runtime may run, as `name=program arg…` (`{port}` in an
    /// argument is the instance's port); a spec's `image` names one. Separate entries with `;`.
    /// Empty: nothing can be provisioned on the process runtime.
    #[arg(
        id = "orchestration-process-image",
        long = "orchestration-process-image",
        env = "TENANTRY_ORCHESTRATION_PROCESS_IMAGES",
        value_delimiter = ';'
    )]
    pub process_images: Vec<String>,

    /// Enables the `kubernetes` runtime: `in-cluster` (the pod's service account) or the path
    /// of a kubeconfig (its current context). Unset: a spec naming `kubernetes` is refused.
    #[arg(
        id = "orchestration-kubernetes",
        long = "orchestration-kubernetes",
        env = "TENANTRY_ORCHESTRATION_KUBERNETES"
    )]
    pub kubernetes: Option<String>,

    /// The gateway's namespace in the cluster: tenants' NetworkPolicies admit only it.
    #[arg(
        id = "orchestration-kubernetes-gateway-namespace",
        long = "orchestration-kubernetes-gateway-namespace",
        env = "TENANTRY_ORCHESTRATION_KUBERNETES_GATEWAY_NAMESPACE",
        default_value = "tenantry"
    )]
    pub kubernetes_gateway_namespace: String,

    /// The gateway pods' labels, as `key=value` (separate several with `,`).
    #[arg(
        id = "orchestration-kubernetes-gateway-pods",
        long = "orchestration-kubernetes-gateway-pods",
        env = "TENANTRY_ORCHESTRATION_KUBERNETES_GATEWAY_PODS",
        value_delimiter = ',',
        default_value = "app.kubernetes.io/name=tenantry-gateway"
    )]
    pub kubernetes_gateway_pods: Vec<String>,

    /// How often the reconciler compares the log with what runs.
    #[arg(
        id = "orchestration-reconcile-interval-ms",
        long = "orchestration-reconcile-interval-ms",
        env = "TENANTRY_ORCHESTRATION_RECONCILE_INTERVAL_MS",
        default_value_t = 500
    )]
    pub reconcile_interval_ms: u64,

    /// How long an instance may take to finish after SIGTERM before it is killed.
    #[arg(
        id = "orchestration-drain-grace-ms",
        long = "orchestration-drain-grace-ms",
        env = "TENANTRY_ORCHESTRATION_DRAIN_GRACE_MS",
        default_value_t = 10_000
    )]
    pub drain_grace_ms: u64,

    /// Between an instance's `pod.draining` on the log (gateways take it out of their
    /// rotation) and its SIGTERM: long enough for every gateway to apply the event and for the
    /// requests it sent before to finish.
    #[arg(
        id = "orchestration-deregister-delay-ms",
        long = "orchestration-deregister-delay-ms",
        env = "TENANTRY_ORCHESTRATION_DEREGISTER_DELAY_MS",
        default_value_t = 3_000
    )]
    pub deregister_delay_ms: u64,

    /// How often the autoscaler measures its deployments' instances' CPU.
    #[arg(
        id = "orchestration-autoscale-sample-ms",
        long = "orchestration-autoscale-sample-ms",
        env = "TENANTRY_ORCHESTRATION_AUTOSCALE_SAMPLE_MS",
        default_value_t = 2_000
    )]
    pub autoscale_sample_ms: u64,

    /// How long the average CPU must stay above the target before one instance is added.
    #[arg(
        id = "orchestration-autoscale-up-window-ms",
        long = "orchestration-autoscale-up-window-ms",
        env = "TENANTRY_ORCHESTRATION_AUTOSCALE_UP_WINDOW_MS",
        default_value_t = 30_000
    )]
    pub autoscale_up_window_ms: u64,

    /// How long the average CPU must stay below the target before instances are removed
    /// (Kubernetes' HPA waits 5 minutes too, so a short lull does not flap).
    #[arg(
        id = "orchestration-autoscale-down-window-ms",
        long = "orchestration-autoscale-down-window-ms",
        env = "TENANTRY_ORCHESTRATION_AUTOSCALE_DOWN_WINDOW_MS",
        default_value_t = 300_000
    )]
    pub autoscale_down_window_ms: u64,

    /// How often tenants' instance time is reported to the `USAGE` stream.
    #[arg(
        id = "orchestration-usage-interval-ms",
        long = "orchestration-usage-interval-ms",
        env = "TENANTRY_ORCHESTRATION_USAGE_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub usage_interval_ms: u64,

    /// Instance time per unit of the `instance_hours` meter: 3600 (an hour, billing's unit);
    /// a tenant's time below a unit is carried to its next report. Tests use 1 (seconds).
    #[arg(
        id = "orchestration-usage-unit-seconds",
        long = "orchestration-usage-unit-seconds",
        env = "TENANTRY_ORCHESTRATION_USAGE_UNIT_SECONDS",
        default_value_t = 3_600
    )]
    pub usage_unit_seconds: u64,
}

impl OrchestrationConfig {
    /// The defaults on an ephemeral loopback port, with records in `state_dir` and the
    /// process catalog `images` (tests). A master key is generated beside `state_dir`
    /// (`orchestration-master.key`) if there is none; panics if it cannot be written.
    pub fn ephemeral(state_dir: PathBuf, images: Vec<String>) -> Self {
        let master_key_file = state_dir
            .parent()
            .unwrap_or(&state_dir)
            .join("orchestration-master.key");
        tenantry_kit::seal::master::create_if_missing(&master_key_file)
            .expect("a test master key beside the state directory");
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_schema: "orchestration".into(),
            db_role: "tenantry_orchestration".into(),
            db_max_connections: 8,
            master_key_file: Some(master_key_file),
            previous_master_key_files: Vec::new(),
            state_dir: Some(state_dir),
            process_images: images,
            reconcile_interval_ms: 100,
            drain_grace_ms: 2_000,
            deregister_delay_ms: 500,
            autoscale_sample_ms: 200,
            autoscale_up_window_ms: 1_000,
            autoscale_down_window_ms: 1_500,
            usage_interval_ms: 200,
            usage_unit_seconds: 1,
            kubernetes: None,
            kubernetes_gateway_namespace: "tenantry".into(),
            kubernetes_gateway_pods: vec!["app.kubernetes.io/name=tenantry-gateway".into()],
        }
    }

    /// The Kubernetes runtime's settings (the gateway's labels parsed).
    pub fn kubernetes_settings(&self) -> Result<crate::runtime::kubernetes::Settings, String> {
        let mut labels = std::collections::BTreeMap::new();
        for pair in self
            .kubernetes_gateway_pods
            .iter()
            .filter(|p| !p.trim().is_empty())
        {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                format!("orchestration-kubernetes-gateway-pods: {pair:?} is not key=value")
            })?;
            labels.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Ok(crate::runtime::kubernetes::Settings {
            gateway_namespace: self.kubernetes_gateway_namespace.clone(),
            gateway_pod_labels: labels,
            termination_grace_seconds: i64::try_from(self.drain_grace_ms.div_ceil(1000))
                .unwrap_or(i64::MAX),
        })
    }

    /// The state directory, or the default one.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.state_dir.clone().or_else(|| {
            let data = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
                Some(dir) => PathBuf::from(dir),
                None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
            };
            Some(data.join("tenantry").join("orchestration"))
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        orchestration: OrchestrationConfig,
    }

    #[test]
    fn the_kubernetes_runtime_is_off_by_default_and_its_gateway_labels_parse() {
        Cli::command().debug_assert();
        let off = Cli::parse_from(["tenantry"]).orchestration;
        assert_eq!(off.kubernetes, None);
        assert_eq!(off.kubernetes_settings().unwrap(), Default::default());
        let on = Cli::parse_from([
            "tenantry",
            "--orchestration-kubernetes",
            "in-cluster",
            "--orchestration-kubernetes-gateway-pods",
            "app=gw,tier=edge",
        ])
        .orchestration;
        assert_eq!(on.kubernetes.as_deref(), Some("in-cluster"));
        let labels = on.kubernetes_settings().unwrap().gateway_pod_labels;
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["tier"], "edge");
        let bad = Cli::parse_from([
            "tenantry",
            "--orchestration-kubernetes-gateway-pods",
            "no-equals",
        ]);
        assert!(bad.orchestration.kubernetes_settings().is_err());
    }
}
