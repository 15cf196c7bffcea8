//! The heart of ephemera: the values a preview environment is made of and the
//! lifecycle state machines of environments and deployments.
//!
//! Everything here is pure: no I/O, no clock, no framework or driver types
//! (`sea_orm`, `actix_web`, `octocrab`, `kube` must never appear). Raw input
//! is parsed into these types once, at the edge; a value that exists is valid.

mod command;
mod delivery;
mod deployment;
mod environment;
mod error;
mod ids;
mod installation;
mod namespace;
mod policy;
mod preview_url;
mod repo_config;
mod report;
mod repository;
mod string_enum;
mod user;

pub use command::{CommentCommand, PreviewCommand};
pub use delivery::{DeliveryId, DeliveryOutcome, DeliveryRecord};
pub use deployment::{
    Deployment, DeploymentRecord, DeploymentStatus, MAX_LOG_BYTES, NewDeployment, skipped_because,
};
pub use environment::{
    DueWork, Environment, EnvironmentRecord, EnvironmentStatus, NewEnvironment, Owner, StatusChange,
};
pub use error::{InvalidTransition, ValidationError};
pub use ids::{CommitSha, DeploymentId, EnvironmentId, GithubUserId, InstallationId, PrNumber};
pub use installation::{AllowedOwners, Installation, InstallationStatus, InstalledRepository};
pub use namespace::{MAX_PREFIX_LEN, Namespace};
pub use policy::{DeployPolicy, PolicyDecision, PullRequestFacts, SkipReason};
pub use preview_url::PreviewUrlTemplate;
pub use repo_config::{
    Admission, ConfigBounds, ConfigKey, PrSubject, PreviewMode, RepoConfigFile, RepoRules,
    ResolvedConfig, RuleSkip, SlotUse, ValueSource, admit, check_glob, format_duration, resolve,
};
pub use report::{DeploymentSnapshot, PreviewReport};
pub use repository::RepositoryFullName;
pub use user::{GithubUser, User};
