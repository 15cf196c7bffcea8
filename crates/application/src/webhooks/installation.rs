//! Installation events: the App installed, removed, suspended, and
//! repositories added to or removed from an installation.

use chrono::{DateTime, Utc};
use ephemera_domain::{InstallationId, InstallationStatus};

use super::ApplyError;
use super::effects::destroy_all;
use super::{DeliveryChange, IngestOutcome};
use crate::ports::WebhookTx;

/// Applies an installation event for `installation`.
pub(super) async fn apply(
    tx: &mut dyn WebhookTx,
    change: &DeliveryChange,
    installation: Option<InstallationId>,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, ApplyError> {
    match change {
        DeliveryChange::InstallationCreated {
            account_login,
            repositories,
        } => {
            let id = require_installation(installation)?;
            tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                .await?;
            tx.add_repositories(id, repositories).await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} on {account_login} recorded with {} repositories",
                repositories.len()
            )))
        }
        DeliveryChange::InstallationDeleted { account_login } => {
            let id = require_installation(installation)?;
            tx.upsert_installation(id, account_login, InstallationStatus::Deleted, now)
                .await?;
            let envs = tx.live_environments_of_installation(id).await?;
            let reason = format!("installation {id} was deleted");
            let count = destroy_all(tx, envs, &reason, now).await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} deleted; {count} environments destroying"
            )))
        }
        DeliveryChange::InstallationSuspended { account_login } => {
            let id = require_installation(installation)?;
            tx.upsert_installation(id, account_login, InstallationStatus::Suspended, now)
                .await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} suspended: no new deployments until unsuspended"
            )))
        }
        DeliveryChange::InstallationUnsuspended { account_login } => {
            let id = require_installation(installation)?;
            tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                .await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} active again"
            )))
        }
        DeliveryChange::RepositoriesAdded {
            account_login,
            repositories,
        } => {
            let id = require_installation(installation)?;
            if tx.installation_status(id).await?.is_none() {
                tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                    .await?;
            }
            tx.add_repositories(id, repositories).await?;
            Ok(IngestOutcome::applied(format!(
                "{} repositories added to installation {id}",
                repositories.len()
            )))
        }
        DeliveryChange::RepositoriesRemoved {
            account_login,
            repositories,
        } => {
            let id = require_installation(installation)?;
            if tx.installation_status(id).await?.is_none() {
                tx.upsert_installation(id, account_login, InstallationStatus::Active, now)
                    .await?;
            }
            tx.remove_repositories(id, repositories).await?;
            let mut count = 0;
            for repo in repositories {
                let envs = tx.live_environments_of_repository(repo).await?;
                let reason = format!("repository removed from installation {id}");
                count += destroy_all(tx, envs, &reason, now).await?;
            }
            Ok(IngestOutcome::applied(format!(
                "{} repositories removed from installation {id}; {count} environments destroying",
                repositories.len()
            )))
        }
        DeliveryChange::Ping | DeliveryChange::Ignored(_) | DeliveryChange::PullRequest(_) => {
            Ok(IngestOutcome::ignored("not an installation event"))
        }
    }
}

fn require_installation(id: Option<InstallationId>) -> Result<InstallationId, ApplyError> {
    id.ok_or(ApplyError::Incomplete(
        "an installation event without an installation id",
    ))
}
