//! The outbox of reports to GitHub. A report is a JSON snapshot of what
//! GitHub should show, written in the transaction of the change that
//! caused it; report workers lease the newest one per environment.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{
    CheckState, CommitState, DeploymentLedger, DeploymentState, PendingReport, ReportOutbox,
    RepositoryError,
};
use ephemera_application::reporting::LOG_TAIL_BYTES;
use ephemera_domain::{
    CommitSha, DeploymentId, DeploymentSnapshot, DeploymentStatus, EnvironmentId,
    EnvironmentStatus, InstallationId, Namespace, PrNumber, PreviewReport, RepositoryFullName,
};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend,
    DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::entities::github_reports::{ActiveModel, Column, Entity, Model};
use crate::entities::{deployments, environments};
use crate::error::{corrupt, db_err};

const PENDING: &str = "pending";

/// Environments a claim looks at, first due first.
const CANDIDATES: usize = 8;

/// Due report rows read to find them (several may be one PR's).
const DUE_ROWS: u64 = 256;

/// The snapshot as stored: plain values, parsed back through the domain.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    environment_id: i64,
    installation_id: i64,
    repository: String,
    pr_number: i64,
    namespace: String,
    status: String,
    url: Option<String>,
    commit_sha: String,
    reason: Option<String>,
    error: Option<String>,
    deployment: Option<DeploymentRow>,
    #[serde(default)]
    vouched_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    config_notes: Vec<String>,
    #[serde(default)]
    is_fork: bool,
}

#[derive(Serialize, Deserialize)]
struct DeploymentRow {
    id: i64,
    status: String,
    commit_sha: String,
    duration_seconds: Option<f64>,
    error: Option<String>,
}

impl From<&PreviewReport> for Snapshot {
    fn from(r: &PreviewReport) -> Self {
        Self {
            environment_id: r.environment_id.get(),
            installation_id: r.installation_id.get(),
            repository: r.repository.to_string(),
            pr_number: i64::from(r.pr_number.get()),
            namespace: r.namespace.to_string(),
            status: r.status.as_str().to_owned(),
            url: r.url.clone(),
            commit_sha: r.commit_sha.to_string(),
            reason: r.reason.clone(),
            error: r.error.clone(),
            deployment: r.deployment.as_ref().map(|d| DeploymentRow {
                id: d.id.get(),
                status: d.status.as_str().to_owned(),
                commit_sha: d.commit_sha.to_string(),
                duration_seconds: d.duration_seconds,
                error: d.error.clone(),
            }),
            vouched_sha: r.vouched_sha.as_ref().map(ToString::to_string),
            config_notes: r.config_notes.clone(),
            is_fork: r.is_fork,
        }
    }
}

fn parse(row: &Model) -> Result<PreviewReport, RepositoryError> {
    let bad = |e: String| RepositoryError::Unexpected(corrupt("github_reports", row.id, e));
    let s: Snapshot = serde_json::from_str(&row.snapshot).map_err(|e| bad(e.to_string()))?;
    let v = |e: ephemera_domain::ValidationError| bad(e.to_string());
    Ok(PreviewReport {
        environment_id: EnvironmentId::new(s.environment_id).map_err(v)?,
        installation_id: InstallationId::new(s.installation_id).map_err(v)?,
        repository: RepositoryFullName::parse(&s.repository).map_err(v)?,
        pr_number: PrNumber::new(s.pr_number).map_err(v)?,
        namespace: Namespace::parse(&s.namespace).map_err(v)?,
        status: s.status.parse::<EnvironmentStatus>().map_err(v)?,
        url: s.url,
        commit_sha: CommitSha::parse(&s.commit_sha).map_err(v)?,
        reason: s.reason,
        error: s.error,
        config_notes: s.config_notes,
        is_fork: s.is_fork,
        vouched_sha: s
            .vouched_sha
            .as_deref()
            .map(CommitSha::parse)
            .transpose()
            .map_err(v)?,
        deployment: s
            .deployment
            .map(|d| -> Result<DeploymentSnapshot, RepositoryError> {
                Ok(DeploymentSnapshot {
                    id: DeploymentId::new(d.id).map_err(v)?,
                    status: d.status.parse::<DeploymentStatus>().map_err(v)?,
                    commit_sha: CommitSha::parse(&d.commit_sha).map_err(v)?,
                    duration_seconds: d.duration_seconds,
                    error: d.error,
                })
            })
            .transpose()?,
    })
}

