use async_trait::async_trait;
use ephemera_application::ports::{
    ProvisionFailure, ProvisionRequest, Provisioned, Provisioner, Stopped, Teardown,
};

/// Creates nothing: writes what it would do into the deployment logs and
/// reports the templated URL. The default, so ephemera runs anywhere; not a
/// stand-in for the real provisioners in their tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct DryRunProvisioner;

#[async_trait]
impl Provisioner for DryRunProvisioner {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    async fn provision(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        let mut logs = format!(
            "dry-run: would create namespace {ns} if missing\n\
             dry-run: would deploy {repo}@{sha} (branch {branch}, PR #{pr}) into {ns}\n\
             dry-run: preview at {url}",
            ns = request.namespace,
            repo = request.repository,
            sha = request.commit_sha.short(),
            branch = request.branch,
            pr = request.pr_number,
            url = request.preview_url,
        );
        if !request.variables.is_empty() {
            let names: Vec<&str> = request.variables.keys().map(String::as_str).collect();
            logs.push_str(&format!("\ndry-run: with variables {}", names.join(", ")));
        }
        Ok(Provisioned {
            url: request.preview_url.clone(),
            logs,
        })
    }

    async fn stop(&self, request: &ProvisionRequest) -> Result<Stopped, ProvisionFailure> {
        Ok(Stopped {
            logs: format!(
                "dry-run: would scale the workloads of namespace {} to zero",
                request.namespace
            ),
        })
    }

    async fn start(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        Ok(Provisioned {
            url: request.preview_url.clone(),
            logs: format!(
                "dry-run: would scale the workloads of namespace {} back\n\
                 dry-run: preview at {}",
                request.namespace, request.preview_url
            ),
        })
    }

    async fn destroy(&self, request: &ProvisionRequest) -> Result<Teardown, ProvisionFailure> {
        Ok(Teardown::Gone {
            logs: format!("dry-run: would delete namespace {}", request.namespace),
        })
    }
}
