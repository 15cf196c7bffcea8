//! Configuration from environment variables (and `.env`), DESIGN §6.
//! Every variable is documented in docs/configuration.md and .env.example.

use std::fmt;
use std::net::SocketAddr;

use std::time::Duration;

use ephemera_application::retention::RetentionConfig;
use ephemera_domain::{AllowedOwners, DeployPolicy, PreviewUrlTemplate};
use ephemera_http::{
    ApiToken, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_READ_TIMEOUT,
    MIN_SECRET_CHARS, WebhookSettings,
};
use ephemera_provisioner::{
    CommandConfig, ContainerLimits, Instance, Isolation, KubernetesConfig, NetworkIsolation,
    PassEnv, PodSecurityLevel, PreviewUrlPattern, Quantities,
};
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

/// Which provisioner creates the environments (`EPHEMERA_PROVISIONER`).
#[derive(Debug, Clone)]
pub enum ProvisionerSettings {
    DryRun,
    Command(CommandConfig),
    Kubernetes(KubernetesConfig),
}

/// `GITHUB_APP_ID`, the App's private key and `GITHUB_API_URL`: GitHub
/// reporting is on when these are set.
#[derive(Clone)]
pub struct GitHubSettings {
    pub app_id: u64,
    pub private_key: SecretString,
    pub api_url: String,
}

impl fmt::Debug for GitHubSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubSettings")
            .field("app_id", &self.app_id)
            .field("private_key", &"[redacted]")
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// How the workers behave.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `EPHEMERA_WORKERS`: workers inside `serve` (and `worker`).
    pub count: usize,
    pub lease: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll: Duration,
    /// `EPHEMERA_ENVIRONMENT_TTL`: idle environments are destroyed.
    pub environment_ttl: Option<Duration>,
    /// `EPHEMERA_GITHUB_SYNC_INTERVAL`: drift repair and missed-delivery
    /// recovery (with GitHub reporting on).
    pub github_sync: Duration,
    /// `EPHEMERA_GITHUB_SYNC_BUDGET`: requests an hour drift repair may
    /// spend (a `304` is free), spread over its passes.
    pub github_sync_budget: u32,
    /// `EPHEMERA_GITHUB_REPORT_DELAY`: how long a report to GitHub waits,
    /// so quick deployments are reported by their outcome alone.
    pub report_delay: Duration,
    /// `EPHEMERA_RETENTION_*`: how long old records are kept.
    pub retention: RetentionConfig,
    /// `EPHEMERA_RETENTION_INTERVAL`: how often they are pruned.
    pub retention_every: Duration,
}

