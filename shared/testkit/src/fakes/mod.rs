//! Local stand-ins for third parties a test cannot reach, speaking their documented wire
//! formats (never our own services' or NATS/Postgres/Redis: those are real in every test).

pub mod efi;
