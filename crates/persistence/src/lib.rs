//! SeaORM adapters: the repository ports of `ephemera-application`
//! implemented on SQLite (the embedded default) and PostgreSQL (production).
//!
//! Entities stay inside this crate; callers see domain types only. This
//! crate depends on domain and application, never on another adapter.

mod commands;
mod connection;
mod deliveries;
mod deployments;
// Row models stay inside the crate; its own integration tests (which seed
// rows by hand) reach them through the `testing` feature.
#[cfg(feature = "testing")]
pub mod entities;
#[cfg(not(feature = "testing"))]
mod entities;
mod environments;
mod error;
mod handover;
mod health;
mod installations;
mod leases;
mod outbox;
mod paging;
mod retention;
mod slots;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;
mod users;
mod webhooks;
mod work;

pub use commands::SqlCommandQueue;
pub use connection::{ConnectError, connect, connect_reader, redact_url};
pub use deliveries::SqlDeliveryLog;
pub use deployments::SqlDeploymentRepository;
pub use environments::SqlEnvironmentRepository;
pub use handover::Handover;
pub use health::SqlHealthProbe;
pub use installations::SqlInstallationRepository;
pub use leases::SqlLeases;
pub use outbox::SqlReportOutbox;
pub use retention::SqlPruner;
pub use sea_orm::DatabaseConnection;
pub use tx::Reporting;
pub use users::SqlUserRepository;
pub use webhooks::SqlWebhookStore;
pub use work::SqlWorkQueue;

/// Applies pending migrations under the migration lock; see the `migration`
/// crate. Returns the names of the migrations this call applied.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    migration::apply_pending(db).await
}
