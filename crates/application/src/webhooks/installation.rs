//! Installation events: the App installed, removed, suspended, and
//! repositories added to or removed from an installation.

use chrono::{DateTime, Utc};
use ephemera_domain::InstallationId;
use ephemera_domain::InstallationStatus::{self, Active, Deleted, Suspended};

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
            let id = record(tx, installation, account_login, Active, now).await?;
            tx.add_repositories(id, repositories).await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} on {account_login} recorded with {} repositories",
                repositories.len()
            )))
        }
        DeliveryChange::InstallationDeleted { account_login } => {
            let id = record(tx, installation, account_login, Deleted, now).await?;
            let envs = tx.live_environments_of_installation(id).await?;
            let reason = format!("installation {id} was deleted");
            let count = destroy_all(tx, envs, &reason, now).await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} deleted; {count} environments destroying"
            )))
        }
        DeliveryChange::InstallationSuspended { account_login } => {
            let id = record(tx, installation, account_login, Suspended, now).await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} suspended: no new deployments until unsuspended"
            )))
        }
        DeliveryChange::InstallationUnsuspended { account_login } => {
            let id = record(tx, installation, account_login, Active, now).await?;
            Ok(IngestOutcome::applied(format!(
                "installation {id} active again"
            )))
        }
        DeliveryChange::RepositoriesAdded {
            account_login,
            repositories,
        } => {
            let id = known(tx, installation, account_login, now).await?;
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
            let id = known(tx, installation, account_login, now).await?;
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
        DeliveryChange::Ping
        | DeliveryChange::Ignored(_)
        | DeliveryChange::PullRequest(_)
        | DeliveryChange::Command(_) => Ok(IngestOutcome::ignored("not an installation event")),
    }
}

/// Records `installation` of `account_login` with `status`; returns its id.
async fn record(
    tx: &mut dyn WebhookTx,
    installation: Option<InstallationId>,
    account_login: &str,
    status: InstallationStatus,
    now: DateTime<Utc>,
) -> Result<InstallationId, ApplyError> {
    let id = require_installation(installation)?;
    tx.upsert_installation(id, account_login, status, now)
        .await?;
    Ok(id)
}

/// Records `installation` as active unless it is known already (a
/// repositories event can arrive before the installation's own); returns
/// its id.
async fn known(
    tx: &mut dyn WebhookTx,
    installation: Option<InstallationId>,
    account_login: &str,
    now: DateTime<Utc>,
) -> Result<InstallationId, ApplyError> {
    let id = require_installation(installation)?;
    if tx.installation_status(id).await?.is_none() {
        tx.upsert_installation(id, account_login, Active, now)
            .await?;
    }
    Ok(id)
}

fn require_installation(id: Option<InstallationId>) -> Result<InstallationId, ApplyError> {
    id.ok_or(ApplyError::Incomplete(
        "an installation event without an installation id",
    ))
}
