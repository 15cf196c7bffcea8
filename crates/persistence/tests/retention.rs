//! The retention pass against real databases: what is old enough goes,
//! everything else stays.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use ephemera_application::ports::Pruner;
use ephemera_persistence::entities::{
    deployments, environments, github_reports, webhook_deliveries,
};
use ephemera_persistence::testing::TestDatabase;
use ephemera_persistence::{SqlPruner, backend_tests};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait};

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

async fn delivery(t: &TestDatabase, id: &str, received: DateTime<Utc>) {
    webhook_deliveries::ActiveModel {
        id: NotSet,
        delivery_id: Set(id.to_owned()),
        event: Set("pull_request".into()),
        action: Set(Some("opened".into())),
        repository_full_name: Set(None),
        installation_id: Set(None),
        outcome: Set("applied".into()),
        reason: Set(None),
        attempts: Set(1),
        received_at: Set(received),
        updated_at: Set(Some(received)),
        body_sha256: Set(Some(format!("digest-{id}"))),
    }
    .insert(&t.db)
    .await
    .unwrap();
}

async fn environment(t: &TestDatabase, pr: i64, destroyed: Option<DateTime<Utc>>) -> i64 {
    let row = environments::ActiveModel {
        id: NotSet,
        repository_full_name: Set("octo/web".into()),
        repository_name: Set("web".into()),
        pr_number: Set(pr),
        pr_title: Set("t".into()),
        branch_name: Set("b".into()),
        commit_sha: Set("a".repeat(40)),
        namespace: Set(format!("pr-{pr}-web")),
        environment_url: Set(None),
        status: Set(if destroyed.is_some() {
            "destroyed"
        } else {
            "ready"
        }
        .into()),
        installation_id: Set(None),
        owner_github_id: Set(None),
        owner_login: Set(None),
        error_message: Set(None),
        last_deployed_at: Set(None),
        pr_updated_at: Set(None),
        created_at: Set(days_ago(60)),
        updated_at: Set(days_ago(60)),
        destroyed_at: Set(destroyed),
        status_reason: Set(None),
        work_due_at: Set(None),
        work_attempts: Set(0),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        github_comment_id: Set(None),
        trusted_sha: Set(None),
        is_fork: Set(false),
        draft: Set(false),
        labels: Set("[]".into()),
        repository_id: Set(Some(7)),
        base_ref: Set("main".into()),
        waiting_since: Set(None),
        idle_ttl_seconds: Set(None),
        config_notes: Set("[]".into()),
        sleep_after_seconds: Set(None),
        deploy_requested_sha: Set(None),
    }
    .insert(&t.db)
    .await
    .unwrap();
    deployments::ActiveModel {
        id: NotSet,
        environment_id: Set(row.id),
        commit_sha: Set("a".repeat(40)),
        commit_message: Set(None),
        status: Set("success".into()),
        started_at: Set(None),
        completed_at: Set(None),
        error_message: Set(None),
        logs: Set("secret build output".into()),
        created_at: Set(days_ago(60)),
        updated_at: Set(days_ago(60)),
        github_deployment_id: Set(None),
        github_state: Set(None),
        github_commit_state: Set(None),
        github_check_run_id: Set(None),
        github_check_state: Set(None),
        delivery_id: Set(None),
    }
    .insert(&t.db)
    .await
    .unwrap();
    row.id
}

async fn report(t: &TestDatabase, environment_id: i64, status: &str, created: DateTime<Utc>) {
    github_reports::ActiveModel {
        id: NotSet,
        environment_id: Set(environment_id),
        snapshot: Set("{}".into()),
        status: Set(status.into()),
        attempts: Set(0),
        next_attempt_at: Set(created),
        last_error: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(created),
        delivered_at: Set(None),
    }
    .insert(&t.db)
    .await
    .unwrap();
}

async fn old_records_go_and_recent_or_live_ones_stay(t: TestDatabase) {
    delivery(&t, "old", days_ago(31)).await;
    delivery(&t, "recent", days_ago(29)).await;
    let gone_long_ago = environment(&t, 1, Some(days_ago(15))).await;
    let gone_lately = environment(&t, 2, Some(days_ago(13))).await;
    let live = environment(&t, 3, None).await;
    report(&t, live, "delivered", days_ago(8)).await;
    report(&t, live, "superseded", days_ago(8)).await;
    report(&t, live, "pending", days_ago(8)).await;
    report(&t, live, "delivered", days_ago(6)).await;

    let pruner = SqlPruner::new(t.db.clone());
    let note = "[logs removed]";
    assert_eq!(pruner.prune_deliveries(days_ago(30)).await.unwrap(), 1);
    assert_eq!(pruner.prune_reports(days_ago(7)).await.unwrap(), 2);
    assert_eq!(pruner.prune_logs(days_ago(14), note).await.unwrap(), 1);
    // A second pass finds nothing more.
    assert_eq!(pruner.prune_logs(days_ago(14), note).await.unwrap(), 0);

    let left: Vec<String> = webhook_deliveries::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(left, ["recent"]);
    let reports = github_reports::Entity::find().all(&t.db).await.unwrap();
    let mut statuses: Vec<_> = reports.iter().map(|r| r.status.as_str()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["delivered", "pending"]);
    let logs = |env: i64| {
        let db = t.db.clone();
        async move {
            deployments::Entity::find()
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .find(|d| d.environment_id == env)
                .unwrap()
                .logs
        }
    };
    assert_eq!(logs(gone_long_ago).await, note);
    assert_eq!(logs(gone_lately).await, "secret build output");
    assert_eq!(logs(live).await, "secret build output");
    assert_eq!(deployments::Entity::find().count(&t.db).await.unwrap(), 3);
}

backend_tests!(old_records_go_and_recent_or_live_ones_stay);
