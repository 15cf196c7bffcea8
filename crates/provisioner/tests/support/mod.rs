//! Shared by the provisioner tests: the request they provision.

#![allow(clippy::unwrap_used)]

use ephemera_application::ports::ProvisionRequest;
use ephemera_domain::{
    CommitSha, EnvironmentId, InstallationId, Namespace, PrNumber, RepositoryFullName,
};

/// PR 7 of `octo/web` at commit `abab…`, branch `feature`, installation 42,
/// previewed at `https://pr-7.preview.example.com`; each test file adjusts
/// it with `..`.
pub fn request() -> ProvisionRequest {
    let repository = RepositoryFullName::parse("octo/web").unwrap();
    let pr_number = PrNumber::new(7).unwrap();
    ProvisionRequest {
        environment_id: EnvironmentId::new(3).unwrap(),
        namespace: Namespace::for_pr(&repository, pr_number),
        repository,
        pr_number,
        commit_sha: CommitSha::parse(&"ab".repeat(20)).unwrap(),
        branch: "feature".into(),
        installation_id: Some(InstallationId::new(42).unwrap()),
        variables: Default::default(),
        preview_url: "https://pr-7.preview.example.com".into(),
    }
}
