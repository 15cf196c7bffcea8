//! The repository's rules before a deployment, against mocked ports: what
//! the environment, the deployment and the provisioner see.

use std::sync::{Arc, Mutex};

use ephemera_domain::{
    DeploymentStatus, Environment, EnvironmentId, EnvironmentRecord, EnvironmentStatus,
    InstallationId, SlotUse,
};

use super::tests::{Store, config, deployment, tx};
use super::{Reconciler, RunOutcome};
use crate::fixtures::{at, environment_record};
use crate::ports::{
    FileLookup, MockClock, MockGitHubReader, MockProvisioner, MockWorkQueue, Provisioned,
    RepositoryFile, WorkTx,
};
use crate::repo_config::{RepoConfigSettings, RepoConfigs};

fn environment(status: EnvironmentStatus) -> Environment {
    let deployed = status == EnvironmentStatus::Ready;
    Environment::rehydrate(EnvironmentRecord {
        status,
        work_due_at: Some(at(0)),
        installation_id: Some(InstallationId::new(42).unwrap()),
        last_deployed_at: deployed.then(|| at(0)),
        environment_url: deployed.then(|| "https://running.example".to_owned()),
        ..environment_record(9, "octo/web", 4)
    })
}

/// GitHub serving `file` as `.github/ephemera.yml` at any ref.
fn github(file: &'static str) -> MockGitHubReader {
    let mut github = MockGitHubReader::new();
    github
        .expect_repository_file()
        .returning(move |_, _, path, git_ref, _| {
            assert_eq!(path, ".github/ephemera.yml");
            assert_eq!(git_ref, "c".repeat(40), "a same-repository PR's head");
            Ok(FileLookup::Found(RepositoryFile {
                blob_sha: format!("blob-of-{}", file.len()),
                text: file.to_owned(),
            }))
        });
    github
}

/// A reconciler over `store` reading rules from `github`, where `in_use`
/// previews hold a slot in the repository.
fn reconciler(
    store: &Store,
    provisioner: MockProvisioner,
    github: MockGitHubReader,
    in_use: u64,
) -> Reconciler {
    let mut queue = MockWorkQueue::new();
    queue
        .expect_claim()
        .times(1)
        .returning(|_, _, _| Ok(Some(EnvironmentId::new(9).unwrap())));
    queue.expect_release().times(1).returning(|_, _| Ok(()));
    queue.expect_renew().returning(|_, _, _| Ok(true));
    let s = store.clone();
    queue.expect_begin().returning(move || {
        let mut tx = tx(&s);
        tx.expect_slot_use().returning(move |_, _| {
            Ok(SlotUse {
                in_use,
                waiting_ahead: 0,
            })
        });
        tx.expect_report().returning(|_, _| Ok(()));
        Ok(Box::new(tx) as Box<dyn WorkTx>)
    });
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(100));
    let rules = RepoConfigs::new(Some(Arc::new(github)), RepoConfigSettings::default());
    Reconciler::new(
        Arc::new(queue),
        Arc::new(provisioner),
        Arc::new(clock),
        config(3),
    )
    .with_rules(Arc::new(rules))
}

fn never_provisioned() -> MockProvisioner {
    let mut p = MockProvisioner::new();
    p.expect_name().return_const("mock");
    p.expect_provision().never();
    p
}

fn store(status: EnvironmentStatus) -> Store {
    Arc::new(Mutex::new((
        environment(status),
        deployment(DeploymentStatus::Queued),
    )))
}

#[tokio::test]
async fn a_skipping_rule_skips_a_new_preview_and_names_itself() {
    let store = store(EnvironmentStatus::Pending);
    let github = github("version: 1\npreviews:\n  skip_when_title_contains: ['PR 4']\n");
    let outcome = reconciler(&store, never_provisioned(), github, 0)
        .run_once()
        .await
        .unwrap();

    assert_eq!(outcome, RunOutcome::Skipped(EnvironmentId::new(9).unwrap()));
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(env.status(), EnvironmentStatus::Skipped);
    assert_eq!(
        env.status_reason(),
        Some("no preview: previews.skip_when_title_contains: the title contains `PR 4`")
    );
    assert_eq!(env.work_due_at(), None);
    assert_eq!(dep.status(), DeploymentStatus::Cancelled);
}

#[tokio::test]
async fn an_invalid_file_refuses_the_commit_and_leaves_the_running_preview() {
    let store = store(EnvironmentStatus::Ready);
    let github = github("version: 1\npreviews:\n  mdoe: off\n");
    let outcome = reconciler(&store, never_provisioned(), github, 0)
        .run_once()
        .await
        .unwrap();

    assert_eq!(outcome, RunOutcome::Skipped(EnvironmentId::new(9).unwrap()));
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(env.status(), EnvironmentStatus::Ready);
    assert_eq!(env.environment_url(), Some("https://running.example"));
    let reason = env.status_reason().unwrap();
    assert!(
        reason.starts_with("commit ccccccc is not deployed: .github/ephemera.yml at ccccccc is invalid: line 3, column 3: previews: unknown field `mdoe`, expected one of `mode`"),
        "{reason}"
    );
    assert!(
        reason.ends_with("(schema: /api/v1/config-schema)"),
        "{reason}"
    );
    assert_eq!(dep.status(), DeploymentStatus::Failed);
    assert!(dep.logs().contains("not deployed: .github/ephemera.yml"));
}

#[tokio::test]
async fn over_the_cap_a_new_preview_waits_and_says_where_in_line() {
    let store = store(EnvironmentStatus::Pending);
    let github = github("version: 1\npreviews:\n  max_active: 2\n");
    let outcome = reconciler(&store, never_provisioned(), github, 2)
        .run_once()
        .await
        .unwrap();

    assert_eq!(outcome, RunOutcome::Waiting(EnvironmentId::new(9).unwrap()));
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(env.status(), EnvironmentStatus::Waiting);
    assert_eq!(
        env.status_reason(),
        Some("waiting: 2 of 2 previews in use in the repository, 1st in line")
    );
    assert_eq!(env.waiting_since(), Some(at(100)));
    assert_eq!(env.work_due_at(), Some(at(160)), "looked at again in 60 s");
    assert_eq!(dep.status(), DeploymentStatus::Queued, "still wanted");
}

#[tokio::test]
async fn under_the_cap_the_provisioner_gets_the_repositorys_variables() {
    let store = store(EnvironmentStatus::Pending);
    let github =
        github("version: 1\npreviews:\n  max_active: 2\n  ttl: 2h\nenv:\n  PREVIEW_FLAG: on\n");
    let mut p = MockProvisioner::new();
    p.expect_name().return_const("mock");
    p.expect_provision().times(1).returning(|req| {
        assert_eq!(
            req.variables.get("PREVIEW_FLAG").map(String::as_str),
            Some("on")
        );
        Ok(Provisioned {
            url: "https://x.example".into(),
            logs: String::new(),
        })
    });
    let outcome = reconciler(&store, p, github, 1).run_once().await.unwrap();

    assert_eq!(outcome, RunOutcome::Ready(EnvironmentId::new(9).unwrap()));
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(env.idle_ttl, Some(std::time::Duration::from_secs(7200)));
    assert!(
        dep.logs()
            .contains("rules: .github/ephemera.yml at cccccccccccccccccccccccccccccccccccccccc"),
        "{}",
        dep.logs()
    );
}
