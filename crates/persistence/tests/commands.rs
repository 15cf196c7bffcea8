//! Recorded `/preview` commands against real databases: one per comment,
//! claimed by one worker at a time, finished once.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_application::ports::{
    CommandEnd, CommandOrigin, CommandQueue, NewPreviewCommand, WebhookStore,
};
use ephemera_domain::{
    CommentCommand, CommitSha, DeliveryId, InstallationId, PrNumber, PreviewCommand,
    RepositoryFullName,
};
use ephemera_persistence::testing::TestDatabase;
use ephemera_persistence::{SqlCommandQueue, SqlWebhookStore, backend_tests};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn command(comment_id: i64, word: PreviewCommand) -> NewPreviewCommand {
    given(CommandOrigin::Comment(comment_id), word)
}

/// A click on check run `run`'s button.
fn click(run: i64, word: PreviewCommand) -> NewPreviewCommand {
    given(
        CommandOrigin::Button {
            check_run_id: run,
            head_sha: CommitSha::parse(&"b".repeat(40)).unwrap(),
        },
        word,
    )
}

fn given(origin: CommandOrigin, word: PreviewCommand) -> NewPreviewCommand {
    NewPreviewCommand {
        delivery_id: DeliveryId::parse(&match &origin {
            CommandOrigin::Comment(id) => format!("c-{id}"),
            CommandOrigin::Button { check_run_id, .. } => format!("b-{check_run_id}-{word}"),
        })
        .unwrap(),
        origin,
        installation_id: Some(InstallationId::new(7).unwrap()),
        repository: RepositoryFullName::parse("octo/web").unwrap(),
        repository_id: 11,
        pr_number: PrNumber::new(3).unwrap(),
        author_login: "alice".into(),
        command: CommentCommand::Known(word),
    }
}

async fn record(t: &TestDatabase, new: &NewPreviewCommand) -> bool {
    let store = SqlWebhookStore::new(t.db.clone());
    let mut tx = store.begin().await.unwrap();
    let recorded = tx.record_command(new, at(0)).await.unwrap();
    tx.commit().await.unwrap();
    recorded
}

async fn commands_are_recorded_once_claimed_in_order_and_finished(t: TestDatabase) {
    assert!(record(&t, &command(100, PreviewCommand::Sleep)).await);
    assert!(
        !record(&t, &command(100, PreviewCommand::Sleep)).await,
        "same comment"
    );
    assert!(record(&t, &command(101, PreviewCommand::Wake)).await);

    let queue = SqlCommandQueue::new(t.db.clone());
    let lease = Duration::from_secs(60);
    let first = queue
        .claim_command("w1", at(1), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&first.origin, &first.command),
        (
            &CommandOrigin::Comment(100),
            &CommentCommand::Known(PreviewCommand::Sleep)
        )
    );
    assert_eq!(first.author_login, "alice");
    assert_eq!(first.pr_number.get(), 3);
    // Leased: another worker gets the next one.
    let second = queue
        .claim_command("w2", at(2), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.origin, CommandOrigin::Comment(101));
    assert_eq!(queue.claim_command("w3", at(3), lease).await.unwrap(), None);

    queue
        .finish_command(first.id, CommandEnd::Done, "asleep", at(4))
        .await
        .unwrap();
    // The second worker died: its lease runs out and the command is taken
    // again; the finished one never is.
    let retaken = queue
        .claim_command("w3", at(70), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retaken.origin, CommandOrigin::Comment(101));
    queue
        .finish_command(retaken.id, CommandEnd::Refused, "no permission", at(71))
        .await
        .unwrap();
    assert_eq!(
        queue.claim_command("w3", at(200), lease).await.unwrap(),
        None
    );
}

/// Buttons have no comment: every click is recorded (a redelivered click
/// is caught by its delivery id before this), with its check run and
/// commit.
async fn button_clicks_are_recorded_with_their_check_run_and_commit(t: TestDatabase) {
    assert!(record(&t, &click(9, PreviewCommand::Redeploy)).await);
    assert!(record(&t, &click(9, PreviewCommand::Destroy)).await);
    let queue = SqlCommandQueue::new(t.db.clone());
    let lease = Duration::from_secs(60);
    let first = queue
        .claim_command("w1", at(1), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.origin, click(9, PreviewCommand::Redeploy).origin);
    assert_eq!(
        first.command,
        CommentCommand::Known(PreviewCommand::Redeploy)
    );
    let second = queue
        .claim_command("w1", at(1), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second.command,
        CommentCommand::Known(PreviewCommand::Destroy)
    );
}

backend_tests!(
    commands_are_recorded_once_claimed_in_order_and_finished,
    button_clicks_are_recorded_with_their_check_run_and_commit,
);
