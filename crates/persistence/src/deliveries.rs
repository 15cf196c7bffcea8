use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::ports::{DeliveryFilter, DeliveryHeader, DeliveryLog, RepositoryError};
use ephemera_domain::{DeliveryId, DeliveryOutcome, DeliveryRecord, InstallationId};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entities::webhook_deliveries::{ActiveModel, Column, Entity, Model};
use crate::error::{corrupt, db_err};

/// The delivery log ([`DeliveryLog`]) on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlDeliveryLog {
    db: DatabaseConnection,
}

impl SqlDeliveryLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl TryFrom<Model> for DeliveryRecord {
    type Error = anyhow::Error;

    fn try_from(row: Model) -> Result<Self, Self::Error> {
        let id = row.id;
        let bad = |e: ephemera_domain::ValidationError| corrupt("webhook_deliveries", id, e);
        Ok(DeliveryRecord {
            id,
            delivery_id: DeliveryId::parse(&row.delivery_id).map_err(bad)?,
            event: row.event,
            action: row.action,
            repository: row.repository_full_name,
            installation_id: row
                .installation_id
                .map(InstallationId::new)
                .transpose()
                .map_err(bad)?,
            outcome: row.outcome.parse::<DeliveryOutcome>().map_err(bad)?,
            reason: row.reason,
            attempts: row.attempts,
            received_at: row.received_at,
            updated_at: row.updated_at.unwrap_or(row.received_at),
        })
    }
}

fn to_domain(row: Model) -> Result<DeliveryRecord, RepositoryError> {
    DeliveryRecord::try_from(row).map_err(RepositoryError::Unexpected)
}

fn new_row(
    header: &DeliveryHeader,
    outcome: DeliveryOutcome,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> ActiveModel {
    ActiveModel {
        id: NotSet,
        delivery_id: Set(header.delivery_id.as_str().to_owned()),
        event: Set(header.event.clone()),
        action: Set(header.action.clone()),
        repository_full_name: Set(header.repository.clone()),
        installation_id: Set(header.installation_id.map(InstallationId::get)),
        outcome: Set(outcome.as_str().to_owned()),
        reason: Set(reason),
        attempts: Set(1),
        received_at: Set(now),
        updated_at: Set(Some(now)),
        body_sha256: Set(header.body_sha256.clone()),
    }
}

/// What the log already knows of a delivery, in one look-up: the outcome
/// recorded under its id, or else the delivery that had the same body.
pub(crate) enum Seen {
    New,
    Recorded(DeliveryOutcome),
    SameBodyAs(DeliveryId),
}

pub(crate) async fn seen<C: ConnectionTrait>(
    db: &C,
    delivery_id: &DeliveryId,
    body_sha256: Option<&str>,
) -> Result<Seen, RepositoryError> {
    let mut matching = Condition::any().add(Column::DeliveryId.eq(delivery_id.as_str()));
    if let Some(digest) = body_sha256 {
        matching = matching.add(Column::BodySha256.eq(digest));
    }
    let rows = Entity::find()
        .filter(matching)
        .limit(2)
        .all(db)
        .await
        .map_err(|e| db_err(e, format!("loading delivery {delivery_id}")))?;
    if let Some(row) = rows.iter().find(|r| r.delivery_id == delivery_id.as_str()) {
        return Ok(Seen::Recorded(to_domain(row.clone())?.outcome));
    }
    match rows.into_iter().next() {
        Some(row) => DeliveryId::parse(&row.delivery_id)
            .map(Seen::SameBodyAs)
            .map_err(|e| RepositoryError::Unexpected(corrupt("webhook_deliveries", row.id, e))),
        None => Ok(Seen::New),
    }
}

/// Enters a new delivery with its outcome; [`RepositoryError::Conflict`]
/// when a concurrent request with the same id got there first.
pub(crate) async fn insert_finished<C: ConnectionTrait>(
    db: &C,
    header: &DeliveryHeader,
    outcome: DeliveryOutcome,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    Entity::insert(new_row(header, outcome, reason, now))
        .exec_without_returning(db)
        .await
        .map_err(|e| db_err(e, format!("recording delivery {}", header.delivery_id)))?;
    Ok(())
}

/// Counts one more arrival of a delivery id.
pub(crate) async fn count_attempt<C: ConnectionTrait>(
    db: &C,
    delivery_id: &DeliveryId,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::DeliveryId.eq(delivery_id.as_str()))
        .exec(db)
        .await
        .map_err(|e| db_err(e, format!("counting a redelivery of {delivery_id}")))?;
    Ok(())
}

pub(crate) async fn finish<C: ConnectionTrait>(
    db: &C,
    delivery_id: &DeliveryId,
    outcome: DeliveryOutcome,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    Entity::update_many()
        .col_expr(Column::Outcome, Expr::value(outcome.as_str()))
        .col_expr(Column::Reason, Expr::value(reason))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::DeliveryId.eq(delivery_id.as_str()))
        .exec(db)
        .await
        .map_err(|e| {
            db_err(
                e,
                format!("recording the outcome of delivery {delivery_id}"),
            )
        })?;
    Ok(())
}

/// Records a failed delivery, creating its row if the failed transaction
/// took it along.
pub(crate) async fn record_failure<C: ConnectionTrait>(
    db: &C,
    header: &DeliveryHeader,
    error: String,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    Entity::insert(new_row(header, DeliveryOutcome::Failed, Some(error), now))
        .on_conflict(
            OnConflict::column(Column::DeliveryId)
                .update_columns([Column::Outcome, Column::Reason, Column::UpdatedAt])
                // A delivery that was applied (or ignored) stays so.
                .action_and_where(
                    Expr::col((Entity, Column::Outcome)).eq(DeliveryOutcome::Failed.as_str()),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map_err(|e| {
            db_err(
                e,
                format!("recording failed delivery {}", header.delivery_id),
            )
        })?;
    Ok(())
}

#[async_trait]
impl DeliveryLog for SqlDeliveryLog {
    async fn list(
        &self,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Vec<DeliveryRecord>, RepositoryError> {
        let mut query = Entity::find();
        if let Some(event) = &filter.event {
            query = query.filter(Column::Event.eq(event.as_str()));
        }
        if let Some(outcome) = filter.outcome {
            query = query.filter(Column::Outcome.eq(outcome.as_str()));
        }
        if let Some(within) = &filter.within {
            query =
                query.filter(Column::RepositoryFullName.is_in(within.iter().map(String::as_str)));
        }
        if let Some(cursor) = page.after {
            query = query.filter(Column::Id.lt(cursor.before_id));
        }
        crate::paging::page(
            &self.db,
            query.order_by_desc(Column::Id),
            page.fetch_limit(),
        )
        .await
        .map_err(|e| db_err(e, "listing deliveries"))?
        .into_iter()
        .map(to_domain)
        .collect()
    }

    async fn get(
        &self,
        delivery_id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, RepositoryError> {
        Entity::find()
            .filter(Column::DeliveryId.eq(delivery_id.as_str()))
            .one(&self.db)
            .await
            .map_err(|e| db_err(e, format!("loading delivery {delivery_id}")))?
            .map(to_domain)
            .transpose()
    }
}