/// Everything the service reads from its environment.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub webhook: WebhookSettings,
    pub policy: DeployPolicy,
    /// `EPHEMERA_ALLOWED_OWNERS`: accounts whose installations are served.
    pub allowed_owners: AllowedOwners,
    /// `EPHEMERA_API_TOKEN`: writes need it, and reads unless
    /// `anonymous_reads`.
    pub api_token: Option<ApiToken>,
    /// `EPHEMERA_ANONYMOUS_READS`: serve `/api/v1` reads and `/metrics` to
    /// anyone, on purpose.
    pub anonymous_reads: bool,
    /// `EPHEMERA_METRICS_LISTEN`: serve `/metrics` there, without a token,
    /// and not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    pub provisioner: ProvisionerSettings,
    pub preview_url: PreviewUrlTemplate,
    pub workers: WorkerSettings,
    /// `None`: GitHub reporting is off.
    pub github: Option<GitHubSettings>,
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
            .field("allowed_owners", &self.allowed_owners)
            .field("api_token", &self.api_token)
            .field("anonymous_reads", &self.anonymous_reads)
            .field("metrics_listen", &self.metrics_listen)
            .field("provisioner", &self.provisioner)
            .field("preview_url", &self.preview_url)
            .field("workers", &self.workers)
            .field("github", &self.github)
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
        let listen = address("EPHEMERA_LISTEN", &listen_raw)?;
        let metrics_listen = get("EPHEMERA_METRICS_LISTEN")
            .map(|raw| address("EPHEMERA_METRICS_LISTEN", &raw))
            .transpose()?;

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
        // A signed body is copied once for the JSON parser: the largest
        // must fit twice.
        let least = max_body_bytes.saturating_mul(2);
        let max_buffered_bytes = match get("EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES") {
            None => DEFAULT_MAX_BUFFERED_BYTES.max(least),
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= least)
                .ok_or_else(|| {
                    ConfigError::new(
                        "EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES",
                        format!(
                            "`{raw}` is not a number of bytes of at least twice EPHEMERA_WEBHOOK_MAX_BYTES ({least}): the largest body and its copy for parsing must fit"
                        ),
                    )
                })?,
        };
        let secret = get("GITHUB_WEBHOOK_SECRET");
        if let Some(chars) = secret
            .as_deref()
            .map(|s| s.chars().count())
            .filter(|n| *n < MIN_SECRET_CHARS)
        {
            return Err(ConfigError::new(
                "GITHUB_WEBHOOK_SECRET",
                format!(
                    "is {chars} characters long; use at least {MIN_SECRET_CHARS} (e.g. `openssl rand -hex 32`), the same on the GitHub App"
                ),
            ));
        }
        let webhook = WebhookSettings {
            secret: secret.map(SecretString::from),
            max_body_bytes,
            max_buffered_bytes,
            read_timeout: duration(&get, "EPHEMERA_WEBHOOK_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)?,
        };
        let api_token = get("EPHEMERA_API_TOKEN")
            .map(|raw| ApiToken::parse(&raw))
            .transpose()
            .map_err(|e| ConfigError::new("EPHEMERA_API_TOKEN", e.to_string()))?;

        let defaults = DeployPolicy::default();
        let policy = DeployPolicy {
            allow_forks: flag(&get, "EPHEMERA_ALLOW_FORKS", defaults.allow_forks)?,
            trusted_label: get("EPHEMERA_TRUSTED_LABEL").unwrap_or(defaults.trusted_label),
            deploy_drafts: flag(&get, "EPHEMERA_DEPLOY_DRAFTS", defaults.deploy_drafts)?,
            required_label: get("EPHEMERA_REQUIRED_LABEL"),
        };

        let preview_url = match get("EPHEMERA_PREVIEW_URL_TEMPLATE") {
            None => PreviewUrlTemplate::default(),
            Some(raw) => PreviewUrlTemplate::parse(&raw)
                .map_err(|e| ConfigError::new("EPHEMERA_PREVIEW_URL_TEMPLATE", e.reason))?,
        };

        let provisioner = match get("EPHEMERA_PROVISIONER").as_deref() {
            None | Some("dry-run") => ProvisionerSettings::DryRun,
            Some("command") => {
                let required = |name: &'static str| {
                    get(name).ok_or_else(|| {
                        ConfigError::new(name, "must be set when EPHEMERA_PROVISIONER=command")
                    })
                };
                ProvisionerSettings::Command(CommandConfig {
                    provision: required("EPHEMERA_PROVISION_COMMAND")?,
                    destroy: required("EPHEMERA_DESTROY_COMMAND")?,
                    timeout: duration(
                        &get,
                        "EPHEMERA_COMMAND_TIMEOUT",
                        Duration::from_secs(15 * 60),
                    )?,
                    max_log_bytes: 256 * 1024,
                    pass_env: get("EPHEMERA_COMMAND_PASS_ENV")
                        .map(|raw| PassEnv::parse(&raw))
                        .transpose()
                        .map_err(|e| ConfigError::new("EPHEMERA_COMMAND_PASS_ENV", e))?
                        .unwrap_or_default(),
                    url_pattern: get("EPHEMERA_PREVIEW_URL_PATTERN")
                        .map(|raw| PreviewUrlPattern::parse(raw.trim()))
                        .transpose()
                        .map_err(|e| ConfigError::new("EPHEMERA_PREVIEW_URL_PATTERN", e))?,
                })
            }
            Some("kubernetes") => {
                let instance = match get("EPHEMERA_INSTANCE") {
                    None => Instance::default(),
                    Some(raw) => Instance::parse(raw.trim())
                        .map_err(|e| ConfigError::new("EPHEMERA_INSTANCE", e))?,
                };
                let dir = get("EPHEMERA_K8S_MANIFESTS_DIR").ok_or_else(|| {
                    ConfigError::new(
                        "EPHEMERA_K8S_MANIFESTS_DIR",
                        "must name the folder of manifests when EPHEMERA_PROVISIONER=kubernetes",
                    )
                })?;
                let manifests_dir = std::path::PathBuf::from(&dir);
                if !manifests_dir.is_dir() {
                    return Err(ConfigError::new(
                        "EPHEMERA_K8S_MANIFESTS_DIR",
                        format!("`{dir}` is not a folder"),
                    ));
                }
                ProvisionerSettings::Kubernetes(KubernetesConfig {
                    manifests_dir,
                    ready_timeout: duration(
                        &get,
                        "EPHEMERA_K8S_READY_TIMEOUT",
                        Duration::from_secs(300),
                    )?,
                    poll: Duration::from_secs(2),
                    terminating_recheck: Duration::from_secs(5),
                    instance,
                    isolation: isolation(&get)?,
                })
            }
            Some(other) => {
                return Err(ConfigError::new(
                    "EPHEMERA_PROVISIONER",
                    format!("`{other}` is not one of dry-run, command, kubernetes"),
                ));
            }
        };

        let count = match get("EPHEMERA_WORKERS") {
            None => 2,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 64)
                .ok_or_else(|| {
                    ConfigError::new(
                        "EPHEMERA_WORKERS",
                        format!("`{raw}` is not a number from 0 to 64"),
                    )
                })?,
        };
        let max_attempts = match get("EPHEMERA_MAX_ATTEMPTS") {
            None => 5,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ConfigError::new(
                        "EPHEMERA_MAX_ATTEMPTS",
                        format!("`{raw}` is not a number of at least 1"),
                    )
                })?,
        };
        let retention = RetentionConfig::default();
        let workers = WorkerSettings {
            count,
            lease: duration(&get, "EPHEMERA_WORKER_LEASE", Duration::from_secs(60))?,
            max_attempts,
            retry_base: duration(&get, "EPHEMERA_RETRY_BASE", Duration::from_secs(5))?,
            retry_max: duration(&get, "EPHEMERA_RETRY_MAX", Duration::from_secs(300))?,
            poll: duration(&get, "EPHEMERA_WORKER_POLL", Duration::from_secs(1))?,
            github_sync: duration(
                &get,
                "EPHEMERA_GITHUB_SYNC_INTERVAL",
                Duration::from_secs(300),
            )?,
            github_sync_budget: match get("EPHEMERA_GITHUB_SYNC_BUDGET") {
                None => 400,
                Some(raw) => raw
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        ConfigError::new(
                            "EPHEMERA_GITHUB_SYNC_BUDGET",
                            format!("`{raw}` is not a number of requests an hour (1 or more)"),
                        )
                    })?,
            },
            report_delay: duration(&get, "EPHEMERA_GITHUB_REPORT_DELAY", Duration::from_secs(2))?,
            environment_ttl: get("EPHEMERA_ENVIRONMENT_TTL")
                .map(|raw| parse_duration("EPHEMERA_ENVIRONMENT_TTL", &raw))
                .transpose()?,
            retention: RetentionConfig {
                deliveries: duration(&get, "EPHEMERA_RETENTION_DELIVERIES", retention.deliveries)?,
                reports: duration(&get, "EPHEMERA_RETENTION_REPORTS", retention.reports)?,
                logs_after_destroy: duration(
                    &get,
                    "EPHEMERA_RETENTION_LOGS",
                    retention.logs_after_destroy,
                )?,
            },
            retention_every: duration(
                &get,
                "EPHEMERA_RETENTION_INTERVAL",
                Duration::from_secs(60 * 60),
            )?,
        };

        let github = github_settings(&get)?;

        Ok(Self {
            database_url,
            listen,
            log_format,
            webhook,
            policy,
            allowed_owners: AllowedOwners::only(
                get("EPHEMERA_ALLOWED_OWNERS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned),
            ),
            github,
            api_token,
            anonymous_reads: flag(&get, "EPHEMERA_ANONYMOUS_READS", false)?,
            metrics_listen,
            provisioner,
            preview_url,
            workers,
        })
    }
}

