//! The workspace's shape: services are independent. A service crate depends on shared crates
//! (kit, eventstore, contracts, proto) only, never on another service, so each can be built,
//! deployed and changed alone; what they share travels as events and gRPC.

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn no_service_crate_depends_on_another_service_crate() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let in_services = |p: &serde_json::Value| {
        p["manifest_path"]
            .as_str()
            .is_some_and(|m| m.contains("/services/"))
    };
    let services: BTreeSet<&str> = packages
        .iter()
        .filter(|p| in_services(p))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(services.len() >= 3, "the services are found: {services:?}");
    let mut offending = Vec::new();
    for package in packages.iter().filter(|p| in_services(p)) {
        let name = package["name"].as_str().unwrap();
        // Every kind: normal, dev and build dependencies.
        for dependency in package["dependencies"].as_array().unwrap() {
            let dependency = dependency["name"].as_str().unwrap();
            if dependency != name && services.contains(dependency) {
                offending.push(format!("{name} -> {dependency}"));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "service crates depending on service crates: {offending:?}"
    );
}
