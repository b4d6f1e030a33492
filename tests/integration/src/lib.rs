//! End-to-end tests live in `tests/`; they start services in-process on the real NATS and
//! Postgres (see `tenantry-testkit`).
