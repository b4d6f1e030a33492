//! Issue 17, item 18: the master key made up at start, and development secrets readable by
//! every local user.

/// Without a configured master key the service made one up in the working directory: a
/// production replica started so would seal signing keys under a key nobody backs up, and
/// each replica under its own.
#[tokio::test]
async fn attack_auth_without_a_master_key_makes_one_up() {
    let env = tenantry_testkit::TestEnv::new().await;
    let mut config = crate::common::config(&env);
    config.master_key_file = None;
    let started = env
        .try_start_with(
            &env.common(),
            <tenantry_auth::AuthService as tenantry_kit::service::Service>::new(config),
        )
        .await;
    let Err(e) = started else {
        panic!("started with a master key it generated itself");
    };
    assert!(e.to_string().contains("auth-master-key-file"), "{e}");
}

/// The development master key and admin password were readable by every local user.
#[cfg(unix)]
#[test]
fn attack_dev_master_key_is_readable_by_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("devkey-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join(".tenantry/dev/master.key");
    tenantry_auth::crypto::seal::Sealer::from_file(&path, true).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(mode & 0o077, 0, "master key mode {mode:o}");
}
