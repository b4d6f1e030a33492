//! Billing's own credential in development (ADR 0011): the platform service account
//! `billing` and an API key of it, in `.tenantry/dev/billing.credential` (owner-only).
//!
//! Made through the auth service's API, as the development admin, the way an operator makes
//! one with `tenantry auth create-service-account --platform` (deploy/k8s/secret.example.yaml).
//! A key file that still works is reused; one whose key was revoked, or made for an event log
//! that is gone, is replaced.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tenantry_auth::crypto::secret_file;
use tenantry_billing::BillingConfig;
use tenantry_proto::auth::v1::{
    self as api, service_account_service_client::ServiceAccountServiceClient,
    session_service_client::SessionServiceClient,
};
use tonic::Code;
use tonic::transport::Channel;

/// The platform service account billing calls the tenant service as.
pub const ACCOUNT: &str = "billing";
/// Where `tenantry dev` keeps billing's key, beside the master key and the admin's password.
pub const FILE: &str = ".tenantry/dev/billing.credential";
/// The name of the keys `tenantry dev` makes, so a listing tells them from an operator's.
const KEY_NAME: &str = "tenantry dev";

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The key in the file still works.
    Reused,
    /// A new key was made and written.
    Created,
}

/// Gives billing a credential unless the operator named one (`TENANTRY_BILLING_CREDENTIAL_FILE`),
/// made as the platform admin `admin` (e-mail, password file) through the auth service at
/// `auth_url`; answers the line `tenantry dev` prints about it. Without one billing still
/// starts, and warns that tenants past due are not suspended.
pub async fn give_billing(
    billing: &mut BillingConfig,
    auth_url: String,
    admin: Option<(&str, &Path)>,
) -> String {
    if let Some(file) = &billing.credential_file {
        return format!(
            "calls the tenant service with the credential in {} (TENANTRY_BILLING_CREDENTIAL_FILE)",
            file.display()
        );
    }
    let Some((email, password_file)) = admin else {
        return "has no credential (no bootstrap admin password file to make one with): \
                tenants past due will not be suspended"
            .into();
    };
    let path = PathBuf::from(FILE);
    let made = async { ensure(channel(auth_url).await?, email, password_file, &path).await };
    match made.await {
        Ok(outcome) => {
            billing.credential_file = Some(path.clone());
            format!(
                "calls the tenant service as platform service account `{ACCOUNT}` (API key in {}, {})",
                path.display(),
                match outcome {
                    Outcome::Reused => "reused",
                    Outcome::Created => "just made",
                }
            )
        }
        Err(e) => {
            format!("has no credential ({e:#}): tenants past due will not be suspended")
        }
    }
}

/// A channel to the auth service at `url`.
pub async fn channel(url: String) -> anyhow::Result<Channel> {
    tonic::transport::Endpoint::from_shared(url.clone())?
        .connect()
        .await
        .with_context(|| format!("connect to the auth service at {url}"))
}

