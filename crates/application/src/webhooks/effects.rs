//! What applying a delivery does to environments, shared by the event
//! kinds: destroy, queue a deployment, queue a report to GitHub.

use chrono::{DateTime, Utc};
use ephemera_domain::{DeliveryId, Environment, NewDeployment, PreviewReport};

use super::ApplyError;
use crate::ports::WebhookTx;

/// Moves every live environment to destroying and cancels its queued
/// deployments; returns how many moved.
pub(super) async fn destroy_all(
    tx: &mut dyn WebhookTx,
    envs: Vec<Environment>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, ApplyError> {
    let mut count = 0;
    for mut env in envs {
        if !env.is_live() {
            continue;
        }
        env.begin_destroy(reason, now)?;
        tx.update_environment(&env).await?;
        tx.cancel_queued_deployments(env.id, now).await?;
        report(tx, &env, None, now).await?;
        count += 1;
    }
    Ok(count)
}

/// Queues a deployment of the environment's commit and reports it.
pub(super) async fn queue(
    tx: &mut dyn WebhookTx,
    env: &Environment,
    delivery: Option<&DeliveryId>,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let deployment = tx
        .queue_deployment(
            NewDeployment {
                environment_id: env.id,
                commit_sha: env.commit_sha.clone(),
                commit_message: None,
                delivery_id: delivery.cloned(),
            },
            now,
        )
        .await?;
    report(tx, env, Some(&deployment), now).await
}

/// Queues what GitHub should now show about the environment.
pub(super) async fn report(
    tx: &mut dyn WebhookTx,
    env: &Environment,
    deployment: Option<&ephemera_domain::Deployment>,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    match PreviewReport::of(env, deployment) {
        Some(r) => Ok(tx.report(r, now).await?),
        None => Ok(()),
    }
}
