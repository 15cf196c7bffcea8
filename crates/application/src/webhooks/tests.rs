//! Use-case tests of webhook ingestion with mocked ports.

use std::sync::Mutex;

use ephemera_domain::{
    Deployment, DeploymentRecord, Environment, EnvironmentRecord, EnvironmentStatus,
    InstallationStatus,
};

use super::*;
use crate::fixtures::{at, deployment_record, environment_record, sha, user};
use crate::ports::{MockClock, MockWebhookStore, MockWebhookTx};

type Calls = Arc<Mutex<Vec<String>>>;

fn pr_change(action: PullRequestAction, sha: char, updated: i64) -> Box<PullRequestChange> {
    Box::new(PullRequestChange {
        action,
        repository: RepositoryFullName::parse("Codertocat/Hello-World").unwrap(),
        repository_id: 186853002,
        number: PrNumber::new(2).unwrap(),
        title: "Update the README".into(),
        head_sha: CommitSha::parse(&sha.to_string().repeat(40)).unwrap(),
        head_ref: "changes".into(),
        base_ref: "main".into(),
        is_fork: false,
        open: true,
        draft: false,
        labels: vec![],
        author: user(1, "Codertocat"),
        updated_at: at(updated),
    })
}

fn delivery(change: DeliveryChange) -> IncomingDelivery {
    IncomingDelivery {
        delivery_id: DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").unwrap(),
        event: "pull_request".into(),
        action: Some("opened".into()),
        repository: RepositoryFullName::parse("Codertocat/Hello-World").ok(),
        body_sha256: None,
        installation_updated_at: None,
        installation_id: Some(InstallationId::new(1).unwrap()),
        sender: Some(user(1, "Codertocat")),
        change,
    }
}

fn environment(status: EnvironmentStatus, commit: char, pr_updated: i64) -> Environment {
    Environment::rehydrate(EnvironmentRecord {
        status,
        commit_sha: sha(commit),
        pr_updated_at: Some(at(pr_updated)),
        pr_title: "old title".into(),
        branch_name: "changes".into(),
        ..environment_record(7, "Codertocat/Hello-World", 2)
    })
}

/// A transaction that records every write as a line in `calls`.
fn recording_tx(
    calls: &Calls,
    claim: Claim,
    existing: Option<Environment>,
    installation: Option<InstallationStatus>,
) -> MockWebhookTx {
    let mut tx = MockWebhookTx::new();
    let c = calls.clone();
    tx.expect_claim_delivery().returning(move |_, _| {
        c.lock().unwrap().push("claim".into());
        Ok(claim.clone())
    });
    tx.expect_upsert_user().returning(|_, _| Ok(()));
    tx.expect_environment_for_pr()
        .returning(move |_, _, _| Ok(existing.clone()));
    tx.expect_installation_status()
        .returning(move |_| Ok(installation));
    let c = calls.clone();
    tx.expect_insert_environment().returning(move |new, now| {
        c.lock()
            .unwrap()
            .push(format!("insert {}", new.commit_sha.short()));
        let mut env = environment(EnvironmentStatus::Pending, 'a', 0);
        env.commit_sha = new.commit_sha;
        env.pr_updated_at = new.pr_updated_at;
        env.created_at = now;
        Ok(env)
    });
    let c = calls.clone();
    tx.expect_update_environment().returning(move |env| {
        c.lock().unwrap().push(format!(
            "update {} {}",
            env.status(),
            env.commit_sha.short()
        ));
        Ok(())
    });
    let c = calls.clone();
    tx.expect_queue_deployment().returning(move |new, now| {
        c.lock()
            .unwrap()
            .push(format!("queue {}", new.commit_sha.short()));
        Ok(Deployment::rehydrate(DeploymentRecord {
            commit_sha: new.commit_sha,
            created_at: now,
            updated_at: now,
            ..deployment_record(1, new.environment_id, 'a')
        }))
    });
    let c = calls.clone();
    tx.expect_cancel_queued_deployments()
        .returning(move |_, _| {
            c.lock().unwrap().push("cancel queued".into());
            Ok(1)
        });
    let c = calls.clone();
    tx.expect_update_deployment().returning(move |d| {
        c.lock().unwrap().push(format!(
            "deployment {} {}",
            d.status(),
            d.commit_sha.short()
        ));
        Ok(())
    });
    let c = calls.clone();
    tx.expect_finish_delivery()
        .returning(move |_, outcome, _, _| {
            c.lock().unwrap().push(format!("finish {outcome}"));
            Ok(())
        });
    tx.expect_report().returning(|_, _| Ok(()));
    let c = calls.clone();
    tx.expect_commit().returning(move || {
        c.lock().unwrap().push("commit".into());
        Ok(())
    });
    tx
}

