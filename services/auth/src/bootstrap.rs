//! The first platform admin, from start-up settings: created if no account has the e-mail,
//! granted platform admin if it exists. Idempotent, so every replica may run it.

use tenantry_kit::ApiError;
use uuid::Uuid;

use crate::api::session::check_email;
use crate::api::{AuthApi, credential_address, user_address};
use crate::crypto::password;
use crate::domain::credential::CredentialCommand;
use crate::domain::user::UserCommand;

pub async fn ensure_admin(
    api: &AuthApi,
    email: &str,
    password_text: &str,
) -> Result<Uuid, ApiError> {
    check_email("bootstrap_admin_email", email)?;
    let address = credential_address(email)?;
    let (credential, _) = api.credentials.load(&address).await?;
    let user_id = match credential.user_id {
        Some(id) => id,
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
