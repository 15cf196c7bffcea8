//! Missed deliveries: GitHub's failed webhook deliveries that ephemera did
//! not apply, asked for again.

use ephemera_domain::{DeliveryId, DeliveryOutcome};

use super::{GitHubSync, SyncError, unexpected};
use crate::ports::{DeliveryHeader, HookDelivery};

/// How a redelivery request is noted in the delivery log.
const REQUESTED: &str = "missed; redelivery requested";

/// Redeliveries ephemera asks for one delivery at most: a delivery that
/// fails every time needs an operator, not more requests.
pub const MAX_REQUESTS: u32 = 3;

/// Pages of 100 failed deliveries read back per pass at most.
const MAX_PAGES: u32 = 20;

/// Read back a little before the previous pass: deliveries GitHub was
/// still retrying then are listed again.
const LIST_OVERLAP: chrono::Duration = chrono::Duration::minutes(10);

/// How a delivery GitHub lists (failed, to be redelivered) goes into the
/// delivery log: only what GitHub's list says of it.
fn logged_as(guid: &DeliveryId, delivery: &HookDelivery) -> DeliveryHeader {
    DeliveryHeader {
        delivery_id: guid.clone(),
        event: delivery.event.clone(),
        action: delivery.action.clone(),
        repository: None,
        installation_id: None,
        body_sha256: None,
    }
}

/// How many redeliveries a delivery-log note says were asked for.
fn requests_noted(reason: &str) -> Option<u32> {
    let rest = reason
        .strip_prefix(REQUESTED)?
        .trim_start()
        .strip_prefix('(')?;
    rest.split_once(" of ")?.0.trim().parse().ok()
}

/// What asking for one delivery again came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivered {
    /// GitHub was asked to send it again.
    Asked,
    /// GitHub does not list it among the App's failed deliveries of the
    /// last three days (it was answered, or it is older).
    NotListed,
}

impl GitHubSync {
    /// Asks GitHub to send delivery `guid` again, for a person who asked
    /// (`who`, noted in the delivery log): found among the App's failed
    /// deliveries of GitHub's three-day window.
    #[tracing::instrument(skip(self))]
    pub async fn redeliver_one(
        &self,
        guid: &DeliveryId,
        who: &str,
    ) -> Result<Redelivered, SyncError> {
        let now = self.clock.now();
        let listed = self
            .github
            .failed_deliveries(now - chrono::Duration::days(3), MAX_PAGES)
            .await
            .map_err(unexpected)?;
        let Some(delivery) = listed.into_iter().find(|d| d.guid == guid.as_str()) else {
            return Ok(Redelivered::NotListed);
        };
        let header = logged_as(guid, &delivery);
        let note = format!(
            "{REQUESTED} by {who} at {} (GitHub got {})",
            now.to_rfc3339(),
            delivery.status_code
        );
        self.store
            .record_failure(&header, note, now)
            .await
            .map_err(unexpected)?;
        self.github
            .redeliver(delivery.id)
            .await
            .map_err(unexpected)?;
        tracing::info!(delivery = %guid, who, "asked GitHub to redeliver");
        Ok(Redelivered::Asked)
    }

    /// Asks GitHub to redeliver failed deliveries ephemera did not apply,
    /// and records that it asked (as a `failed` delivery-log entry, which a
    /// redelivery then applies afresh). Reads GitHub's failed deliveries
    /// back to the previous pass (or GitHub's 3-day window), following its
    /// cursor; never asks again for what ephemera refused for good (a 4xx:
    /// the same bytes would be refused again), waits for a redelivery it
    /// asked for, and asks for one delivery at most [`MAX_REQUESTS`] times.
    #[tracing::instrument(skip(self))]
    pub async fn redeliver_missed(&self) -> Result<Vec<String>, SyncError> {
        let now = self.clock.now();
        let window = now - chrono::Duration::days(3);
        let since = self
            .last_listed()
            .map_or(window, |last| (last - LIST_OVERLAP).max(window));
        let deliveries = match self.github.failed_deliveries(since, MAX_PAGES).await {
            Ok(d) => d,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the App's deliveries");
                return Ok(Vec::new());
            }
        };
        self.listed_at(now);
        let mut seen_guids = std::collections::HashSet::new();
        let mut asked = Vec::new();
        // Newest first: the first entry of a guid is its latest attempt.
        for delivery in deliveries {
            if !seen_guids.insert(delivery.guid.clone())
                || (200..300).contains(&delivery.status_code)
                || (400..500).contains(&delivery.status_code)
            {
                continue;
            }
            let Ok(guid) = DeliveryId::parse(&delivery.guid) else {
                continue;
            };
            let mut asked_before = 0;
            if let Some(logged) = self.deliveries.get(&guid).await.map_err(unexpected)? {
                let reason = logged.reason.as_deref().unwrap_or_default();
                let waiting = reason.starts_with(REQUESTED)
                    // GitHub has not tried again since ephemera asked.
                    && delivery.delivered_at <= logged.updated_at;
                asked_before = requests_noted(reason)
                    .unwrap_or_else(|| u32::try_from(logged.attempts - 1).unwrap_or(0));
                if logged.outcome != DeliveryOutcome::Failed
                    || reason.starts_with("unreadable payload")
                    || waiting
                    || asked_before >= MAX_REQUESTS
                {
                    continue;
                }
            }
            let header = logged_as(&guid, &delivery);
            // Recorded before asking: a redelivery arriving at once finds
            // the entry and is applied over it.
            let note = format!(
                "{REQUESTED} ({} of {MAX_REQUESTS}) at {} (GitHub got {})",
                asked_before + 1,
                now.to_rfc3339(),
                delivery.status_code
            );
            self.store
                .record_failure(&header, note, now)
                .await
                .map_err(unexpected)?;
            if let Err(err) = self.github.redeliver(delivery.id).await {
                tracing::warn!(delivery = %guid, error = %err, "redelivery request failed");
                continue;
            }
            tracing::info!(delivery = %guid, event = %delivery.event, "asked GitHub to redeliver");
            asked.push(guid.to_string());
        }
        Ok(asked)
    }

    fn last_listed(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self
            .last_listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn listed_at(&self, at: chrono::DateTime<chrono::Utc>) {
        *self
            .last_listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
    }
}