/// Writes a report in the caller's transaction, first due at `due`.
pub(crate) async fn enqueue<C: ConnectionTrait>(
    db: &C,
    report: &PreviewReport,
    now: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let snapshot = serde_json::to_string(&Snapshot::from(report))
        .map_err(|e| RepositoryError::Unexpected(e.into()))?;
    Entity::insert(ActiveModel {
        id: NotSet,
        environment_id: Set(report.environment_id.get()),
        snapshot: Set(snapshot),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(due),
        last_error: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
    })
    .exec(db)
    .await
    .map_err(|e| {
        db_err(
            e,
            format!(
                "queueing a GitHub report for environment {}",
                report.environment_id
            ),
        )
    })?;
    Ok(())
}

/// How many of an environment's deployments one report looks at: those
/// still owing GitHub something are the newest few.
const LEDGER_LEN: u64 = 20;

/// The environment's deployments GitHub may still need to hear about
/// (not yet inactive there, or with a commit status or check run not yet
/// final), oldest first.
async fn ledger<C: ConnectionTrait>(
    db: &C,
    environment_id: i64,
) -> Result<Vec<DeploymentLedger>, RepositoryError> {
    let inactive = DeploymentState::Inactive.as_str();
    let pending = CommitState::Pending.as_str();
    let mut rows = deployments::Entity::find()
        .filter(deployments::Column::EnvironmentId.eq(environment_id))
        .filter(
            Condition::any()
                .add(deployments::Column::GithubState.is_null())
                .add(deployments::Column::GithubState.ne(inactive))
                .add(deployments::Column::GithubCommitState.is_null())
                .add(deployments::Column::GithubCommitState.eq(pending))
                .add(deployments::Column::GithubCheckState.is_null())
                .add(
                    deployments::Column::GithubCheckState
                        .like(format!("{}:%", CheckState::Queued.as_str())),
                )
                .add(
                    deployments::Column::GithubCheckState
                        .like(format!("{}:%", CheckState::InProgress.as_str())),
                )
                // A check run still showing buttons: they go once a newer
                // deployment takes them.
                .add(deployments::Column::GithubCheckState.like("%:_%"))
                // The newest: its check run's buttons follow the preview.
                .add(
                    deployments::Column::Id.in_subquery(
                        sea_orm::sea_query::Query::select()
                            .expr(sea_orm::sea_query::Func::max(Expr::col(
                                deployments::Column::Id,
                            )))
                            .from(deployments::Entity)
                            .and_where(deployments::Column::EnvironmentId.eq(environment_id))
                            .to_owned(),
                    ),
                ),
        )
        .order_by_desc(deployments::Column::Id)
        .limit(LEDGER_LEN)
        .all(db)
        .await
        .map_err(|e| db_err(e, "loading the deployment ledger"))?;
    rows.reverse();
    rows.into_iter()
        .map(|row| {
            let bad = |e: String| RepositoryError::Unexpected(corrupt("deployments", row.id, e));
            Ok(DeploymentLedger {
                deployment_id: DeploymentId::new(row.id).map_err(|e| bad(e.to_string()))?,
                commit_sha: CommitSha::parse(&row.commit_sha).map_err(|e| bad(e.to_string()))?,
                status: row
                    .status
                    .parse::<DeploymentStatus>()
                    .map_err(|e| bad(e.to_string()))?,
                error: row.error_message,
                github_deployment_id: row.github_deployment_id,
                reported: row.github_state.as_deref().and_then(|s| s.parse().ok()),
                reported_commit: row
                    .github_commit_state
                    .as_deref()
                    .and_then(|s| s.parse().ok()),
                check_run_id: row.github_check_run_id,
                reported_check: row.github_check_state,
                log_tail: tail(&row.logs, LOG_TAIL_BYTES).to_owned(),
            })
        })
        .collect()
}

