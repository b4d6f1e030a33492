//! The NATS users and permissions are one file, `deploy/nats/accounts.conf` (ADR 0009), used by
//! every installation: `scripts/infra-up.sh` (development and tests), docker-compose.yml, and
//! deploy/k8s/nats.yaml, which must carry a copy (kustomize reads no file outside its folder).
//! These checks keep the copies and the lists of users from drifting apart. Services' own
//! credentials for calling each other (ADR 0011) are checked here too, beside the passwords.

use std::path::Path;

use tenantry_kit::service::Service;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The users `accounts.conf` defines, in order.
fn users() -> Vec<String> {
    read("deploy/nats/accounts.conf")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("{ user: "))
        .map(|rest| rest.split(',').next().unwrap().trim().to_owned())
        .collect()
}

/// The text of `key: |` in a YAML document, its indentation removed.
fn yaml_block(yaml: &str, key: &str) -> String {
    let start = format!("  {key}: |");
    let mut lines = yaml.lines().skip_while(|l| *l != start).skip(1);
    let mut block = String::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            block.push('\n');
        } else if let Some(text) = line.strip_prefix("    ") {
            block.push_str(text);
            block.push('\n');
        } else {
            break;
        }
    }
    assert!(!block.is_empty(), "{key} is in the YAML");
    block
}

#[test]
fn every_service_has_a_nats_user_and_anonymous_access_is_off() {
    let users = users();
    assert_eq!(users.first().map(String::as_str), Some("operator"));
    for service in [
        tenantry_tenant::TenantService::NAME,
        tenantry_auth::AuthService::NAME,
        tenantry_gateway::GatewayService::NAME,
        tenantry_billing::BillingService::NAME,
    ] {
        assert!(
            users.iter().any(|u| u == service),
            "accounts.conf has a user for the {service} service: {users:?}"
        );
    }
    let accounts = read("deploy/nats/accounts.conf");
    assert!(
        !accounts.contains("no_auth_user"),
        "no user is given to clients that bring none"
    );
    for user in &users {
        let password = format!("password: $TENANTRY_NATS_{}_PASSWORD", user.to_uppercase());
        assert!(
            accounts.contains(&password),
            "{user}'s password comes from the environment"
        );
    }
}

#[test]
fn kubernetes_carries_the_same_users_and_permissions() {
    let k8s = read("deploy/k8s/nats.yaml");
    assert_eq!(
        yaml_block(&k8s, "accounts.conf"),
        read("deploy/nats/accounts.conf"),
        "deploy/k8s/nats.yaml's accounts.conf is a copy of deploy/nats/accounts.conf"
    );
    assert!(yaml_block(&k8s, "nats.conf").contains("\ninclude accounts.conf\n"));
    let secret = read("deploy/k8s/secret.example.yaml");
    for user in users() {
        let env = format!("- name: TENANTRY_NATS_{}_PASSWORD", user.to_uppercase());
        assert!(k8s.contains(&env), "the NATS pods get {user}'s password");
        let key = format!("{user}-password");
        assert!(
            k8s.contains(&format!("key: {key}")),
            "from the Secret key {key}"
        );
        assert!(
            secret.contains(&format!("  {key}: ")),
            "secret.example.yaml has {key}"
        );
    }
    for service in ["tenant", "auth", "gateway", "billing"] {
        let manifest = read(&format!("deploy/k8s/{service}.yaml"));
        assert!(manifest.contains("TENANTRY_NATS_CREDENTIALS_DIR"));
        assert!(
            manifest.contains(&format!("- key: {service}-password\n"))
                && manifest.contains(&format!("path: {service}.password\n")),
            "{service} mounts its own NATS password"
        );
    }
}

#[test]
fn compose_and_infra_up_use_the_same_users() {
    let users = users();
    let compose = read("docker-compose.yml");
    assert!(compose.contains("./deploy/nats/accounts.conf:/etc/nats/accounts.conf:ro"));
    assert!(read("deploy/compose/nats.conf").contains("\ninclude accounts.conf\n"));
    let infra = read("scripts/infra-up.sh");
    let listed = format!("NATS_USERS=\"{}\"", users.join(" "));
    assert!(infra.contains(&listed), "infra-up.sh has {listed}");
    assert!(
        compose.contains(&format!("for user in {}; do", users.join(" "))),
        "the compose NATS reads every user's password"
    );
    for service in ["tenant", "auth", "gateway", "billing"] {
        let mount =
            format!("./.tenantry/nats/{service}.password:/run/tenantry-nats/{service}.password:ro");
        assert!(
            compose.contains(&mount),
            "{service} mounts only its own password"
        );
    }
}

/// Billing's own credential for the tenant service (ADR 0011): a key of the service-credentials
/// Secret, mounted only into billing, named by its setting, and documented with the CLI.
#[test]
fn kubernetes_gives_billing_its_own_service_credential() {
    let billing = read("deploy/k8s/billing.yaml");
    assert!(billing.contains("secretName: tenantry-service-credentials\n"));
    assert!(
        billing.contains("- key: billing-credential\n")
            && billing.contains("path: billing.credential\n")
    );
    assert!(billing.contains(
        "- name: TENANTRY_BILLING_CREDENTIAL_FILE\n              value: /run/secrets/tenantry/billing.credential\n"
    ));
    for other in ["tenant", "auth", "gateway"] {
        let manifest = read(&format!("deploy/k8s/{other}.yaml"));
        assert!(
            !manifest.contains("tenantry-service-credentials"),
            "{other} does not mount billing's credential"
        );
    }
    let secret = read("deploy/k8s/secret.example.yaml");
    assert!(secret.contains("  billing-credential: "));
    assert!(secret.contains("tenantry auth create-api-key"));
}
