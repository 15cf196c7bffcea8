//! What the use-case tests start from: a time, a commit, a user, and an
//! environment and a deployment as their rows would hold them, for each
//! test to adjust with `..`.

use chrono::{DateTime, Utc};
use ephemera_domain::{
    CommitSha, DeploymentId, DeploymentRecord, DeploymentStatus, EnvironmentId, EnvironmentRecord,
    EnvironmentStatus, GithubUser, GithubUserId, Namespace, PrNumber, RepositoryFullName,
};

/// `secs` after the tests' epoch (2023-11-14T22:13:20Z).
pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

/// The commit whose hex digits are all `c`.
pub(crate) fn sha(c: char) -> CommitSha {
    CommitSha::parse(&c.to_string().repeat(40)).unwrap()
}

/// GitHub user `id`, known by `login` alone.
pub(crate) fn user(id: i64, login: &str) -> GithubUser {
    GithubUser {
        github_id: GithubUserId::new(id).unwrap(),
        login: login.into(),
        email: None,
        avatar_url: None,
    }
}

/// Environment `id` of PR `pr` of `repository`: pending at commit `ccc…`
/// since `at(0)`, with nothing else known.
pub(crate) fn environment_record(id: i64, repository: &str, pr: i64) -> EnvironmentRecord {
    let repository = RepositoryFullName::parse(repository).unwrap();
    let pr_number = PrNumber::new(pr).unwrap();
    EnvironmentRecord {
        id: EnvironmentId::new(id).unwrap(),
        namespace: Namespace::for_pr(&repository, pr_number),
        repository,
        repository_id: None,
        pr_number,
        pr_title: format!("PR {pr}"),
        branch_name: "feature".into(),
        base_ref: "main".into(),
        commit_sha: sha('c'),
        environment_url: None,
        status: EnvironmentStatus::Pending,
        installation_id: None,
        owner: None,
        error_message: None,
        status_reason: None,
        last_deployed_at: None,
        pr_updated_at: None,
        created_at: at(0),
        updated_at: at(0),
        destroyed_at: None,
        work_due_at: None,
        work_attempts: 0,
        trusted_sha: None,
        is_fork: false,
        draft: false,
        labels: Vec::new(),
        waiting_since: None,
        idle_ttl: None,
        config_notes: Vec::new(),
        sleep_after: None,
        deploy_requested_sha: None,
    }
}

/// Deployment `id` of commit `commit` into environment `environment`,
/// queued at `at(0)`.
pub(crate) fn deployment_record(
    id: i64,
    environment: EnvironmentId,
    commit: char,
) -> DeploymentRecord {
    DeploymentRecord {
        id: DeploymentId::new(id).unwrap(),
        environment_id: environment,
        commit_sha: sha(commit),
        commit_message: None,
        delivery_id: None,
        status: DeploymentStatus::Queued,
        started_at: None,
        completed_at: None,
        error_message: None,
        logs: String::new(),
        created_at: at(0),
        updated_at: at(0),
    }
}

/// The report of PR octo/web#7's preview in `status`, at commit `ab12cd3…`.
pub(crate) fn preview_report(status: EnvironmentStatus) -> ephemera_domain::PreviewReport {
    use ephemera_domain::InstallationId;
    ephemera_domain::PreviewReport {
        environment_id: EnvironmentId::new(1).unwrap(),
        installation_id: InstallationId::new(1).unwrap(),
        repository: RepositoryFullName::parse("octo/web").unwrap(),
        pr_number: PrNumber::new(7).unwrap(),
        namespace: Namespace::parse("pr-7-web").unwrap(),
        status,
        url: Some("https://pr-7.preview.example".into()),
        commit_sha: CommitSha::parse(&format!("ab12cd3{}", "0".repeat(33))).unwrap(),
        reason: None,
        error: None,
        deployment: None,
        vouched_sha: None,
        config_notes: Vec::new(),
        is_fork: false,
    }
}
