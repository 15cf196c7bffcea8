//! The dry-run provisioner: what it says it would do.

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_application::ports::Provisioner;
use ephemera_provisioner::DryRunProvisioner;
use support::request;

#[tokio::test]
async fn sleeping_says_what_it_would_do_and_wakes_at_the_templated_url() {
    let req = request();
    let ns = req.namespace.to_string();
    let stopped = DryRunProvisioner.stop(&req).await.unwrap();
    assert_eq!(
        stopped.logs,
        format!("dry-run: would scale the workloads of namespace {ns} to zero")
    );
    let started = DryRunProvisioner.start(&req).await.unwrap();
    assert_eq!(started.url, "https://pr-7.preview.example.com");
    assert_eq!(
        started.logs,
        format!(
            "dry-run: would scale the workloads of namespace {ns} back\n\
             dry-run: preview at https://pr-7.preview.example.com"
        )
    );
}