/// The end of `text` in at most `max` bytes, from a line start when one is
/// near.
fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    cut.find('\n').map_or(cut, |at| &cut[at + 1..])
}

/// [`ReportOutbox`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlReportOutbox {
    db: DatabaseConnection,
}

impl SqlReportOutbox {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn finish(
        &self,
        id: i64,
        status: &str,
        error: Option<String>,
        next: Option<DateTime<Utc>>,
        delivered: Option<DateTime<Utc>>,
    ) -> Result<(), RepositoryError> {
        let mut update = Entity::update_many()
            .col_expr(Column::Status, Expr::value(status))
            .col_expr(Column::LastError, Expr::value(error))
            .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .filter(Column::Id.eq(id));
        if let Some(at) = next {
            update = update.col_expr(Column::NextAttemptAt, Expr::value(at));
        }
        if let Some(at) = delivered {
            update = update.col_expr(Column::DeliveredAt, Expr::value(at));
        }
        update
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("recording GitHub report {id}")))?;
        Ok(())
    }
}

#[async_trait]
impl ReportOutbox for SqlReportOutbox {
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<PendingReport>, RepositoryError> {
        // The pending reports due longest, read in `next_attempt_at` order
        // from the partial index `ix_github_reports_pending` alone: the
        // status is a literal, not a bind parameter, since only then can
        // PostgreSQL's generic plan (or SQLite's planner) use a partial
        // index. (Grouped by environment in SQL, SQLite walked the whole
        // table through the environment index on every poll.) Their
        // environments, first due first, are the candidates: one PR may
        // have several pending reports.
        let due: Vec<i64> = Entity::find()
            .select_only()
            .column(Column::EnvironmentId)
            .filter(Expr::cust("status = 'pending'"))
            .filter(Column::NextAttemptAt.lte(now))
            .order_by_asc(Column::NextAttemptAt)
            .limit(DUE_ROWS)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| db_err(e, "looking for GitHub reports"))?;
        let mut candidates: Vec<i64> = Vec::with_capacity(CANDIDATES);
        for environment_id in due {
            if !candidates.contains(&environment_id) {
                candidates.push(environment_id);
                if candidates.len() == CANDIDATES {
                    break;
                }
            }
        }
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        for environment_id in candidates {
            let txn = self
                .db
                .begin()
                .await
                .map_err(|e| db_err(e, "opening a transaction"))?;
            let busy = Entity::find()
                .filter(Column::EnvironmentId.eq(environment_id))
                .filter(Column::Status.eq(PENDING))
                .filter(Column::LeaseExpiresAt.gt(now))
                .count(&txn)
                .await
                .map_err(|e| db_err(e, "checking report leases"))?;
            if busy > 0 {
                continue;
            }
            let mut newest = Entity::find()
                .filter(Column::EnvironmentId.eq(environment_id))
                .filter(Column::Status.eq(PENDING))
                .order_by_desc(Column::Id);
            if txn.get_database_backend() == DatabaseBackend::Postgres {
                newest = newest.lock_exclusive();
            }
            let Some(newest) = newest
                .one(&txn)
                .await
                .map_err(|e| db_err(e, "loading the newest report"))?
            else {
                continue;
            };
            // Only this transaction takes the lease: a concurrent claimer
            // finds it taken once this one commits.
            let leased = Entity::update_many()
                .col_expr(Column::LeaseOwner, Expr::value(owner))
                .col_expr(Column::LeaseExpiresAt, Expr::value(until))
                .filter(Column::Id.eq(newest.id))
                .filter(
                    Column::LeaseExpiresAt
                        .is_null()
                        .or(Column::LeaseExpiresAt.lte(now)),
                )
                .exec(&txn)
                .await
                .map_err(|e| db_err(e, "leasing a report"))?;
            if leased.rows_affected != 1 {
                continue;
            }
            Entity::update_many()
                .col_expr(Column::Status, Expr::value("superseded"))
                .filter(Column::EnvironmentId.eq(environment_id))
                .filter(Column::Status.eq(PENDING))
                .filter(Column::Id.lt(newest.id))
                .exec(&txn)
                .await
                .map_err(|e| db_err(e, "superseding older reports"))?;
            let report = parse(&newest)?;
            let found: Option<(Option<i64>, Option<i64>)> =
                environments::Entity::find_by_id(environment_id)
                    .select_only()
                    .column(environments::Column::GithubCommentId)
                    .column(environments::Column::RepositoryId)
                    .into_tuple()
                    .one(&txn)
                    .await
                    .map_err(|e| db_err(e, "loading the comment id"))?;
            let (comment_id, repository_id) = found.unwrap_or_default();
            let ledger = ledger(&txn, environment_id).await?;
            let commands = crate::commands::notes(
                &txn,
                repository_id,
                report.repository.as_str(),
                i64::from(report.pr_number.get()),
            )
            .await?;
            txn.commit()
                .await
                .map_err(|e| db_err(e, "committing the claim"))?;
            return Ok(Some(PendingReport {
                id: newest.id,
                report,
                attempts: u32::try_from(newest.attempts).unwrap_or(0),
                comment_id,
                ledger,
                commands,
            }));
        }
        Ok(None)
    }

    async fn delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), RepositoryError> {
        self.finish(id, "delivered", None, None, Some(now)).await
    }

    async fn retry(
        &self,
        id: i64,
        error: String,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.finish(id, PENDING, Some(error), Some(at), None).await
    }

    async fn failed(&self, id: i64, error: String) -> Result<(), RepositoryError> {
        self.finish(id, "failed", Some(error), None, None).await
    }

    async fn set_comment_id(
        &self,
        environment: EnvironmentId,
        comment_id: i64,
    ) -> Result<(), RepositoryError> {
        environments::Entity::update_many()
            .col_expr(
                environments::Column::GithubCommentId,
                Expr::value(comment_id),
            )
            .filter(environments::Column::Id.eq(environment.get()))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("storing the comment id of {environment}")))?;
        Ok(())
    }

    async fn set_github_deployment_id(
        &self,
        deployment: DeploymentId,
        github_id: i64,
    ) -> Result<(), RepositoryError> {
        deployments::Entity::update_many()
            .col_expr(
                deployments::Column::GithubDeploymentId,
                Expr::value(github_id),
            )
            .filter(deployments::Column::Id.eq(deployment.get()))
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("storing the GitHub deployment of {deployment}")))?;
        Ok(())
    }

    async fn record_check(
        &self,
        deployment: DeploymentId,
        id: Option<i64>,
        told: &str,
    ) -> Result<(), RepositoryError> {
        let mut update = deployments::Entity::update_many()
            .filter(deployments::Column::Id.eq(deployment.get()))
            .col_expr(deployments::Column::GithubCheckState, Expr::value(told));
        if let Some(id) = id {
            update = update.col_expr(deployments::Column::GithubCheckRunId, Expr::value(id));
        }
        update
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("recording the check run of {deployment}")))?;
        Ok(())
    }

    async fn record_reported(
        &self,
        deployment: DeploymentId,
        state: Option<DeploymentState>,
        commit: Option<CommitState>,
    ) -> Result<(), RepositoryError> {
        let mut update =
            deployments::Entity::update_many().filter(deployments::Column::Id.eq(deployment.get()));
        if let Some(state) = state {
            update = update.col_expr(
                deployments::Column::GithubState,
                Expr::value(state.as_str()),
            );
        }
        if let Some(commit) = commit {
            update = update.col_expr(
                deployments::Column::GithubCommitState,
                Expr::value(commit.as_str()),
            );
        }
        if state.is_none() && commit.is_none() {
            return Ok(());
        }
        update
            .exec(&self.db)
            .await
            .map_err(|e| db_err(e, format!("recording what GitHub knows of {deployment}")))?;
        Ok(())
    }

    async fn backlog(&self) -> Result<i64, RepositoryError> {
        let n = Entity::find()
            .filter(Column::Status.eq(PENDING))
            .count(&self.db)
            .await
            .map_err(|e| db_err(e, "counting pending reports"))?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