impl Settings {
    /// What `serve` needs beyond parsing: without a token, reads are open
    /// to whoever reaches the listener, so a listener others can reach
    /// needs either a token or an explicit opt-in.
    pub fn check_serve(&self) -> Result<(), ConfigError> {
        if self.api_token.is_none() && !self.anonymous_reads && !self.listen.ip().is_loopback() {
            return Err(ConfigError::new(
                "EPHEMERA_API_TOKEN",
                format!(
                    "unset while EPHEMERA_LISTEN ({}) is not a loopback address, so anyone reaching it could read environments, deployment logs and deliveries; set EPHEMERA_API_TOKEN (reads then need it), or EPHEMERA_ANONYMOUS_READS=true to serve reads to anyone on purpose",
                    self.listen
                ),
            ));
        }
        Ok(())
    }

    /// Whether reads need no token: on purpose, or locally without one.
    pub fn reads_are_anonymous(&self) -> bool {
        self.anonymous_reads || self.api_token.is_none()
    }
}

fn address(name: &'static str, raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.trim().parse::<SocketAddr>().map_err(|_| {
        ConfigError::new(
            name,
            format!("`{raw}` is not an address like 127.0.0.1:8080 or 0.0.0.0:80"),
        )
    })
}

fn github_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<GitHubSettings>, ConfigError> {
    let api_url = get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".to_owned());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(ConfigError::new(
            "GITHUB_API_URL",
            format!("`{api_url}` is not an http(s) URL"),
        ));
    }
    let key = match (
        get("GITHUB_APP_PRIVATE_KEY"),
        get("GITHUB_APP_PRIVATE_KEY_PATH"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "GITHUB_APP_PRIVATE_KEY_PATH",
                "set either GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, not both",
            ));
        }
        // Keys pasted into one-line env files carry `\n` for newlines.
        (Some(pem), None) => Some(pem.replace("\\n", "\n")),
        (None, Some(path)) => Some(std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                "GITHUB_APP_PRIVATE_KEY_PATH",
                format!("cannot read `{path}`: {e}"),
            )
        })?),
        (None, None) => None,
    };
    match (get("GITHUB_APP_ID"), key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            "GITHUB_APP_PRIVATE_KEY",
            "GITHUB_APP_ID is set: set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH too",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "GITHUB_APP_ID",
            "a GitHub App private key is set: set GITHUB_APP_ID (the App's numeric id) too",
        )),
        (Some(raw), Some(pem)) => {
            let app_id = raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ConfigError::new(
                        "GITHUB_APP_ID",
                        format!("`{raw}` is not the App's numeric id"),
                    )
                })?;
            Ok(Some(GitHubSettings {
                app_id,
                private_key: SecretString::from(pem),
                api_url,
            }))
        }
    }
}

