//! The webhook transaction adapter and the delivery log, on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::ports::{
    Claim, DeliveryFilter, DeliveryHeader, DeliveryLog, DeploymentRepository,
    EnvironmentRepository, RepositoryError, WebhookStore,
};
use ephemera_domain::{
    CommitSha, DeliveryId, DeliveryOutcome, DeploymentStatus, InstallationId, InstalledRepository,
    NewDeployment, NewEnvironment, PrNumber, RepositoryFullName,
};
use ephemera_persistence::testing::TestDatabase;
use ephemera_persistence::{
    SqlDeliveryLog, SqlDeploymentRepository, SqlEnvironmentRepository, SqlWebhookStore,
    backend_tests,
};

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_763_700_000, 0).unwrap()
}

fn header(id: &str, event: &str) -> DeliveryHeader {
    DeliveryHeader {
        delivery_id: DeliveryId::parse(id).unwrap(),
        event: event.into(),
        action: Some("opened".into()),
        repository: Some("octo/web".into()),
        installation_id: Some(InstallationId::new(1).unwrap()),
        body_sha256: Some(format!("body-of-{id}")),
    }
}

fn new_env(pr: i64) -> NewEnvironment {
    NewEnvironment {
        repository: RepositoryFullName::parse("octo/web").unwrap(),
        repository_id: Some(1),
        pr_number: PrNumber::new(pr).unwrap(),
        pr_title: "t".into(),
        branch_name: "b".into(),
        base_ref: "main".into(),
        commit_sha: CommitSha::parse(&"a".repeat(40)).unwrap(),
        installation_id: Some(InstallationId::new(1).unwrap()),
        owner: None,
        pr_updated_at: Some(now()),
        is_fork: false,
        draft: false,
        labels: Vec::new(),
    }
}

async fn the_same_body_under_a_new_delivery_id_is_a_replay(t: TestDatabase) {
    let store = SqlWebhookStore::new(t.db.clone());
    let log = SqlDeliveryLog::new(t.db.clone());
    let original = header("d-1", "installation");
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.claim_delivery(&original, now()).await.unwrap(),
        Claim::Fresh
    );
    tx.finish_delivery(&original.delivery_id, DeliveryOutcome::Applied, None, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let replay = DeliveryHeader {
        delivery_id: DeliveryId::parse("d-2").unwrap(),
        ..original.clone()
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.claim_delivery(&replay, now()).await.unwrap(),
        Claim::Replay {
            original: original.delivery_id.clone()
        }
    );
    tx.finish_delivery(
        &replay.delivery_id,
        DeliveryOutcome::Ignored,
        Some("replay".into()),
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let logged = log.get(&replay.delivery_id).await.unwrap().unwrap();
    assert_eq!(logged.outcome, DeliveryOutcome::Ignored);

    // A third copy is still a replay of the original, not of the replay.
    let again = DeliveryHeader {
        delivery_id: DeliveryId::parse("d-3").unwrap(),
        ..original.clone()
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.claim_delivery(&again, now()).await.unwrap(),
        Claim::Replay {
            original: original.delivery_id.clone()
        }
    );
}

async fn a_delivery_id_is_applied_once(t: TestDatabase) {
    let store = SqlWebhookStore::new(t.db.clone());
    let log = SqlDeliveryLog::new(t.db.clone());
    let h = header("d-1", "pull_request");

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.claim_delivery(&h, now()).await.unwrap(), Claim::Fresh);
    tx.finish_delivery(
        &h.delivery_id,
        DeliveryOutcome::Applied,
        Some("done".into()),
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.claim_delivery(&h, now()).await.unwrap(),
        Claim::Duplicate
    );
    tx.commit().await.unwrap();

    let record = log.get(&h.delivery_id).await.unwrap().unwrap();
    assert_eq!(record.outcome, DeliveryOutcome::Applied);
    assert_eq!(record.reason.as_deref(), Some("done"));
    assert_eq!(record.attempts, 2);
}

async fn a_failed_delivery_is_applied_again_when_redelivered(t: TestDatabase) {
    let store = SqlWebhookStore::new(t.db.clone());
    let log = SqlDeliveryLog::new(t.db.clone());
    let h = header("d-2", "pull_request");
    store
        .record_failure(&h, "database exploded".into(), now())
        .await
        .unwrap();
    assert_eq!(
        log.get(&h.delivery_id).await.unwrap().unwrap().outcome,
        DeliveryOutcome::Failed
    );

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.claim_delivery(&h, now()).await.unwrap(), Claim::Fresh);
    tx.finish_delivery(&h.delivery_id, DeliveryOutcome::Applied, None, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let record = log.get(&h.delivery_id).await.unwrap().unwrap();
    assert_eq!(
        (record.outcome, record.attempts),
        (DeliveryOutcome::Applied, 2)
    );
}

async fn an_uncommitted_delivery_leaves_nothing_behind(t: TestDatabase) {
    let store = SqlWebhookStore::new(t.db.clone());
    let h = header("d-3", "pull_request");
    {
        let mut tx = store.begin().await.unwrap();
        tx.claim_delivery(&h, now()).await.unwrap();
        let env = tx.insert_environment(new_env(1), now()).await.unwrap();
        tx.queue_deployment(
            NewDeployment {
                delivery_id: None,
                environment_id: env.id,
                commit_sha: env.commit_sha.clone(),
                commit_message: None,
            },
            now(),
        )
        .await
        .unwrap();
        // dropped without commit
    }
    assert_eq!(
        SqlDeliveryLog::new(t.db.clone())
            .get(&h.delivery_id)
            .await
            .unwrap(),
        None
    );
    let envs = SqlEnvironmentRepository::new(t.db.clone())
        .list(&Default::default(), PageRequest::default())
        .await
        .unwrap();
    assert!(envs.is_empty());
}

