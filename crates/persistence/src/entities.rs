//! SeaORM entities: the rows as the database holds them. They never leave
//! this crate; adapters convert them to domain types with `TryFrom`, so a
//! corrupt row is an error, not a panic.

pub mod deployments;
pub mod environment_status_changes;
pub mod environments;
pub mod github_reports;
pub mod installation_repositories;
pub mod installations;
pub mod leases;
pub mod preview_commands;
pub mod users;
pub mod webhook_deliveries;
