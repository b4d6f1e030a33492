//! The `plans` table: the catalog as its `plan` events define it.

use prost::Message;
use sqlx::PgConnection;
use tenantry_contracts::billing::PlanEvent;
use tenantry_eventstore::{EventPayload, Projection, ProjectionError, StoredMessage, subject};
use tenantry_kit::db::{Scope, set_scope};

pub const NAME: &str = "billing_plans";

#[derive(Default)]
pub struct CatalogProjection;

impl Projection for CatalogProjection {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        subject::type_filter(root, PlanEvent::AGGREGATE_TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        set_scope(tx, Scope::Platform).await?;
        for message in messages {
            for stored in message.events::<PlanEvent>()? {
                let PlanEvent::Defined(d) = &stored.event;
                sqlx::query(
                    "INSERT INTO plans (name, definition, retired, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition,
                         retired = EXCLUDED.retired, updated_at = EXCLUDED.updated_at",
                )
                .bind(&d.name)
                .bind(d.encode_to_vec())
                .bind(d.retired)
                .bind(stored.meta.occurred_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}
