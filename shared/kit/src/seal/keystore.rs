//! The tenants' data keys, wrapped, in the service's own Postgres schema (`data_keys`, under
//! forced RLS), and sealing and opening secrets with them.
//!
//! Unwrapped data keys live only for the duration of one call: nothing caches them, so a
//! shredded key stops opening anything at once, in every replica.

use std::sync::Arc;

use crate::db::{Scope, scoped_tx};
use sqlx::PgPool;
use uuid::Uuid;

use super::aead::{Key, associated, random};
use super::master::{MasterKeys, Wrapped};
use super::{SealError, Sealed};

/// Seals and opens one kind of secret (its purpose) with each tenant's data key.
#[derive(Clone)]
pub struct Keystore {
    pool: PgPool,
    master: Arc<MasterKeys>,
    /// The label of what it seals, first in every secret's associated data (sync's
    /// credentials: `tenantry.sync.credential.v1`), so a secret of one kind never opens as
    /// another.
    purpose: &'static str,
}

/// What a sealed secret is bound to: the purpose, the tenant, what it belongs to (an
/// integration, a deployment and a variable's name…) and the key version.
fn secret_aad(purpose: &str, tenant: Uuid, binding: &[&[u8]], version: u32) -> Vec<u8> {
    let version = version.to_be_bytes();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(binding.len() + 2);
    parts.push(tenant.as_bytes());
    parts.extend_from_slice(binding);
    parts.push(&version);
    associated(purpose, &parts)
}

