//! Provisioner adapters: what actually creates, updates and destroys a
//! preview environment, behind the `Provisioner` port of
//! `ephemera-application`.
//!
//! - [`DryRunProvisioner`]: creates nothing and says what it would do; for
//!   trying ephemera locally.
//! - [`CommandProvisioner`]: runs an operator's shell command (helm,
//!   kubectl, docker compose, terraform…).
//! - [`KubernetesProvisioner`]: a namespace per PR with the operator's
//!   manifests applied into it (kube-rs, server-side apply).
//!
//! This crate depends on domain and application, never on another adapter.

mod command;
mod dry_run;
mod kubernetes;
mod preview_url;

pub use command::{CommandConfig, CommandProvisioner, OWN_SECRETS, PassEnv, SleepCommands};
pub use dry_run::DryRunProvisioner;
pub use kubernetes::{
    ContainerLimits, DEFAULT_EGRESS_DENY, DEFAULT_INGRESS_NAMESPACES, DEFAULT_LIMIT_RANGE,
    DEFAULT_RESOURCE_QUOTA, Instance, Isolation, KubernetesConfig, KubernetesProvisioner,
    NetworkIsolation, PodSecurityLevel, Quantities, parse_cidrs, parse_namespaces,
};
pub use preview_url::PreviewUrlPattern;
