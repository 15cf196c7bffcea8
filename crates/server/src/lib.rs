//! The `ephemera` binary: reads configuration, sets up telemetry, wires the
//! adapters to the use cases and runs the CLI (`serve`, `migrate`).
//!
//! This is the only crate that knows every adapter; it holds no business
//! logic of its own.

pub mod cli;
pub mod config;
pub mod send;
pub mod startup;
pub mod supervision;
pub mod telemetry;

pub use config::{ConfigError, Settings};
pub use startup::Application;