/// Makes sure `path` holds a live API key of the platform service account [`ACCOUNT`],
/// creating the account (as the platform admin `email` whose password is in
/// `password_file`) and a key if needed.
pub async fn ensure(
    auth: Channel,
    email: &str,
    password_file: &Path,
    path: &Path,
) -> anyhow::Result<Outcome> {
    let mut accounts = ServiceAccountServiceClient::new(auth.clone());
    if path.exists() {
        secret_file::restrict(path).with_context(|| format!("chmod {}", path.display()))?;
        let key =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        // Listing the platform's accounts takes a live platform key: the file's own test.
        let probe = with_token(
            api::ListServiceAccountsRequest { platform: true },
            key.trim(),
        )?;
        match accounts.list_service_accounts(probe).await {
            Ok(_) => return Ok(Outcome::Reused),
            Err(s) if s.code() == Code::Unauthenticated => {}
            Err(s) => bail!("checking {}: {}: {}", path.display(), s.code(), s.message()),
        }
    }

    let password = std::fs::read_to_string(password_file)
        .with_context(|| format!("read {}", password_file.display()))?;
    let mut sessions = SessionServiceClient::new(auth);
    let session = sessions
        .login(api::LoginRequest {
            email: email.to_owned(),
            password: password.trim_end_matches(['\n', '\r']).to_owned(),
            tenant_id: String::new(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("log in as {email}: {}: {}", s.code(), s.message()))?
        .into_inner();
    if !session.platform_admin {
        bail!("{email} is not a platform admin");
    }
    let made = make_key(&mut accounts, &session.access_token).await;
    // The session was only for this: end it whatever happened.
    let _ = sessions
        .logout(api::LogoutRequest {
            refresh_token: session.refresh_token,
        })
        .await;
    write_private(path, made?.as_bytes())?;
    Ok(Outcome::Created)
}

/// A new key of [`ACCOUNT`], creating the account if the platform has none of that name.
async fn make_key(
    accounts: &mut ServiceAccountServiceClient<Channel>,
    token: &str,
) -> anyhow::Result<String> {
    let account_id =
        match find_account(accounts, token).await? {
            Some(id) => id,
            None => {
                let created = accounts
                    .create_service_account(with_token(
                        api::CreateServiceAccountRequest {
                            name: ACCOUNT.into(),
                            platform: true,
                            ..Default::default()
                        },
                        token,
                    )?)
                    .await;
                match created {
                    Ok(r) => r
                        .into_inner()
                        .service_account
                        .map(|a| a.service_account_id)
                        .context("no service account in the answer")?,
                    // Another `tenantry dev` on the same log got there first.
                    Err(s) if s.code() == Code::AlreadyExists => find_account(accounts, token)
                        .await?
                        .context("the billing account exists but is not listed")?,
                    Err(s) => bail!(
                        "create the {ACCOUNT} account: {}: {}",
                        s.code(),
                        s.message()
                    ),
                }
            }
        };
    let key = accounts
        .create_api_key(with_token(
            api::CreateApiKeyRequest {
                service_account_id: account_id,
                name: KEY_NAME.into(),
                platform: true,
            },
            token,
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("create a key for {ACCOUNT}: {}: {}", s.code(), s.message()))?
        .into_inner();
    Ok(key.api_key)
}

async fn find_account(
    accounts: &mut ServiceAccountServiceClient<Channel>,
    token: &str,
) -> anyhow::Result<Option<String>> {
    let listed = accounts
        .list_service_accounts(with_token(
            api::ListServiceAccountsRequest { platform: true },
            token,
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("list platform accounts: {}: {}", s.code(), s.message()))?
        .into_inner();
    Ok(listed
        .service_accounts
        .into_iter()
        .find(|a| a.name == ACCOUNT)
        .map(|a| a.service_account_id))
}

fn with_token<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .context("the credential is not a header value")?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// Replaces `path` with `contents`, owner-only from the start: written beside it, then
/// renamed over it, so billing never reads half a key.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let fresh = path.with_extension("new");
    match std::fs::remove_file(&fresh) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("remove {}", fresh.display()));
        }
        _ => {}
    }
    secret_file::create_private(&fresh, contents)
        .with_context(|| format!("write {}", fresh.display()))?;
    std::fs::rename(&fresh, path).with_context(|| format!("write {}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use tenantry_auth::{AuthConfig, AuthService};
    use tenantry_kit::service::Service;
    use tenantry_proto::auth::v1::key_service_client::KeyServiceClient;
    use tenantry_testkit::TestEnv;

    use super::*;

    const ADMIN: &str = "root@tenantry.test";

    /// Whether `key` acts as a platform admin (`ListSigningKeys` is platform_admin only).
    async fn is_platform_admin(auth: &Channel, key: &str) -> bool {
        KeyServiceClient::new(auth.clone())
            .list_signing_keys(with_token(api::ListSigningKeysRequest {}, key).unwrap())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn billings_key_is_made_once_reused_and_replaced_when_revoked() {
        let env = TestEnv::new().await;
        let dir = std::env::temp_dir().join(&env.id);
        std::fs::create_dir_all(&dir).unwrap();
        let master = dir.join("master.key");
        std::fs::write(&master, "B2kq3G8p0xZl9Yb2gV7m1Q5sR4tU6wXyZaBcDeFgHiI=").unwrap();
        let password = dir.join("admin.password");
        std::fs::write(&password, "bootstrap-admin-passphrase\n").unwrap();
        let mut config = AuthConfig::ephemeral(master);
        config.bootstrap_admin_email = Some(ADMIN.into());
        config.bootstrap_admin_password_file = Some(password.clone());
        let svc = env.start(AuthService::new(config)).await;
        let auth = channel(format!("http://{}", svc.addr)).await.unwrap();
        let path = dir.join("dev/billing.credential");

        let first = ensure(auth.clone(), ADMIN, &password, &path).await.unwrap();
        assert_eq!(first, Outcome::Created);
        let key = std::fs::read_to_string(&path).unwrap();
        assert!(key.starts_with("tk_"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let known =
            tenantry_testkit::eventually("the key is known", Duration::from_secs(2), || {
                let (auth, key) = (auth.clone(), key.clone());
                async move { is_platform_admin(&auth, &key).await.then_some(()) }
            });
        known.await;

        // Started again: the same key.
        let again = ensure(auth.clone(), ADMIN, &password, &path).await.unwrap();
        assert_eq!(again, Outcome::Reused);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), key);

        // Revoked (by an operator, say): a new key of the same account replaces it.
        let admin = SessionServiceClient::new(auth.clone())
            .login(api::LoginRequest {
                email: ADMIN.into(),
                password: "bootstrap-admin-passphrase".into(),
                tenant_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .access_token;
        let mut accounts = ServiceAccountServiceClient::new(auth.clone());
        let keys = accounts
            .list_api_keys(
                with_token(
                    api::ListApiKeysRequest {
                        prefix: String::new(),
                        platform: true,
                    },
                    &admin,
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner()
            .api_keys;
        assert_eq!(keys.len(), 1);
        accounts
            .revoke_api_key(
                with_token(
                    api::RevokeApiKeyRequest {
                        key_id: keys[0].key_id.clone(),
                        platform: true,
                    },
                    &admin,
                )
                .unwrap(),
            )
            .await
            .unwrap();
        tenantry_testkit::eventually("the key is refused", Duration::from_secs(2), || {
            let (auth, key) = (auth.clone(), key.clone());
            async move { (!is_platform_admin(&auth, &key).await).then_some(()) }
        })
        .await;
        let replaced = ensure(auth.clone(), ADMIN, &password, &path).await.unwrap();
        assert_eq!(replaced, Outcome::Created);
        let new_key = std::fs::read_to_string(&path).unwrap();
        assert_ne!(new_key, key);
        let listed = accounts
            .list_service_accounts(
                with_token(api::ListServiceAccountsRequest { platform: true }, &admin).unwrap(),
            )
            .await
            .unwrap()
            .into_inner()
            .service_accounts;
        assert_eq!(
            listed.iter().filter(|a| a.name == ACCOUNT).count(),
            1,
            "one billing account, reused"
        );
    }
}
