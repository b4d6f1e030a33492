//! Secret environment variables: sealed with the kit's keystore under the tenant's data key
//! (orchestration's own, in its schema), each bound to the tenant, the deployment and the
//! variable's name, so a sealed value copied to another deployment or another name does not
//! open. The clear values exist only in the request that gives them and in the reconciler
//! while it starts instances; the log carries them sealed, API answers without ciphertext.

use std::collections::{BTreeMap, HashMap};

use tenantry_kit::ApiError;
use tenantry_kit::seal::{Keystore, SealError, Sealed};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

/// The purpose of orchestration's sealed secrets (first in their associated data).
pub const PURPOSE: &str = "tenantry.orchestration.secret_env.v1";

fn binding<'a>(deployment: &'a Uuid, name: &'a str) -> [&'a [u8]; 2] {
    [deployment.as_bytes(), name.as_bytes()]
}

/// `current` with `changes` applied: each named value sealed, "" removing the variable.
pub async fn apply(
    keystore: &Keystore,
    tenant: Uuid,
    deployment: Uuid,
    changes: &HashMap<String, String>,
    mut current: HashMap<String, pb::SealedSecret>,
) -> Result<HashMap<String, pb::SealedSecret>, ApiError> {
    for (name, value) in changes {
        if value.is_empty() {
            current.remove(name);
            continue;
        }
        let sealed = keystore
            .seal_bound(tenant, &binding(&deployment, name), value.as_bytes())
            .await
            .map_err(|e| ApiError::Internal(format!("sealing {name}: {e}")))?;
        current.insert(name.clone(), sealed.into());
    }
    Ok(current)
}

/// Every secret variable of `spec`, opened (name → value).
pub async fn open_all(
    keystore: &Keystore,
    tenant: Uuid,
    deployment: Uuid,
    spec: &pb::DeploymentSpec,
) -> Result<BTreeMap<String, String>, SealError> {
    let mut opened = BTreeMap::new();
    for (name, sealed) in &spec.secret_env {
        let plain = keystore
            .open_bound(tenant, &binding(&deployment, name), &Sealed::from(sealed))
            .await?;
        let value = String::from_utf8(plain).map_err(|_| SealError::Open)?;
        opened.insert(name.clone(), value);
    }
    Ok(opened)
}

/// The spec as API answers show it: secret variables by name, without their ciphertext.
pub fn redacted(mut spec: pb::DeploymentSpec) -> pb::DeploymentSpec {
    for sealed in spec.secret_env.values_mut() {
        sealed.ciphertext.clear();
    }
    spec
}