/// Longer than any setting needs, short enough that "now minus it" is
/// always a date.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// What fences each PR namespace in (kubernetes provisioner); every part
/// on by default.
fn isolation(get: &impl Fn(&str) -> Option<String>) -> Result<Isolation, ConfigError> {
    let defaults = Isolation::default();
    let setting = |name: &'static str| get(name).map(|raw| (name, raw.trim().to_owned()));
    let pod_security = match setting("EPHEMERA_K8S_POD_SECURITY") {
        None => defaults.pod_security,
        Some((name, raw)) => {
            PodSecurityLevel::parse(&raw).map_err(|e| ConfigError::new(name, e))?
        }
    };
    let resource_quota = match setting("EPHEMERA_K8S_RESOURCE_QUOTA") {
        None => defaults.resource_quota,
        Some((_, raw)) if raw == "off" => None,
        Some((name, raw)) => Some(Quantities::parse(&raw).map_err(|e| ConfigError::new(name, e))?),
    };
    let limit_range = match setting("EPHEMERA_K8S_LIMIT_RANGE") {
        None => defaults.limit_range,
        Some((_, raw)) if raw == "off" => None,
        Some((name, raw)) => {
            Some(ContainerLimits::parse(&raw).map_err(|e| ConfigError::new(name, e))?)
        }
    };
    let network_policy = if flag(get, "EPHEMERA_K8S_NETWORK_POLICY", true)? {
        let default = defaults.network_policy.unwrap_or_default();
        Some(NetworkIsolation {
            ingress_namespaces: match setting("EPHEMERA_K8S_INGRESS_NAMESPACES") {
                None => default.ingress_namespaces,
                Some((name, raw)) => ephemera_provisioner::parse_namespaces(&raw)
                    .map_err(|e| ConfigError::new(name, e))?,
            },
            egress_deny: match setting("EPHEMERA_K8S_EGRESS_DENY") {
                None => default.egress_deny,
                Some((_, raw)) if raw == "none" => Vec::new(),
                Some((name, raw)) => ephemera_provisioner::parse_cidrs(&raw)
                    .map_err(|e| ConfigError::new(name, e))?,
            },
        })
    } else {
        None
    };
    Ok(Isolation {
        pod_security,
        resource_quota,
        limit_range,
        network_policy,
    })
}

