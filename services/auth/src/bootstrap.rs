//! The first platform admin, from start-up settings: created if no account has the e-mail,
//! granted platform admin if it exists and the configured password is its password.
//! Idempotent, so every replica may run it.
//!
//! Anyone may sign up with any address, so an existing account with the admin's e-mail
//! proves nothing: it may be a stranger's who got there first. Only a credential that
//! verifies against the configured password is promoted; otherwise the service refuses to
//! start, and says why.

use tenantry_kit::ApiError;
use uuid::Uuid;

use crate::api::{AuthApi, credential_address, user_address};
use crate::crypto::password;
use crate::domain::credential::CredentialCommand;
use crate::domain::user::UserCommand;
use tenantry_kit::validate;

pub async fn ensure_admin(
    api: &AuthApi,
    email: &str,
    password_text: &str,
) -> Result<Uuid, ApiError> {
    validate::email("bootstrap_admin_email", email)?;
    let address = credential_address(email)?;
    let (credential, _) = api.credentials.load(&address).await?;
    let user_id = match credential.user_id {
        Some(id) => {
            let phc = password::open_hash(&api.sealer, id, &credential.password)?;
            if !password::verify(password_text.to_owned(), phc).await {
                return Err(ApiError::FailedPrecondition(format!(
                    "auth-bootstrap-admin-email: an account for {email} exists and the \
                     bootstrap password (auth-bootstrap-admin-password-file) is not its \
                     password; refusing to make it platform admin. Configure that account's \
                     password if it is yours, or another e-mail"
                )));
            }
            id
        }
        None => {
            password::check_policy(password_text, email)
                .map_err(|e| ApiError::invalid("bootstrap_admin_password", e.to_string()))?;
            let id = Uuid::now_v7();
            let meta = api.public_meta("bootstrap");
            api.users
                .execute_new(
                    &user_address(id)?,
                    &UserCommand::Register {
                        id,
                        issuer: api.local_issuer.clone(),
                        subject: id.to_string(),
                        email: email.to_owned(),
                    },
                    &meta,
                )
                .await?;
            let sealed = password::seal_hash(
                &api.sealer,
                id,
                &password::hash(password_text.to_owned()).await?,
            );
            api.credentials
                .execute_new(
                    &address,
                    &CredentialCommand::Create {
                        user_id: id,
                        email: email.to_owned(),
                        password_hash_sealed: sealed,
                    },
                    &api.public_meta("bootstrap"),
                )
                .await?;
            id
        }
    };
    api.users
        .execute(
            &user_address(user_id)?,
            &UserCommand::GrantPlatformAdmin,
            &api.public_meta("bootstrap"),
        )
        .await?;
    tracing::info!(%user_id, "bootstrap platform admin ready");
    Ok(user_id)
}
