//! ephemera's use cases and the ports (traits) they drive.
//!
//! Use cases depend on the domain and on the ports declared here; adapters
//! (persistence, http, github, provisioner) implement or call them. Nothing
//! here knows SQL, HTTP or any driver: `sea_orm`, `actix_web`, `octocrab` and
//! `kube` must never appear in this crate.

pub mod commands;
pub mod delivery_log;
#[cfg(test)]
mod fixtures;
pub mod pagination;
pub mod ports;
pub mod pr_commands;
pub mod queries;
pub mod reconciler;
pub mod repo_config;
pub mod reporting;
pub mod retention;
pub mod sync;
pub mod webhooks;
pub mod worker;

pub use pagination::{Cursor, Page, PageError, PageRequest};
