//! Connecting to NATS with the service's settings.

use crate::config::CommonConfig;

/// A client of the configured NATS server.
pub async fn connect(
    common: &CommonConfig,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::connect(&common.nats_url).await
}
