use async_trait::async_trait;
use ephemera_domain::{DeliveryId, DeliveryOutcome, DeliveryRecord};

use super::RepositoryError;
use crate::PageRequest;

/// Which deliveries a delivery-log page should hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub event: Option<String>,
    pub outcome: Option<DeliveryOutcome>,
    /// Only deliveries about these repositories (what a signed-in person
    /// may see); `None`: any.
    pub within: Option<Vec<String>>,
}

/// The delivery log, read side.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Newest first, up to `page.fetch_limit()` rows.
    async fn list(
        &self,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Vec<DeliveryRecord>, RepositoryError>;

    async fn get(
        &self,
        delivery_id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, RepositoryError>;
}