/// Ingests `incoming` with the default deploy policy at time 1000.
async fn ingest(
    store: MockWebhookStore,
    incoming: &IncomingDelivery,
) -> Result<IngestOutcome, IngestError> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(1000));
    IngestDelivery::new(Arc::new(store), Arc::new(clock), DeployPolicy::default())
        .ingest(incoming)
        .await
}

fn store_with(txs: Vec<MockWebhookTx>) -> MockWebhookStore {
    let txs = Mutex::new(txs.into_iter());
    let mut store = MockWebhookStore::new();
    store.expect_begin().returning(move || {
        let tx = txs
            .lock()
            .unwrap()
            .next()
            .expect("no more transactions planned");
        Ok(Box::new(tx) as Box<dyn WebhookTx>)
    });
    store
}

fn calls(calls: &Calls) -> Vec<String> {
    calls.lock().unwrap().clone()
}

/// Ingests the pull-request change `pr` through one recording transaction
/// (`claim`, finding `existing` and `installation`); returns the outcome
/// and the writes made, in order.
async fn ingest_pr(
    claim: Claim,
    existing: Option<Environment>,
    installation: Option<InstallationStatus>,
    pr: Box<PullRequestChange>,
) -> (IngestOutcome, Vec<String>) {
    let log = Calls::default();
    let store = store_with(vec![recording_tx(&log, claim, existing, installation)]);
    let outcome = ingest(store, &delivery(DeliveryChange::PullRequest(pr)))
        .await
        .unwrap();
    (outcome, calls(&log))
}

#[tokio::test]
async fn opened_pr_creates_environment_and_queues_a_deployment() {
    let pr = pr_change(PullRequestAction::Opened, 'e', 10);
    let (outcome, log) = ingest_pr(Claim::Fresh, None, None, pr).await;

    assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
    assert_eq!(
        log,
        [
            "claim",
            "insert eeeeeee",
            "queue eeeeeee",
            "finish applied",
            "commit"
        ]
    );
}

#[tokio::test]
async fn a_duplicate_changes_nothing() {
    let pr = pr_change(PullRequestAction::Opened, 'e', 10);
    let (outcome, log) = ingest_pr(Claim::Duplicate, None, None, pr).await;

    assert_eq!(outcome.outcome, DeliveryOutcome::Duplicate);
    assert_eq!(log, ["claim", "commit"]);
}

#[tokio::test]
async fn new_commit_cancels_queued_work_and_queues_the_new_head() {
    let existing = environment(EnvironmentStatus::Ready, 'a', 10);
    let pr = pr_change(PullRequestAction::Synchronize, 'b', 20);
    let (outcome, log) = ingest_pr(Claim::Fresh, Some(existing), None, pr).await;

    assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
    assert_eq!(
        log,
        [
            "claim",
            "update ready bbbbbbb",
            "cancel queued",
            "queue bbbbbbb",
            "finish applied",
            "commit"
        ]
    );
}

#[tokio::test]
async fn an_older_event_never_moves_the_environment_backwards() {
    let existing = environment(EnvironmentStatus::Ready, 'b', 20);
    let pr = pr_change(PullRequestAction::Synchronize, 'a', 10);
    let (outcome, log) = ingest_pr(Claim::Fresh, Some(existing), None, pr).await;

    assert_eq!(outcome.outcome, DeliveryOutcome::Ignored);
    assert!(outcome.reason.unwrap().starts_with("stale:"));
    assert_eq!(log, ["claim", "finish ignored", "commit"]);
}

#[tokio::test]
async fn closing_destroys_and_cancels_queued_deployments() {
    let existing = environment(EnvironmentStatus::Ready, 'a', 10);
    let mut pr = pr_change(PullRequestAction::Closed { merged: true }, 'a', 20);
    pr.open = false;
    let (outcome, log) = ingest_pr(Claim::Fresh, Some(existing), None, pr).await;

    assert_eq!(
        outcome.reason.as_deref(),
        Some("PR merged; environment 7 destroying")
    );
    assert_eq!(
        log,
        [
            "claim",
            "update destroying aaaaaaa",
            "cancel queued",
            "finish applied",
            "commit"
        ]
    );
}

