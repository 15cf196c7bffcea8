//! The capabilities use cases need from the outside world, one small trait
//! each. Adapters implement them; tests use the mockall mocks (enable the
//! `mocks` feature from another crate).

mod clock;
mod deployments;
mod environments;
mod health;
mod installations;
mod users;

use thiserror::Error;

pub use clock::{Clock, SystemClock};
pub use deployments::DeploymentRepository;
pub use environments::{EnvironmentFilter, EnvironmentRepository};
pub use health::HealthProbe;
pub use installations::InstallationRepository;
pub use users::UserRepository;

#[cfg(any(test, feature = "mocks"))]
pub use {
    clock::MockClock, deployments::MockDeploymentRepository,
    environments::MockEnvironmentRepository, health::MockHealthProbe,
    installations::MockInstallationRepository, users::MockUserRepository,
};

/// What a store can say went wrong, translated from its driver's errors.
#[derive(Debug, Error)]
pub enum RepositoryError {
    /// A uniqueness rule refused the write (e.g. a second environment for
    /// one repository + PR).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row that should exist does not.
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
