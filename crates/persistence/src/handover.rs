//! Work handed over between processes sharing one PostgreSQL database, as
//! it is committed: `NOTIFY` on a channel every process `LISTEN`s to. A
//! delivery applied by one replica wakes the workers of all of them, so no
//! process waits for its poll interval (which stays as the safety net).
//! SQLite serves one process; its doorbell rings in-process only.

use std::sync::Arc;
use std::time::Duration;

use ephemera_application::ports::WorkAnnouncer;
use ephemera_application::worker::Doorbell;
use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{DatabaseBackend, DatabaseConnection};
use tokio::sync::{Notify, watch};

/// The channel processes announce work on.
pub const CHANNEL: &str = "ephemera_work";

/// How long to wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// This process's side of the handover: announces work to the others and
/// hears theirs.
#[derive(Clone)]
pub struct Handover {
    pool: PgPool,
    /// Tells the others who spoke, so a process ignores its own word.
    me: String,
    pending: Arc<Notify>,
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl WorkAnnouncer for Handover {
    /// Asks the announcing task to notify; announcements made while it is
    /// busy become one.
    fn announce(&self) {
        self.pending.notify_one();
    }
}

impl Handover {
    /// The handover for `db` when it is PostgreSQL; `None` on SQLite.
    pub fn over(db: &DatabaseConnection) -> Option<Self> {
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return None;
        }
        Some(Self {
            pool: db.get_postgres_connection_pool().clone(),
            me: uuid::Uuid::new_v4().to_string(),
            pending: Arc::new(Notify::new()),
        })
    }

    /// Announces until `stop` turns true, and when `listen` is true rings
    /// `bell` here each time another process announces (and after a lost
    /// connection, when announcements may have been missed).
    pub async fn run(self, bell: Doorbell, listen: bool, stop: watch::Receiver<bool>) {
        let announcing = self.announce_until(stop.clone());
        if listen {
            tokio::join!(announcing, self.listen_until(bell, stop));
        } else {
            announcing.await;
        }
    }

    async fn announce_until(&self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = self.pending.notified() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            let sent = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&self.me)
                .execute(&self.pool)
                .await;
            if let Err(err) = sent {
                // The other processes find the work at their next poll.
                tracing::warn!(error = %err, "announcing work to the other replicas failed");
            }
        }
    }

    async fn listen_until(&self, bell: Doorbell, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow_and_update() {
            let heard = tokio::select! {
                heard = self.listen(&bell) => heard,
                _ = stop.changed() => return,
            };
            if let Err(err) = heard {
                tracing::warn!(error = %err, "listening for the other replicas' work failed; listening again");
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Listens on its own connection and rings `bell` for each word of
    /// another process; returns only when the connection fails.
    async fn listen(&self, bell: &Doorbell) -> Result<(), sea_orm::sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        tracing::debug!(channel = CHANNEL, "listening for the other replicas' work");
        // What was announced before this listened was not heard: look once.
        bell.ring_here();
        loop {
            match listener.try_recv().await? {
                Some(word) if word.payload() != self.me => bell.ring_here(),
                Some(_) => {}
                None => {
                    return Err(sea_orm::sqlx::Error::Protocol(
                        "the listening connection was lost".into(),
                    ));
                }
            }
        }
    }
}