async fn a_second_environment_for_a_pr_is_a_conflict_inside_a_delivery(t: TestDatabase) {
    let store = SqlWebhookStore::new(t.db.clone());
    let mut first = store.begin().await.unwrap();
    first.insert_environment(new_env(4), now()).await.unwrap();
    first.commit().await.unwrap();

    let mut second = store.begin().await.unwrap();
    let err = second
        .insert_environment(new_env(4), now())
        .await
        .unwrap_err();
    assert!(matches!(err, RepositoryError::Conflict(_)), "{err:?}");
    drop(second);

    let mut third = store.begin().await.unwrap();
    let found = third
        .environment_for_pr(
            Some(1),
            &RepositoryFullName::parse("octo/web").unwrap(),
            PrNumber::new(4).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.pr_updated_at, Some(now()));
    third.commit().await.unwrap();
}

async fn cancelling_touches_only_queued_deployments(t: TestDatabase) {
    let envs = SqlEnvironmentRepository::new(t.db.clone());
    let deployments = SqlDeploymentRepository::new(t.db.clone());
    let env = envs.insert(new_env(1), now()).await.unwrap();
    let queue = || NewDeployment {
        delivery_id: None,
        environment_id: env.id,
        commit_sha: env.commit_sha.clone(),
        commit_message: None,
    };
    let mut running = deployments.insert(queue(), now()).await.unwrap();
    running.start(now()).unwrap();
    deployments.update(&running).await.unwrap();
    let queued = deployments.insert(queue(), now()).await.unwrap();

    let store = SqlWebhookStore::new(t.db.clone());
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.cancel_queued_deployments(env.id, now()).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();

    let got = deployments.get(queued.id).await.unwrap().unwrap();
    assert_eq!(got.status(), DeploymentStatus::Cancelled);
    assert_eq!(got.completed_at(), Some(now()));
    assert_eq!(
        deployments.get(running.id).await.unwrap().unwrap().status(),
        DeploymentStatus::InProgress
    );
}

async fn live_environments_leave_out_destroying_and_destroyed(t: TestDatabase) {
    let envs = SqlEnvironmentRepository::new(t.db.clone());
    let mut gone = envs.insert(new_env(1), now()).await.unwrap();
    gone.begin_destroy("PR closed", now()).unwrap();
    envs.update(&gone).await.unwrap();
    let live = envs.insert(new_env(2), now()).await.unwrap();

    let store = SqlWebhookStore::new(t.db.clone());
    let mut tx = store.begin().await.unwrap();
    let of_installation = tx
        .live_environments_of_installation(InstallationId::new(1).unwrap())
        .await
        .unwrap();
    let of_repo = tx
        .live_environments_of_repository(&InstalledRepository {
            github_id: 1,
            full_name: RepositoryFullName::parse("octo/web").unwrap(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        of_installation.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![live.id]
    );
    assert_eq!(
        of_repo.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![live.id]
    );
}

async fn delivery_log_filters_and_pages_newest_first(t: TestDatabase) {
    let store = SqlWebhookStore::new(t.db.clone());
    for (i, (event, outcome)) in [
        ("ping", DeliveryOutcome::Applied),
        ("pull_request", DeliveryOutcome::Ignored),
        ("pull_request", DeliveryOutcome::Applied),
        ("push", DeliveryOutcome::Ignored),
    ]
    .into_iter()
    .enumerate()
    {
        let h = header(&format!("d-{i}"), event);
        let mut tx = store.begin().await.unwrap();
        tx.claim_delivery(&h, now()).await.unwrap();
        tx.finish_delivery(&h.delivery_id, outcome, None, now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let log = SqlDeliveryLog::new(t.db.clone());
    let ids = |filter: DeliveryFilter| {
        let log = log.clone();
        async move {
            log.list(&filter, PageRequest::default())
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.delivery_id.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(DeliveryFilter::default()).await,
        ["d-3", "d-2", "d-1", "d-0"]
    );
    let prs = DeliveryFilter {
        event: Some("pull_request".into()),
        ..Default::default()
    };
    assert_eq!(ids(prs).await, ["d-2", "d-1"]);
    let ignored = DeliveryFilter {
        outcome: Some(DeliveryOutcome::Ignored),
        ..Default::default()
    };
    assert_eq!(ids(ignored).await, ["d-3", "d-1"]);
}

backend_tests!(
    the_same_body_under_a_new_delivery_id_is_a_replay,
    a_delivery_id_is_applied_once,
    a_failed_delivery_is_applied_again_when_redelivered,
    an_uncommitted_delivery_leaves_nothing_behind,
    a_second_environment_for_a_pr_is_a_conflict_inside_a_delivery,
    cancelling_touches_only_queued_deployments,
    live_environments_leave_out_destroying_and_destroyed,
    delivery_log_filters_and_pages_newest_first,
);