fn parse_duration(name: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(raw.trim())
        .ok()
        .filter(|d| !d.is_zero() && *d <= MAX_DURATION)
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!("`{raw}` is not a duration like 30s, 15m or 72h (at most 100 years)"),
            )
        })
}

fn duration(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    get(name).map_or(Ok(default), |raw| parse_duration(name, &raw))
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
    fn retention_settings_and_absurd_durations() {
        let s = settings(&[
            ("EPHEMERA_RETENTION_DELIVERIES", "10d"),
            ("EPHEMERA_RETENTION_LOGS", "36h"),
        ])
        .unwrap();
        assert_eq!(
            s.workers.retention.deliveries,
            Duration::from_secs(10 * 86_400)
        );
        assert_eq!(
            s.workers.retention.logs_after_destroy,
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(s.workers.retention.reports, Duration::from_secs(7 * 86_400));
        assert_eq!(s.workers.retention_every, Duration::from_secs(3600));
        // Refused at start-up rather than overflowing date arithmetic later.
        for name in ["EPHEMERA_ENVIRONMENT_TTL", "EPHEMERA_RETENTION_REPORTS"] {
            let err = settings(&[(name, "200y")]).unwrap_err();
            assert_eq!(err.variable, name);
        }
    }

    #[test]
    fn webhook_and_policy_settings() {
        let s = settings(&[
            ("GITHUB_WEBHOOK_SECRET", "s3cret-value-0123456789"),
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
    fn github_reporting_needs_both_id_and_key() {
        assert!(settings(&[]).unwrap().github.is_none());
        let err = settings(&[("GITHUB_APP_ID", "42")]).unwrap_err();
        assert_eq!(err.variable, "GITHUB_APP_PRIVATE_KEY");
        let err = settings(&[("GITHUB_APP_PRIVATE_KEY", "pem")]).unwrap_err();
        assert_eq!(err.variable, "GITHUB_APP_ID");
        let err = settings(&[
            ("GITHUB_APP_ID", "42"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", "/no/such.pem"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "GITHUB_APP_PRIVATE_KEY_PATH");
        let s = settings(&[
            ("GITHUB_APP_ID", "42"),
            (
                "GITHUB_APP_PRIVATE_KEY",
                "-----BEGIN-----\\nsecret-key-body\\n-----END-----",
            ),
            ("GITHUB_API_URL", "https://github.example.com/api/v3"),
        ])
        .unwrap();
        let github = s.github.clone().unwrap();
        assert_eq!(github.app_id, 42);
        assert_eq!(github.api_url, "https://github.example.com/api/v3");
        assert!(!format!("{s:?}").contains("secret-key-body"));
    }

    #[test]
    fn worker_and_provisioner_settings() {
        let s = settings(&[]).unwrap();
        assert!(matches!(s.provisioner, ProvisionerSettings::DryRun));
        assert_eq!(s.workers.count, 2);
        assert_eq!(s.workers.environment_ttl, None);

        let s = settings(&[
            ("EPHEMERA_PROVISIONER", "command"),
            ("EPHEMERA_PROVISION_COMMAND", "helm upgrade --install"),
            ("EPHEMERA_DESTROY_COMMAND", "helm uninstall"),
            ("EPHEMERA_COMMAND_TIMEOUT", "10m"),
            ("EPHEMERA_ENVIRONMENT_TTL", "72h"),
            ("EPHEMERA_WORKERS", "0"),
            ("EPHEMERA_API_TOKEN", "t0ken-value-0123456789"),
        ])
        .unwrap();
        let ProvisionerSettings::Command(command) = &s.provisioner else {
            panic!("command provisioner expected");
        };
        assert_eq!(command.timeout, Duration::from_secs(600));
        assert_eq!(
            s.workers.environment_ttl,
            Some(Duration::from_secs(72 * 3600))
        );
        assert_eq!(s.workers.count, 0);
        assert!(!format!("{s:?}").contains("t0ken-value"));

        let err = settings(&[("EPHEMERA_PROVISIONER", "command")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_PROVISION_COMMAND: must be set when EPHEMERA_PROVISIONER=command"
        );
        let command = |pass: &'static str| {
            settings(&[
                ("EPHEMERA_PROVISIONER", "command"),
                ("EPHEMERA_PROVISION_COMMAND", "true"),
                ("EPHEMERA_DESTROY_COMMAND", "true"),
                ("EPHEMERA_COMMAND_PASS_ENV", pass),
            ])
        };
        let Ok(Settings {
            provisioner: ProvisionerSettings::Command(passing),
            ..
        }) = command("KUBECONFIG,AWS_PROFILE")
        else {
            panic!("command provisioner expected");
        };
        assert_eq!(passing.pass_env.names(), ["KUBECONFIG", "AWS_PROFILE"]);
        assert_eq!(passing.url_pattern, None);
        let err = command("KUBECONFIG,GITHUB_WEBHOOK_SECRET").unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_COMMAND_PASS_ENV: `GITHUB_WEBHOOK_SECRET` is one of ephemera's own \
             secrets and is never passed to commands"
        );
        let err = settings(&[
            ("EPHEMERA_PROVISIONER", "command"),
            ("EPHEMERA_PROVISION_COMMAND", "true"),
            ("EPHEMERA_DESTROY_COMMAND", "true"),
            ("EPHEMERA_PREVIEW_URL_PATTERN", "https://*.com/*"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_PREVIEW_URL_PATTERN");
        let err = settings(&[("EPHEMERA_ENVIRONMENT_TTL", "three days")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_ENVIRONMENT_TTL");
        let err = settings(&[("EPHEMERA_PROVISIONER", "kubernetes")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_K8S_MANIFESTS_DIR");
        let err = settings(&[
            ("EPHEMERA_PROVISIONER", "kubernetes"),
            ("EPHEMERA_K8S_MANIFESTS_DIR", "/no/such/folder"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_K8S_MANIFESTS_DIR: `/no/such/folder` is not a folder"
        );
        let err = settings(&[("EPHEMERA_PROVISIONER", "nomad")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_PROVISIONER");
        let err = settings(&[("EPHEMERA_PREVIEW_URL_TEMPLATE", "https://{branch}.x")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_PREVIEW_URL_TEMPLATE");
    }

    #[test]
    fn kubernetes_settings() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().unwrap();
        let kubernetes = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("EPHEMERA_PROVISIONER", "kubernetes"),
                ("EPHEMERA_K8S_MANIFESTS_DIR", dir),
            ];
            vars.extend_from_slice(extra);
            settings(&vars).map(|s| match s.provisioner {
                ProvisionerSettings::Kubernetes(k) => k,
                other => panic!("kubernetes expected, got {other:?}"),
            })
        };
        let defaults = kubernetes(&[]).unwrap();
        assert_eq!(defaults.instance.as_str(), "ephemera");
        let staging = kubernetes(&[("EPHEMERA_INSTANCE", "staging")]).unwrap();
        assert_eq!(staging.instance.as_str(), "staging");
        let err = kubernetes(&[("EPHEMERA_INSTANCE", "Staging_EU")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_INSTANCE");

        assert_eq!(defaults.isolation, Isolation::default());
        let off = kubernetes(&[
            ("EPHEMERA_K8S_POD_SECURITY", "off"),
            ("EPHEMERA_K8S_RESOURCE_QUOTA", "off"),
            ("EPHEMERA_K8S_LIMIT_RANGE", "off"),
            ("EPHEMERA_K8S_NETWORK_POLICY", "false"),
        ])
        .unwrap();
        assert_eq!(off.isolation, Isolation::off());
        let tuned = kubernetes(&[
            ("EPHEMERA_K8S_POD_SECURITY", "baseline"),
            ("EPHEMERA_K8S_RESOURCE_QUOTA", "pods=5"),
            ("EPHEMERA_K8S_INGRESS_NAMESPACES", "traefik,kube-system"),
            ("EPHEMERA_K8S_EGRESS_DENY", "169.254.169.254/32"),
        ])
        .unwrap();
        assert_eq!(
            tuned.isolation.pod_security,
            Some(PodSecurityLevel::Baseline)
        );
        let network = tuned.isolation.network_policy.unwrap();
        assert_eq!(network.ingress_namespaces, ["traefik", "kube-system"]);
        assert_eq!(network.egress_deny.len(), 1);
        for (variable, bad) in [
            ("EPHEMERA_K8S_POD_SECURITY", "strict"),
            ("EPHEMERA_K8S_RESOURCE_QUOTA", "pods"),
            ("EPHEMERA_K8S_LIMIT_RANGE", "cpu=1"),
            ("EPHEMERA_K8S_NETWORK_POLICY", "maybe"),
            ("EPHEMERA_K8S_INGRESS_NAMESPACES", "Ingress_Nginx"),
            ("EPHEMERA_K8S_EGRESS_DENY", "169.254.169.254"),
        ] {
            let err = kubernetes(&[(variable, bad)]).unwrap_err();
            assert_eq!(err.variable, variable, "{bad}");
        }
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
    fn short_tokens_and_webhook_secrets_are_refused_by_name() {
        let err = settings(&[("EPHEMERA_API_TOKEN", " changeme ")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_API_TOKEN: is 8 characters long; use at least 16 (e.g. `openssl rand -hex 32`)"
        );
        let err = settings(&[("GITHUB_WEBHOOK_SECRET", "dev")]).unwrap_err();
        assert_eq!(err.variable, "GITHUB_WEBHOOK_SECRET");
        assert!(err.message.starts_with("is 3 characters long"), "{err}");
        assert!(
            !err.to_string().contains("dev"),
            "the secret stays out: {err}"
        );
        // Trimmed: padding does not make a token long enough.
        let err = settings(&[("EPHEMERA_API_TOKEN", "short-token     ")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_API_TOKEN");
        let s = settings(&[("EPHEMERA_API_TOKEN", "  0123456789abcdef\n  ")]).unwrap();
        assert!(s.api_token.unwrap().matches("0123456789abcdef"));
    }

    #[test]
    fn serve_needs_a_token_or_an_opt_in_off_loopback() {
        for listen in ["127.0.0.1:8080", "[::1]:8080"] {
            let s = settings(&[("EPHEMERA_LISTEN", listen)]).unwrap();
            assert_eq!(s.check_serve(), Ok(()), "{listen}");
            assert!(s.reads_are_anonymous());
        }
        let s = settings(&[("EPHEMERA_LISTEN", "0.0.0.0:8080")]).unwrap();
        let err = s.check_serve().unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_API_TOKEN");
        assert!(
            err.message.contains("EPHEMERA_ANONYMOUS_READS=true"),
            "{err}"
        );
        let s = settings(&[
            ("EPHEMERA_LISTEN", "0.0.0.0:8080"),
            ("EPHEMERA_ANONYMOUS_READS", "true"),
        ])
        .unwrap();
        assert_eq!(s.check_serve(), Ok(()));
        assert!(s.reads_are_anonymous());
        let s = settings(&[
            ("EPHEMERA_LISTEN", "0.0.0.0:8080"),
            ("EPHEMERA_API_TOKEN", "0123456789abcdef0123"),
        ])
        .unwrap();
        assert_eq!(s.check_serve(), Ok(()));
        assert!(!s.reads_are_anonymous());
    }

    #[test]
    fn webhook_limits_and_the_metrics_listener() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.webhook.read_timeout, Duration::from_secs(10));
        assert_eq!(s.webhook.max_buffered_bytes, 64 * 1024 * 1024);
        assert_eq!(s.metrics_listen, None);
        let s = settings(&[
            ("EPHEMERA_WEBHOOK_READ_TIMEOUT", "3s"),
            ("EPHEMERA_WEBHOOK_MAX_BYTES", "1000"),
            ("EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES", "2000"),
            ("EPHEMERA_METRICS_LISTEN", "0.0.0.0:9090"),
        ])
        .unwrap();
        assert_eq!(s.webhook.read_timeout, Duration::from_secs(3));
        assert_eq!(s.webhook.max_buffered_bytes, 2000);
        assert_eq!(s.metrics_listen.unwrap().port(), 9090);
        let err = settings(&[("EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES", "1048576")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES");
        let err = settings(&[
            ("EPHEMERA_WEBHOOK_MAX_BYTES", "1000"),
            ("EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES", "1999"),
        ])
        .unwrap_err();
        assert!(err.message.contains("at least twice"), "{err}");
        let err = settings(&[("EPHEMERA_WEBHOOK_READ_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_WEBHOOK_READ_TIMEOUT");
        let err = settings(&[("EPHEMERA_METRICS_LISTEN", "9090")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_METRICS_LISTEN");
        let err = settings(&[("EPHEMERA_ANONYMOUS_READS", "maybe")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_ANONYMOUS_READS");
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        let s = settings(&[("DATABASE_URL", "postgres://app:hunter2@db/eph")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