fn version_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl Keystore {
    pub fn new(pool: PgPool, master: Arc<MasterKeys>, purpose: &'static str) -> Self {
        Self {
            pool,
            master,
            purpose,
        }
    }

    /// Seals `plaintext` for `tenant`'s `owner` (an integration, a deployment) under the
    /// tenant's newest data key (made on first use).
    pub async fn seal(
        &self,
        tenant: Uuid,
        owner: Uuid,
        plaintext: &[u8],
    ) -> Result<Sealed, SealError> {
        self.seal_bound(tenant, &[owner.as_bytes()], plaintext)
            .await
    }

    /// Opens what [`Keystore::seal`] sealed for the same tenant and owner.
    pub async fn open(
        &self,
        tenant: Uuid,
        owner: Uuid,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SealError> {
        self.open_bound(tenant, &[owner.as_bytes()], sealed).await
    }

    /// [`Keystore::open`] inside the caller's transaction, already scoped to `tenant`.
    pub async fn open_in(
        &self,
        tx: &mut sqlx::PgConnection,
        tenant: Uuid,
        owner: Uuid,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SealError> {
        self.open_bound_in(tx, tenant, &[owner.as_bytes()], sealed)
            .await
    }

    /// Seals `plaintext` bound to `tenant` and every part of `binding`: it opens only
    /// for the same tenant and the same parts, in order.
    pub async fn seal_bound(
        &self,
        tenant: Uuid,
        binding: &[&[u8]],
        plaintext: &[u8],
    ) -> Result<Sealed, SealError> {
        let (version, key) = self.current(tenant).await?;
        Ok(Sealed {
            key_version: version,
            ciphertext: key.seal(
                &secret_aad(self.purpose, tenant, binding, version),
                plaintext,
            ),
        })
    }

    /// Opens what [`Keystore::seal_bound`] sealed with the same tenant and binding.
    pub async fn open_bound(
        &self,
        tenant: Uuid,
        binding: &[&[u8]],
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SealError> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant)).await?;
        let plain = self.open_bound_in(&mut tx, tenant, binding, sealed).await?;
        tx.commit().await?;
        Ok(plain)
    }

    /// [`Keystore::open_bound`] inside the caller's transaction, already scoped to `tenant`
    /// (a caller with more to do in the tenant's rows saves a transaction).
    pub async fn open_bound_in(
        &self,
        tx: &mut sqlx::PgConnection,
        tenant: Uuid,
        binding: &[&[u8]],
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SealError> {
        let version = sealed.key_version;
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT master_id, wrapped FROM data_keys WHERE tenant_id = $1 AND version = $2",
        )
        .bind(tenant)
        .bind(i32::try_from(version).map_err(|_| SealError::NoKey(version))?)
        .fetch_optional(tx)
        .await?;
        let (master_id, sealed_key) = row.ok_or(SealError::NoKey(version))?;
        let key = self.unwrap(tenant, version, master_id, sealed_key)?;
        key.open(
            &secret_aad(self.purpose, tenant, binding, version),
            &sealed.ciphertext,
        )
    }

    /// The tenant's newest data key, made (version 1) if it has none.
    async fn current(&self, tenant: Uuid) -> Result<(u32, Key), SealError> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant)).await?;
        refuse_shredded(&mut tx, tenant).await?;
        let row = match newest(&mut tx, tenant).await? {
            Some(row) => row,
            None => {
                // Two replicas may race to make the first key: one insert wins, and both
                // read the winner back.
                self.insert(&mut tx, tenant, 1).await?;
                newest(&mut tx, tenant).await?.ok_or(SealError::NoKey(1))?
            }
        };
        tx.commit().await?;
        let version = version_of(row.0);
        Ok((version, self.unwrap(tenant, version, row.1, row.2)?))
    }

    async fn insert(
        &self,
        tx: &mut sqlx::PgConnection,
        tenant: Uuid,
        version: u32,
    ) -> Result<(), SealError> {
        let wrapped = self
            .master
            .wrap(&tenant.to_string(), version, &random::<32>());
        sqlx::query(
            "INSERT INTO data_keys (tenant_id, version, master_id, wrapped) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(i32::try_from(version).map_err(|_| SealError::NoKey(version))?)
        .bind(&wrapped.master_id)
        .bind(&wrapped.sealed)
        .execute(tx)
        .await?;
        Ok(())
    }

    fn unwrap(
        &self,
        tenant: Uuid,
        version: u32,
        master_id: String,
        sealed: Vec<u8>,
    ) -> Result<Key, SealError> {
        let bytes =
            self.master
                .unwrap(&tenant.to_string(), version, &Wrapped { master_id, sealed })?;
        Ok(Key::new(&bytes))
    }

    /// Gives `tenant` a new data key version, which seals from now on; the older versions
    /// still open what they sealed. Answers the new version.
    pub async fn rotate(&self, tenant: Uuid) -> Result<u32, SealError> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant)).await?;
        refuse_shredded(&mut tx, tenant).await?;
        // Serialises rotations of one tenant (the row lock of the newest key).
        let newest: Option<i32> = sqlx::query_scalar(
            "SELECT version FROM data_keys WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1
             FOR UPDATE",
        )
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        let next = newest.map_or(1, |v| version_of(v) + 1);
        self.insert(&mut tx, tenant, next).await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Re-wraps every data key not wrapped by the current master key (after the master key
    /// was rotated, with the old one listed as previous). Answers how many it re-wrapped.
    pub async fn rewrap(&self) -> Result<u64, SealError> {
        let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
        let rows: Vec<(Uuid, i32, String, Vec<u8>)> = sqlx::query_as(
            "SELECT tenant_id, version, master_id, wrapped FROM data_keys WHERE master_id <> $1
             FOR UPDATE",
        )
        .bind(self.master.current_id())
        .fetch_all(&mut *tx)
        .await?;
        let mut count = 0;
        for (tenant, version, master_id, sealed) in rows {
            let version = version_of(version);
            let t = tenant.to_string();
            let key = self
                .master
                .unwrap(&t, version, &Wrapped { master_id, sealed })?;
            let wrapped = self.master.wrap(&t, version, &key);
            sqlx::query(
                "UPDATE data_keys SET master_id = $3, wrapped = $4
                 WHERE tenant_id = $1 AND version = $2",
            )
            .bind(tenant)
            .bind(i32::try_from(version).unwrap_or(i32::MAX))
            .bind(&wrapped.master_id)
            .bind(&wrapped.sealed)
            .execute(&mut *tx)
            .await?;
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Deletes every data key of `tenant` and refuses to make new ones: whatever was sealed
    /// for it (in events, the read model, backups) no longer opens. Answers how many keys
    /// were deleted.
    pub async fn shred(&self, tenant: Uuid) -> Result<u64, SealError> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant)).await?;
        let deleted = sqlx::query("DELETE FROM data_keys WHERE tenant_id = $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("INSERT INTO shredded_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(tenant_id = %tenant, keys = deleted, "shredded the tenant's data keys");
        Ok(deleted)
    }
}

async fn newest(
    tx: &mut sqlx::PgConnection,
    tenant: Uuid,
) -> Result<Option<(i32, String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, master_id, wrapped FROM data_keys WHERE tenant_id = $1
         ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(tx)
    .await
}

async fn refuse_shredded(tx: &mut sqlx::PgConnection, tenant: Uuid) -> Result<(), SealError> {
    let shredded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM shredded_tenants WHERE tenant_id = $1)")
            .bind(tenant)
            .fetch_one(tx)
            .await?;
    if shredded {
        Err(SealError::Shredded)
    } else {
        Ok(())
    }
}
