//! Reading the delivery log: why did a delivery do nothing?

use std::sync::Arc;

use ephemera_domain::{DeliveryId, DeliveryRecord};
use thiserror::Error;

use crate::ports::{DeliveryFilter, DeliveryLog};
use crate::queries::ReadFailure;
use crate::{Page, PageRequest};

#[derive(Debug, Error)]
pub enum ListDeliveriesError {
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

#[derive(Debug, Error)]
pub enum GetDeliveryError {
    #[error("no delivery with id {0}")]
    NotFound(DeliveryId),
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

#[derive(Clone)]
pub struct DeliveryQueries {
    log: Arc<dyn DeliveryLog>,
}

impl std::fmt::Debug for DeliveryQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryQueries").finish_non_exhaustive()
    }
}

impl DeliveryQueries {
    pub fn new(log: Arc<dyn DeliveryLog>) -> Self {
        Self { log }
    }

    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>, ListDeliveriesError> {
        let rows = self
            .log
            .list(filter, page)
            .await
            .map_err(|e| ReadFailure::from_store(e, "listing deliveries"))?;
        Ok(page.into_page(rows, |d| d.id))
    }

    #[tracing::instrument(skip(self))]
    pub async fn get(&self, delivery_id: &DeliveryId) -> Result<DeliveryRecord, GetDeliveryError> {
        self.log
            .get(delivery_id)
            .await
            .map_err(|e| ReadFailure::from_store(e, format!("loading delivery {delivery_id}")))?
            .ok_or_else(|| GetDeliveryError::NotFound(delivery_id.clone()))
    }
}
