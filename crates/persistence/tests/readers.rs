//! Reads on SQLite have connections of their own: they go on while the
//! single writer is busy, and they cannot write.

#![allow(clippy::unwrap_used)]

use ephemera_application::PageRequest;
use ephemera_application::ports::{EnvironmentFilter, EnvironmentRepository};
use ephemera_persistence::testing::{Backend, TestDatabase};
use ephemera_persistence::{SqlEnvironmentRepository, connect_reader};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

#[tokio::test]
async fn sqlite_reads_go_on_while_the_writer_is_busy() {
    let t = TestDatabase::migrated(Backend::Sqlite).await.unwrap();
    let reads = connect_reader(&t.url, &t.db).await.unwrap();
    // The writer's only connection is taken, mid-transaction, as while a
    // webhook's delivery is written.
    let busy = t.db.begin().await.unwrap();
    busy.execute_raw(Statement::from_string(
        busy.get_database_backend(),
        "UPDATE environments SET pr_title = 'x' WHERE id = -1",
    ))
    .await
    .unwrap();

    let listed = SqlEnvironmentRepository::new(reads.clone())
        .list(
            &EnvironmentFilter::default(),
            PageRequest::parse(None, None).unwrap(),
        )
        .await;
    assert!(
        listed.unwrap().is_empty(),
        "read without waiting for the writer"
    );
    busy.commit().await.unwrap();

    let write = reads
        .execute_raw(Statement::from_string(
            reads.get_database_backend(),
            "DELETE FROM environments",
        ))
        .await;
    assert!(write.is_err(), "readers cannot write");
}