#[tokio::test]
async fn a_fork_pr_waits_for_approval_with_the_reason() {
    let mut pr = pr_change(PullRequestAction::Opened, 'a', 10);
    pr.is_fork = true;
    let (outcome, log) = ingest_pr(Claim::Fresh, None, None, pr).await;

    assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
    let reason = outcome.reason.unwrap();
    assert!(
        reason.contains("`/preview approve`")
            && reason.contains("waits for a maintainer's approval of aaaaaaa"),
        "{reason}"
    );
    // Recorded, its head skipped: nothing runs, and GitHub is told why.
    assert_eq!(
        log,
        [
            "claim",
            "insert aaaaaaa",
            "cancel queued",
            "queue aaaaaaa",
            "deployment cancelled aaaaaaa",
            "update skipped aaaaaaa",
            "finish applied",
            "commit"
        ]
    );
}

#[tokio::test]
async fn suspended_installation_gets_no_new_deployment() {
    let pr = pr_change(PullRequestAction::Opened, 'a', 10);
    let (outcome, log) =
        ingest_pr(Claim::Fresh, None, Some(InstallationStatus::Suspended), pr).await;

    assert_eq!(outcome.outcome, DeliveryOutcome::Ignored);
    assert!(outcome.reason.unwrap().contains("suspended"));
    // Nothing created, queued or reported: only the log entry.
    assert_eq!(log, ["claim", "finish ignored", "commit"]);
}

#[tokio::test]
async fn losing_a_creation_race_retries_against_the_winner() {
    let log = Calls::default();
    let mut loser = MockWebhookTx::new();
    loser
        .expect_claim_delivery()
        .returning(|_, _| Ok(Claim::Fresh));
    loser.expect_upsert_user().returning(|_, _| Ok(()));
    loser
        .expect_environment_for_pr()
        .returning(|_, _, _| Ok(None));
    loser.expect_installation_status().returning(|_| Ok(None));
    loser
        .expect_insert_environment()
        .returning(|_, _| Err(RepositoryError::Conflict("environments".into())));
    loser.expect_commit().never();
    let winner = environment(EnvironmentStatus::Pending, 'a', 5);
    let store = store_with(vec![
        loser,
        recording_tx(&log, Claim::Fresh, Some(winner), None),
    ]);
    let change = DeliveryChange::PullRequest(pr_change(PullRequestAction::Synchronize, 'b', 10));

    let outcome = ingest(store, &delivery(change)).await.unwrap();

    assert_eq!(outcome.outcome, DeliveryOutcome::Applied);
    assert!(calls(&log).contains(&"queue bbbbbbb".to_owned()));
}

#[tokio::test]
async fn unreachable_database_is_unavailable_and_not_recorded() {
    let mut store = MockWebhookStore::new();
    store.expect_begin().returning(|| {
        Err(RepositoryError::unavailable(
            "claiming",
            "connection refused",
        ))
    });
    store.expect_record_failure().never();

    let err = ingest(store, &delivery(DeliveryChange::Ping))
        .await
        .unwrap_err();

    assert!(matches!(err, IngestError::Unavailable(_)));
}

#[tokio::test]
async fn unexpected_failure_is_recorded_for_the_operator() {
    let mut store = MockWebhookStore::new();
    store
        .expect_begin()
        .returning(|| Err(RepositoryError::Unexpected(anyhow::anyhow!("disk full"))));
    store
        .expect_record_failure()
        .withf(|header, error, _| header.event == "pull_request" && error.contains("disk full"))
        .times(1)
        .returning(|_, _, _| Ok(()));

    let err = ingest(store, &delivery(DeliveryChange::Ping))
        .await
        .unwrap_err();

    assert!(matches!(err, IngestError::Unexpected(_)));
}

#[tokio::test]
async fn an_installation_event_without_an_installation_id_is_refused_and_recorded() {
    let log = Calls::default();
    let mut store = store_with(vec![recording_tx(&log, Claim::Fresh, None, None)]);
    store
        .expect_record_failure()
        .withf(|_, error, _| error.contains("without an installation id"))
        .times(1)
        .returning(|_, _, _| Ok(()));
    let mut incoming = delivery(DeliveryChange::InstallationSuspended {
        account_login: "Codertocat".into(),
    });
    incoming.installation_id = None;

    let err = ingest(store, &incoming).await.unwrap_err();

    assert!(
        matches!(err, IngestError::Incomplete(why) if why.contains("installation id")),
        "{err:?}"
    );
    assert!(!calls(&log).contains(&"commit".to_owned()), "nothing kept");
}
