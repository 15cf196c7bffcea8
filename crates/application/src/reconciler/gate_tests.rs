//! The repository's rules before a deployment, against mocked ports: what
//! the environment, the deployment and the provisioner see.

use std::sync::{Arc, Mutex};

use ephemera_domain::{
    DeliveryId, Deployment, DeploymentStatus, Environment, EnvironmentId, EnvironmentRecord,
    EnvironmentStatus, InstallationId, SlotUse,
};

use super::RunOutcome;
use super::tests::{Store, deployment, reconciler_with};
use crate::fixtures::{at, environment_record};
use crate::ports::{FileLookup, MockGitHubReader, MockProvisioner, Provisioned, RepositoryFile};
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

/// Environment 9 in `status` with a queued deployment of its head, worked
/// on once with rules read from `file` while `in_use` previews hold a slot
/// in the repository: the outcome, the environment and deployment after,
/// and the notes added to the log entry of the delivery that queued it.
async fn run(
    status: EnvironmentStatus,
    file: &'static str,
    provisioner: MockProvisioner,
    in_use: u64,
) -> (RunOutcome, Environment, Deployment, Vec<String>) {
    let mut queued = deployment(DeploymentStatus::Queued);
    queued.delivery_id = Some(DeliveryId::parse("delivery-1").unwrap());
    let store: Store = Arc::new(Mutex::new((environment(status), queued)));
    let notes = Arc::new(Mutex::new(Vec::new()));
    let noted = notes.clone();
    let rules = RepoConfigs::new(Some(Arc::new(github(file))), RepoConfigSettings::default());
    let outcome = reconciler_with(&store, provisioner, 3, move |tx| {
        tx.expect_slot_use().returning(move |_, _| {
            Ok(SlotUse {
                in_use,
                waiting_ahead: 0,
            })
        });
        tx.expect_report().returning(|_, _| Ok(()));
        let noted = noted.clone();
        tx.expect_note_delivery().returning(move |delivery, note| {
            assert_eq!(delivery.to_string(), "delivery-1");
            noted.lock().unwrap().push(note.to_owned());
            Ok(())
        });
    })
    .with_rules(Arc::new(rules))
    .run_once()
    .await
    .unwrap();
    let (env, dep) = store.lock().unwrap().clone();
    let notes = notes.lock().unwrap().clone();
    (outcome, env, dep, notes)
}

fn never_provisioned() -> MockProvisioner {
    let mut p = MockProvisioner::new();
    p.expect_name().return_const("mock");
    p.expect_provision().never();
    p
}

fn nine() -> EnvironmentId {
    EnvironmentId::new(9).unwrap()
}

#[tokio::test]
async fn a_skipping_rule_skips_a_new_preview_and_names_itself() {
    let file = "version: 1\npreviews:\n  skip_when_title_contains: ['PR 4']\n";
    let (outcome, env, dep, notes) =
        run(EnvironmentStatus::Pending, file, never_provisioned(), 0).await;

    assert_eq!(outcome, RunOutcome::Skipped(nine()));
    assert_eq!(
        notes,
        [
            "deployment of ccccccc not started: previews.skip_when_title_contains: the title contains `PR 4`"
        ],
        "the delivery log says what the rules decided"
    );
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
    let file = "version: 1\npreviews:\n  mdoe: off\n";
    let (outcome, env, dep, _) = run(EnvironmentStatus::Ready, file, never_provisioned(), 0).await;

    assert_eq!(outcome, RunOutcome::Skipped(nine()));
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
    let file = "version: 1\npreviews:\n  max_active: 2\n";
    let (outcome, env, dep, notes) =
        run(EnvironmentStatus::Pending, file, never_provisioned(), 2).await;
    assert!(notes.is_empty(), "waiting is not an answer yet");

    assert_eq!(outcome, RunOutcome::Waiting(nine()));
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
    let file = "version: 1\npreviews:\n  max_active: 2\n  ttl: 2h\nenv:\n  PREVIEW_FLAG: on\n";
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
    let (outcome, env, dep, _) = run(EnvironmentStatus::Pending, file, p, 1).await;

    assert_eq!(outcome, RunOutcome::Ready(nine()));
    assert_eq!(env.idle_ttl, Some(std::time::Duration::from_secs(7200)));
    assert!(
        dep.logs()
            .contains("rules: .github/ephemera.yml at cccccccccccccccccccccccccccccccccccccccc"),
        "{}",
        dep.logs()
    );
}
