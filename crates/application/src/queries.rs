//! Read-side use cases behind the REST API.

use std::sync::Arc;

use ephemera_domain::{
    Deployment, DeploymentId, Environment, EnvironmentId, Namespace, StatusChange,
};
use thiserror::Error;

use crate::ports::{
    DeploymentRepository, EnvironmentFilter, EnvironmentRepository, RepositoryError,
};
use crate::{Page, PageRequest};

/// Why a read could not answer: the store cannot be reached right now
/// (worth retrying: 503) or something unexpected (500). The store's error
/// is kept as the source either way.
#[derive(Debug, Error)]
pub enum ReadFailure {
    #[error("{context}: the database is unavailable")]
    Unavailable {
        context: String,
        #[source]
        source: RepositoryError,
    },
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl ReadFailure {
    /// Classifies a store error met while `context`.
    pub fn from_store(err: RepositoryError, context: impl Into<String>) -> Self {
        let context = context.into();
        match err {
            RepositoryError::Unavailable { .. } => Self::Unavailable {
                context,
                source: err,
            },
            other => Self::Unexpected(anyhow::Error::new(other).context(context)),
        }
    }
}

#[derive(Debug, Error)]
pub enum GetEnvironmentError {
    #[error("no environment with id {0}")]
    NotFound(EnvironmentId),
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

#[derive(Debug, Error)]
pub enum GetEnvironmentByNamespaceError {
    #[error("no environment in namespace {0}")]
    NotFound(Namespace),
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

#[derive(Debug, Error)]
pub enum ListEnvironmentsError {
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

#[derive(Debug, Error)]
pub enum ListDeploymentsError {
    #[error("no environment with id {0}")]
    EnvironmentNotFound(EnvironmentId),
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

#[derive(Debug, Error)]
pub enum GetDeploymentError {
    #[error("no deployment with id {0}")]
    NotFound(DeploymentId),
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

fn failed(err: RepositoryError, what: String) -> ReadFailure {
    ReadFailure::from_store(err, what)
}

/// Everything an operator or tool can read about environments.
#[derive(Clone)]
pub struct EnvironmentQueries {
    environments: Arc<dyn EnvironmentRepository>,
    deployments: Arc<dyn DeploymentRepository>,
}

impl std::fmt::Debug for EnvironmentQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentQueries").finish_non_exhaustive()
    }
}

impl EnvironmentQueries {
    pub fn new(
        environments: Arc<dyn EnvironmentRepository>,
        deployments: Arc<dyn DeploymentRepository>,
    ) -> Self {
        Self {
            environments,
            deployments,
        }
    }

