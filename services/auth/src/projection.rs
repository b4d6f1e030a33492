//! The `memberships` read model: user → tenants and roles, from `team` events.

use sqlx::PgConnection;
use tenantry_eventstore::{Aggregate, Projection, ProjectionError, StoredMessage, subject};
use tenantry_kit::db::{Scope, scoped_tx, set_scope};
use tenantry_kit::{ApiError, Role};
use uuid::Uuid;

use crate::domain::events::TeamEvent;
use crate::domain::team::Team;

pub const NAME: &str = "auth_memberships";

#[derive(Default)]
pub struct MembershipsProjection;

impl Projection for MembershipsProjection {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        subject::type_filter(root, Team::TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        set_scope(tx, Scope::Platform).await?;
        for message in messages {
            for stored in message.events::<TeamEvent>()? {
                let tenant = Uuid::try_parse(&stored.meta.tenant_id)
                    .map_err(|e| ProjectionError::Other(format!("tenant id: {e}")))?;
                let (user, role) = match &stored.event {
                    TeamEvent::MemberAdded(e) => (&e.user_id, Some(&e.role)),
                    TeamEvent::MemberRoleChanged(e) => (&e.user_id, Some(&e.role)),
                    TeamEvent::MemberRemoved(e) => (&e.user_id, None),
                    _ => continue,
                };
                let user = Uuid::try_parse(user)
                    .map_err(|e| ProjectionError::Other(format!("user id: {e}")))?;
                match role {
                    Some(role) => {
                        sqlx::query(
                            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)
                             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = EXCLUDED.role",
                        )
                        .bind(tenant)
                        .bind(user)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query(
                            "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2",
                        )
                        .bind(tenant)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The tenants `user_id` belongs to, with roles (every tenant: a login lists them all).
pub async fn memberships_of(
    pool: &sqlx::PgPool,
    user_id: Uuid,
) -> Result<Vec<(Uuid, Role)>, ApiError> {
    let mut tx = scoped_tx(pool, Scope::Platform).await?;
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, role FROM memberships WHERE user_id = $1 ORDER BY tenant_id LIMIT 1000",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|(t, r)| r.parse().ok().map(|r| (t, r)))
        .collect())
}
