//! Running the provisioner under the worker's lease: renewed while the
//! provisioner works, and the work dropped when another worker took the
//! lease over.

use std::future::Future;

use ephemera_domain::EnvironmentId;

use super::Reconciler;
use crate::ports::ProvisionFailure;

impl Reconciler {
    /// Runs `work` (the provisioner's `action`) while renewing the lease;
    /// `None` when the lease was lost (the future is dropped, which kills
    /// a command provisioner's process).
    pub(super) async fn leased<T>(
        &self,
        id: EnvironmentId,
        action: &str,
        work: impl Future<Output = Result<T, ProvisionFailure>>,
    ) -> Option<Result<T, ProvisionFailure>> {
        let heartbeat = async {
            let every = self.config.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let until = self.clock.now()
                    + chrono::Duration::from_std(self.config.lease)
                        .unwrap_or(chrono::Duration::MAX);
                match self.queue.renew(id, &self.config.worker_id, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => {
                        tracing::warn!(environment = %id, error = %err, "lease renewal failed; retrying")
                    }
                }
            }
        };
        let started = std::time::Instant::now();
        let result = tokio::select! {
            result = work => Some(result),
            () = heartbeat => None,
        };
        if let Some(result) = &result {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            self.observer.observe(
                self.provisioner.name(),
                action,
                outcome,
                started.elapsed().as_secs_f64(),
            );
        }
        result
    }
}