    #[tracing::instrument(skip(self))]
    pub async fn list_environments(
        &self,
        filter: &EnvironmentFilter,
        page: PageRequest,
    ) -> Result<Page<Environment>, ListEnvironmentsError> {
        let rows = self
            .environments
            .list(filter, page)
            .await
            .map_err(|e| failed(e, "listing environments".into()))?;
        Ok(page.into_page(rows, |env| env.id.get()))
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_environment(
        &self,
        id: EnvironmentId,
    ) -> Result<Environment, GetEnvironmentError> {
        self.environments
            .get(id)
            .await
            .map_err(|e| failed(e, format!("loading environment {id}")))?
            .ok_or(GetEnvironmentError::NotFound(id))
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_environment_by_namespace(
        &self,
        namespace: &Namespace,
    ) -> Result<Environment, GetEnvironmentByNamespaceError> {
        self.environments
            .get_by_namespace(namespace)
            .await
            .map_err(|e| failed(e, format!("loading environment in namespace {namespace}")))?
            .ok_or_else(|| GetEnvironmentByNamespaceError::NotFound(namespace.clone()))
    }

    /// An environment's deployment history, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_deployments(
        &self,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Page<Deployment>, ListDeploymentsError> {
        let exists = self
            .environments
            .get(environment_id)
            .await
            .map_err(|e| failed(e, format!("loading environment {environment_id}")))?
            .is_some();
        if !exists {
            return Err(ListDeploymentsError::EnvironmentNotFound(environment_id));
        }
        let rows = self
            .deployments
            .list_for_environment(environment_id, page)
            .await
            .map_err(|e| {
                failed(
                    e,
                    format!("listing deployments of environment {environment_id}"),
                )
            })?;
        Ok(page.into_page(rows, |d| d.id.get()))
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_deployment(&self, id: DeploymentId) -> Result<Deployment, GetDeploymentError> {
        self.deployments
            .get(id)
            .await
            .map_err(|e| failed(e, format!("loading deployment {id}")))?
            .ok_or(GetDeploymentError::NotFound(id))
    }

    /// The `limit` newest changes of an environment's status, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn status_history(
        &self,
        id: EnvironmentId,
        limit: u64,
    ) -> Result<Vec<StatusChange>, ReadFailure> {
        self.environments
            .status_history(id, limit)
            .await
            .map_err(|e| failed(e, format!("loading the status history of environment {id}")))
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::Cursor;
    use crate::fixtures::{deployment_record, environment_record};
    use crate::ports::{MockDeploymentRepository, MockEnvironmentRepository};

    fn environment(id: i64) -> Environment {
        Environment::rehydrate(environment_record(id, "octo/web", id))
    }

    fn deployment(id: i64, environment_id: i64) -> Deployment {
        Deployment::rehydrate(deployment_record(
            id,
            EnvironmentId::new(environment_id).unwrap(),
            'd',
        ))
    }

    fn queries(
        envs: MockEnvironmentRepository,
        deps: MockDeploymentRepository,
    ) -> EnvironmentQueries {
        EnvironmentQueries::new(Arc::new(envs), Arc::new(deps))
    }

    #[tokio::test]
    async fn list_passes_filter_and_page_and_points_at_next_page() {
        let filter = EnvironmentFilter {
            active_only: true,
            ..Default::default()
        };
        let page = PageRequest::parse(Some(2), None).unwrap();
        let mut envs = MockEnvironmentRepository::new();
        envs.expect_list()
            .with(eq(filter.clone()), eq(page))
            .times(1)
            .returning(|_, _| Ok(vec![environment(5), environment(4), environment(3)]));

        let result = queries(envs, MockDeploymentRepository::new())
            .list_environments(&filter, page)
            .await
            .unwrap();

        let ids: Vec<_> = result.items.iter().map(|e| e.id.get()).collect();
        assert_eq!(ids, vec![5, 4]);
        assert_eq!(result.next, Some(Cursor { before_id: 4 }));
    }

    #[tokio::test]
    async fn missing_environment_is_not_found() {
        let mut envs = MockEnvironmentRepository::new();
        envs.expect_get().returning(|_| Ok(None));
        let id = EnvironmentId::new(9).unwrap();

        let err = queries(envs, MockDeploymentRepository::new())
            .get_environment(id)
            .await
            .unwrap_err();

        assert!(matches!(err, GetEnvironmentError::NotFound(got) if got == id));
        assert_eq!(err.to_string(), "no environment with id 9");
    }

    #[tokio::test]
    async fn store_failure_is_unexpected_with_context() {
        let mut envs = MockEnvironmentRepository::new();
        envs.expect_get().returning(|_| {
            Err(RepositoryError::Unexpected(anyhow::anyhow!(
                "connection reset"
            )))
        });

        let err = queries(envs, MockDeploymentRepository::new())
            .get_environment(EnvironmentId::new(3).unwrap())
            .await
            .unwrap_err();

        let GetEnvironmentError::Failed(ReadFailure::Unexpected(inner)) = err else {
            panic!("expected an unexpected error");
        };
        assert_eq!(
            format!("{inner:#}"),
            "loading environment 3: connection reset"
        );
    }

    #[tokio::test]
    async fn an_unavailable_store_is_unavailable_with_its_cause() {
        let mut envs = MockEnvironmentRepository::new();
        envs.expect_list()
            .returning(|_, _| Err(RepositoryError::unavailable("reading", "pool timed out")));

        let err = queries(envs, MockDeploymentRepository::new())
            .list_environments(
                &EnvironmentFilter::default(),
                PageRequest::parse(None, None).unwrap(),
            )
            .await
            .unwrap_err();

        let ListEnvironmentsError::Failed(failure @ ReadFailure::Unavailable { .. }) = err else {
            panic!("expected unavailable, got {err:?}");
        };
        // The whole chain is kept: the read, the store, the driver.
        let source = std::error::Error::source(&failure).unwrap();
        assert_eq!(source.to_string(), "database unavailable while reading");
        assert_eq!(
            source.source().map(ToString::to_string).as_deref(),
            Some("pool timed out")
        );
    }

    #[tokio::test]
    async fn deployments_of_an_unknown_environment_are_not_listed() {
        let mut envs = MockEnvironmentRepository::new();
        envs.expect_get().returning(|_| Ok(None));
        let mut deps = MockDeploymentRepository::new();
        deps.expect_list_for_environment().never();

        let err = queries(envs, deps)
            .list_deployments(EnvironmentId::new(1).unwrap(), PageRequest::default())
            .await
            .unwrap_err();

        assert!(matches!(err, ListDeploymentsError::EnvironmentNotFound(_)));
    }

    #[tokio::test]
    async fn deployments_are_listed_for_a_known_environment() {
        let mut envs = MockEnvironmentRepository::new();
        envs.expect_get()
            .returning(|id| Ok(Some(environment(id.get()))));
        let mut deps = MockDeploymentRepository::new();
        deps.expect_list_for_environment()
            .with(
                eq(EnvironmentId::new(1).unwrap()),
                eq(PageRequest::default()),
            )
            .returning(|_, _| Ok(vec![deployment(12, 1), deployment(11, 1)]));

        let page = queries(envs, deps)
            .list_deployments(EnvironmentId::new(1).unwrap(), PageRequest::default())
            .await
            .unwrap();

        let ids: Vec<_> = page.items.iter().map(|d| d.id.get()).collect();
        assert_eq!(ids, vec![12, 11]);
        assert_eq!(page.next, None);
    }

    #[tokio::test]
    async fn get_deployment_by_id() {
        let mut deps = MockDeploymentRepository::new();
        deps.expect_get()
            .returning(|id| Ok((id.get() == 4).then(|| deployment(4, 1))));
        let q = queries(MockEnvironmentRepository::new(), deps);

        assert_eq!(
            q.get_deployment(DeploymentId::new(4).unwrap())
                .await
                .unwrap()
                .id
                .get(),
            4
        );
        assert!(matches!(
            q.get_deployment(DeploymentId::new(5).unwrap()).await,
            Err(GetDeploymentError::NotFound(_))
        ));
    }
}
