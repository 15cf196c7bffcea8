//! Configuration from environment variables (and `.env`), DESIGN §6.
//! Every variable is documented in docs/configuration.md and .env.example.

use std::fmt;
use std::net::SocketAddr;

use ephemera_domain::DeployPolicy;
use ephemera_http::{DEFAULT_MAX_BODY_BYTES, WebhookSettings};
use secrecy::SecretString;
use thiserror::Error;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://ephemera.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A variable with a value we cannot use; the message names it.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Everything the service reads from its environment.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub webhook: WebhookSettings,
    pub policy: DeployPolicy,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The database URL may carry a password.
        f.debug_struct("Settings")
            .field(
                "database_url",
                &ephemera_persistence::redact_url(&self.database_url),
            )
            .field("listen", &self.listen)
            .field("log_format", &self.log_format)
            .field("webhook", &self.webhook)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let is_sqlite = database_url.starts_with("sqlite:");
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !is_sqlite && !is_postgres {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!(
                    "`{}` is not supported; use sqlite://FILE?mode=rwc or postgres://USER@HOST/DB",
                    ephemera_persistence::redact_url(&database_url)
                ),
            ));
        }

        let listen_raw = get("EPHEMERA_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw.parse::<SocketAddr>().map_err(|_| {
            ConfigError::new(
                "EPHEMERA_LISTEN",
                format!("`{listen_raw}` is not an address like 127.0.0.1:8080 or 0.0.0.0:80"),
            )
        })?;

        let log_format = match get("EPHEMERA_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "EPHEMERA_LOG_FORMAT",
                    format!("`{other}` is not one of pretty, json"),
                ));
            }
        };

        let max_body_bytes = match get("EPHEMERA_WEBHOOK_MAX_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ConfigError::new(
                        "EPHEMERA_WEBHOOK_MAX_BYTES",
                        format!("`{raw}` is not a positive number of bytes"),
                    )
                })?,
        };
        let webhook = WebhookSettings {
            secret: get("GITHUB_WEBHOOK_SECRET").map(SecretString::from),
            max_body_bytes,
        };

        let defaults = DeployPolicy::default();
        let policy = DeployPolicy {
            allow_forks: flag(&get, "EPHEMERA_ALLOW_FORKS", defaults.allow_forks)?,
            trusted_label: get("EPHEMERA_TRUSTED_LABEL").unwrap_or(defaults.trusted_label),
            deploy_drafts: flag(&get, "EPHEMERA_DEPLOY_DRAFTS", defaults.deploy_drafts)?,
            required_label: get("EPHEMERA_REQUIRED_LABEL"),
        };

        Ok(Self {
            database_url,
            listen,
            log_format,
            webhook,
            policy,
        })
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`).
fn flag(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError::new(
            name,
            format!("`{other}` is not true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, "sqlite://ephemera.db?mode=rwc");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert!(s.webhook.secret.is_none());
        assert_eq!(s.webhook.max_body_bytes, 25 * 1024 * 1024);
        assert_eq!(s.policy, DeployPolicy::default());
    }

    #[test]
    fn webhook_and_policy_settings() {
        let s = settings(&[
            ("GITHUB_WEBHOOK_SECRET", "s3cret-value"),
            ("EPHEMERA_WEBHOOK_MAX_BYTES", "1024"),
            ("EPHEMERA_ALLOW_FORKS", "true"),
            ("EPHEMERA_TRUSTED_LABEL", "ok-to-test"),
            ("EPHEMERA_DEPLOY_DRAFTS", "1"),
            ("EPHEMERA_REQUIRED_LABEL", "preview"),
        ])
        .unwrap();
        assert_eq!(s.webhook.max_body_bytes, 1024);
        assert!(s.policy.allow_forks && s.policy.deploy_drafts);
        assert_eq!(s.policy.trusted_label, "ok-to-test");
        assert_eq!(s.policy.required_label.as_deref(), Some("preview"));
        assert!(
            !format!("{s:?}").contains("s3cret-value"),
            "secret kept out of Debug"
        );

        let err = settings(&[("EPHEMERA_ALLOW_FORKS", "sure")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_ALLOW_FORKS: `sure` is not true or false"
        );
        let err = settings(&[("EPHEMERA_WEBHOOK_MAX_BYTES", "-5")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_WEBHOOK_MAX_BYTES");
    }

    #[test]
    fn postgres_and_json_logs() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/eph"),
            ("EPHEMERA_LISTEN", "0.0.0.0:9000"),
            ("EPHEMERA_LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let err = settings(&[("DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let err = settings(&[("EPHEMERA_LISTEN", "localhost")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_LISTEN: `localhost` is not an address like 127.0.0.1:8080 or 0.0.0.0:80"
        );

        let err = settings(&[("EPHEMERA_LOG_FORMAT", "xml")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_LOG_FORMAT");
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        let s = settings(&[("DATABASE_URL", "postgres://app:hunter2@db/eph")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
