//! Configuration from environment variables (and `.env`); every variable is
//! described in docs/configuration.md.
//! Every variable is documented in docs/configuration.md and .env.example.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::time::Duration;

use ephemera_application::repo_config::RepoConfigSettings;
use ephemera_application::reporting::ReportingChannels;
use ephemera_application::retention::RetentionConfig;
use ephemera_domain::{
    AllowedOwners, ConfigBounds, ConfigKey, DeployPolicy, PreviewUrlTemplate, RepoRules,
};
use ephemera_http::{
    ApiToken, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_READ_TIMEOUT,
    MIN_SECRET_CHARS, WebhookSettings,
};
use ephemera_provisioner::{
    CommandConfig, ContainerLimits, Instance, Isolation, KubernetesConfig, NetworkIsolation,
    PassEnv, PodSecurityLevel, PreviewUrlPattern, Quantities, SleepCommands,
};
use secrecy::SecretString;
use thiserror::Error;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://ephemera.db?mode=rwc";
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8080));

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
    /// `EPHEMERA_GITHUB_REPORT_DELAY`: how long a report of a change still
    /// under way waits, so quick deployments are reported by their outcome
    /// alone (an outcome is reported at once).
    pub report_delay: Duration,
    /// `EPHEMERA_GITHUB_REPORT_VIA`: a commit's preview is shown with the
    /// commit status, the check run, or both (the default).
    pub report_via: ReportingChannels,
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
    /// `EPHEMERA_REPO_CONFIG*`, `EPHEMERA_MAX_ACTIVE`: what repositories'
    /// `.github/ephemera.yml` may set, and the caps.
    pub repo_config: RepoConfigSettings,
    /// `None`: GitHub reporting is off.
    pub github: Option<GitHubSettings>,
    /// The dashboard's "Sign in with GitHub" and sessions.
    pub dashboard: DashboardSettings,
}

/// `EPHEMERA_GITHUB_OAUTH_*`, `EPHEMERA_PUBLIC_URL`, `EPHEMERA_SESSION_KEY`:
/// who may use the dashboard (docs/dashboard.md).
#[derive(Clone)]
pub struct DashboardSettings {
    /// The GitHub App's OAuth client id and secret; `None`: no sign-in
    /// (the dashboard follows the REST API's read rule).
    pub oauth: Option<(String, SecretString)>,
    /// Where people sign in (`EPHEMERA_GITHUB_WEB_URL`, `https://github.com`).
    pub web_url: String,
    /// The REST API the sign-in asks (`GITHUB_API_URL`).
    pub api_url: String,
    /// How browsers reach this server; `None`: `http://<EPHEMERA_LISTEN>`.
    pub public_url: Option<String>,
    /// Signs and encrypts session cookies; `None`: a random key per
    /// process (sessions end on restart and are not shared by replicas).
    pub session_key: Option<SecretString>,
}

impl fmt::Debug for DashboardSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardSettings")
            .field("oauth_client_id", &self.oauth.as_ref().map(|(id, _)| id))
            .field("web_url", &self.web_url)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Bytes a session key needs at least (cookie signing and encryption).
pub const MIN_SESSION_KEY_BYTES: usize = 64;

/// The dashboard's sign-in and session settings.
pub fn dashboard(env: &Env<'_>) -> Result<DashboardSettings, ConfigError> {
    let url = |name: &'static str, default: Option<&str>| -> Result<Option<String>, ConfigError> {
        match env.get(name).or_else(|| default.map(str::to_owned)) {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                Ok(Some(u.trim_end_matches('/').to_owned()))
            }
            Some(u) => Err(ConfigError::new(
                name,
                format!("`{u}` is not an http(s) URL"),
            )),
            None => Ok(None),
        }
    };
    let oauth = match (
        env.get("EPHEMERA_GITHUB_OAUTH_CLIENT_ID"),
        env.get("EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET"),
    ) {
        (None, None) => None,
        (Some(id), Some(secret)) => Some((id, SecretString::from(secret))),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET",
                "EPHEMERA_GITHUB_OAUTH_CLIENT_ID is set: set the App's client secret too",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "EPHEMERA_GITHUB_OAUTH_CLIENT_ID",
                "a client secret is set: set the App's client id too",
            ));
        }
    };
    let session_key = match env.get("EPHEMERA_SESSION_KEY") {
        Some(key) if key.len() < MIN_SESSION_KEY_BYTES => {
            return Err(ConfigError::new(
                "EPHEMERA_SESSION_KEY",
                format!(
                    "{} characters: at least {MIN_SESSION_KEY_BYTES} are needed (e.g. `openssl rand -hex 32`)",
                    key.len()
                ),
            ));
        }
        key => key.map(SecretString::from),
    };
    Ok(DashboardSettings {
        oauth,
        web_url: url("EPHEMERA_GITHUB_WEB_URL", Some("https://github.com"))?.unwrap_or_default(),
        api_url: url("GITHUB_API_URL", Some("https://api.github.com"))?.unwrap_or_default(),
        public_url: url("EPHEMERA_PUBLIC_URL", None)?,
        session_key,
    })
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
            .field("repo_config", &self.repo_config)
            .field("github", &self.github)
            .finish()
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env::new(&lookup))
    }

    /// Everything `serve` and `worker` need, section by section; the first
    /// value that cannot be used is the error.
    pub fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: database_url(env)?,
            listen: listen(env)?,
            metrics_listen: env.optional_address("EPHEMERA_METRICS_LISTEN")?,
            log_format: log_format(env)?,
            webhook: webhook(env)?,
            api_token: env.parsed("EPHEMERA_API_TOKEN", ApiToken::parse)?,
            anonymous_reads: env.flag("EPHEMERA_ANONYMOUS_READS", false)?,
            policy: policy(env)?,
            allowed_owners: allowed_owners(env),
            preview_url: preview_url(env)?,
            provisioner: provisioner(env)?,
            workers: workers(env)?,
            repo_config: repo_config(env)?,
            github: github_app(env)?,
            dashboard: dashboard(env)?,
        })
    }

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

/// The variables, read one at a time through a lookup (the process
/// environment, or a test's map); empty values count as unset. Every
/// reader turns a bad value into one [`ConfigError`] naming the variable
/// and quoting the value.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

fn process_variable(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The process environment (and the `.env` file the CLI loaded into it).
    pub fn process() -> Env<'static> {
        Env {
            lookup: &process_variable,
        }
    }

    /// The value of `name`, unless unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// `name` through `parse`, whose error is the message; `None` when unset.
    pub fn parsed<T, E: fmt::Display>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|raw| parse(&raw).map_err(|e| ConfigError::new(name, e.to_string())))
            .transpose()
    }

    /// A number `accept` takes, or "`raw` is not {what}"; `None` when unset.
    pub fn optional_number<T: FromStr>(
        &self,
        name: &'static str,
        what: &str,
        accept: impl FnOnce(&T) -> bool,
    ) -> Result<Option<T>, ConfigError> {
        self.parsed(name, |raw| {
            raw.trim()
                .parse::<T>()
                .ok()
                .filter(accept)
                .ok_or_else(|| format!("`{raw}` is not {what}"))
        })
    }

    /// A number `accept` takes, or "`raw` is not {what}"; `default` when
    /// unset.
    pub fn number<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        what: &str,
        accept: impl FnOnce(&T) -> bool,
    ) -> Result<T, ConfigError> {
        Ok(self.optional_number(name, what, accept)?.unwrap_or(default))
    }

    /// A duration like `30s`, `15m`, `72h` or `30d`, more than zero and at
    /// most 100 years; `None` when unset.
    pub fn optional_duration(&self, name: &'static str) -> Result<Option<Duration>, ConfigError> {
        self.parsed(name, |raw| {
            humantime::parse_duration(raw.trim())
                .ok()
                .filter(|d| !d.is_zero() && *d <= MAX_DURATION)
                .ok_or_else(|| {
                    format!("`{raw}` is not a duration like 30s, 15m or 72h (at most 100 years)")
                })
        })
    }

    /// A duration as [`Env::optional_duration`]; `default` when unset.
    pub fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self.optional_duration(name)?.unwrap_or(default))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`); `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        Ok(self
            .parsed(name, |raw| match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(format!("`{}` is not true or false", raw.trim())),
            })?
            .unwrap_or(default))
    }

    /// A socket address like `127.0.0.1:8080`; `None` when unset.
    pub fn optional_address(&self, name: &'static str) -> Result<Option<SocketAddr>, ConfigError> {
        self.parsed(name, |raw| {
            raw.trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("`{raw}` is not an address like 127.0.0.1:8080 or 0.0.0.0:80"))
        })
    }

    /// One of `choices`, as its value; `default` when unset.
    fn choice<T: Copy>(
        &self,
        name: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        Ok(self
            .parsed(name, |raw| {
                let raw = raw.trim();
                choices
                    .iter()
                    .find(|(word, _)| *word == raw)
                    .map(|(_, value)| *value)
                    .ok_or_else(|| {
                        let words: Vec<_> = choices.iter().map(|(word, _)| *word).collect();
                        format!("`{raw}` is not one of {}", words.join(", "))
                    })
            })?
            .unwrap_or(default))
    }
}

/// Longer than any setting needs, short enough that "now minus it" is
/// always a date.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `DATABASE_URL`: all `migrate` reads.
pub fn database_url(env: &Env<'_>) -> Result<String, ConfigError> {
    let url = env
        .get("DATABASE_URL")
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let is_sqlite = url.starts_with("sqlite:");
    let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !is_sqlite && !is_postgres {
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!(
                "`{}` is not supported; use sqlite://FILE?mode=rwc or postgres://USER@HOST/DB",
                ephemera_persistence::redact_url(&url)
            ),
        ));
    }
    Ok(url)
}

/// `EPHEMERA_LOG_FORMAT`.
pub fn log_format(env: &Env<'_>) -> Result<LogFormat, ConfigError> {
    env.choice(
        "EPHEMERA_LOG_FORMAT",
        LogFormat::Pretty,
        &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
    )
}

/// `EPHEMERA_LISTEN`: where `serve` listens, and where `webhook send`
/// sends by default.
pub fn listen(env: &Env<'_>) -> Result<SocketAddr, ConfigError> {
    Ok(env
        .optional_address("EPHEMERA_LISTEN")?
        .unwrap_or(DEFAULT_LISTEN))
}

/// `GITHUB_WEBHOOK_SECRET`, long enough to be one.
pub fn webhook_secret(env: &Env<'_>) -> Result<Option<SecretString>, ConfigError> {
    let secret = env.get("GITHUB_WEBHOOK_SECRET");
    if let Some(chars) = secret
        .as_deref()
        .map(|s| s.chars().count())
        .filter(|n| *n < MIN_SECRET_CHARS)
    {
        // The value itself stays out of the message.
        return Err(ConfigError::new(
            "GITHUB_WEBHOOK_SECRET",
            format!(
                "is {chars} characters long; use at least {MIN_SECRET_CHARS} (e.g. `openssl rand -hex 32`), the same on the GitHub App"
            ),
        ));
    }
    Ok(secret.map(SecretString::from))
}

/// The webhook endpoint: its secret and how much it reads.
pub fn webhook(env: &Env<'_>) -> Result<WebhookSettings, ConfigError> {
    let max_body_bytes = env.number(
        "EPHEMERA_WEBHOOK_MAX_BYTES",
        DEFAULT_MAX_BODY_BYTES,
        "a positive number of bytes",
        |n| *n > 0,
    )?;
    // A signed body is copied once for the JSON parser: the largest must
    // fit twice.
    let least = max_body_bytes.saturating_mul(2);
    let max_buffered_bytes = env.number(
        "EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES",
        DEFAULT_MAX_BUFFERED_BYTES.max(least),
        &format!(
            "a number of bytes of at least twice EPHEMERA_WEBHOOK_MAX_BYTES ({least}): the largest body and its copy for parsing must fit"
        ),
        |n| *n >= least,
    )?;
    Ok(WebhookSettings {
        secret: webhook_secret(env)?,
        max_body_bytes,
        max_buffered_bytes,
        read_timeout: env.duration("EPHEMERA_WEBHOOK_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)?,
    })
}

/// Which PRs get a preview.
pub fn policy(env: &Env<'_>) -> Result<DeployPolicy, ConfigError> {
    let defaults = DeployPolicy::default();
    Ok(DeployPolicy {
        allow_forks: env.flag("EPHEMERA_ALLOW_FORKS", defaults.allow_forks)?,
        trusted_label: env
            .get("EPHEMERA_TRUSTED_LABEL")
            .unwrap_or(defaults.trusted_label),
        deploy_drafts: env.flag("EPHEMERA_DEPLOY_DRAFTS", defaults.deploy_drafts)?,
        required_label: env.get("EPHEMERA_REQUIRED_LABEL"),
    })
}

/// `EPHEMERA_ALLOWED_OWNERS`: accounts whose installations are served.
pub fn allowed_owners(env: &Env<'_>) -> AllowedOwners {
    AllowedOwners::only(
        env.get("EPHEMERA_ALLOWED_OWNERS")
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned),
    )
}

/// `EPHEMERA_PREVIEW_URL_TEMPLATE`.
pub fn preview_url(env: &Env<'_>) -> Result<PreviewUrlTemplate, ConfigError> {
    Ok(env
        .parsed("EPHEMERA_PREVIEW_URL_TEMPLATE", |raw| {
            PreviewUrlTemplate::parse(raw).map_err(|e| e.reason)
        })?
        .unwrap_or_default())
}

/// `EPHEMERA_PROVISIONER` and the settings of the one it names.
pub fn provisioner(env: &Env<'_>) -> Result<ProvisionerSettings, ConfigError> {
    #[derive(Clone, Copy)]
    enum Kind {
        DryRun,
        Command,
        Kubernetes,
    }
    let kind = env.choice(
        "EPHEMERA_PROVISIONER",
        Kind::DryRun,
        &[
            ("dry-run", Kind::DryRun),
            ("command", Kind::Command),
            ("kubernetes", Kind::Kubernetes),
        ],
    )?;
    Ok(match kind {
        Kind::DryRun => ProvisionerSettings::DryRun,
        Kind::Command => ProvisionerSettings::Command(command_provisioner(env)?),
        Kind::Kubernetes => ProvisionerSettings::Kubernetes(kubernetes_provisioner(env)?),
    })
}

fn command_provisioner(env: &Env<'_>) -> Result<CommandConfig, ConfigError> {
    let required = |name: &'static str| {
        env.get(name)
            .ok_or_else(|| ConfigError::new(name, "must be set when EPHEMERA_PROVISIONER=command"))
    };
    Ok(CommandConfig {
        provision: required("EPHEMERA_PROVISION_COMMAND")?,
        destroy: required("EPHEMERA_DESTROY_COMMAND")?,
        sleep: sleep_commands(env)?,
        timeout: env.duration("EPHEMERA_COMMAND_TIMEOUT", Duration::from_secs(15 * 60))?,
        max_log_bytes: 256 * 1024,
        pass_env: env
            .parsed("EPHEMERA_COMMAND_PASS_ENV", PassEnv::parse)?
            .unwrap_or_default(),
        url_pattern: env.parsed("EPHEMERA_PREVIEW_URL_PATTERN", |raw| {
            PreviewUrlPattern::parse(raw.trim())
        })?,
    })
}

/// `EPHEMERA_STOP_COMMAND` and `EPHEMERA_START_COMMAND`: both or neither.
fn sleep_commands(env: &Env<'_>) -> Result<Option<SleepCommands>, ConfigError> {
    match (
        env.get("EPHEMERA_STOP_COMMAND"),
        env.get("EPHEMERA_START_COMMAND"),
    ) {
        (Some(stop), Some(start)) => Ok(Some(SleepCommands { stop, start })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            "EPHEMERA_START_COMMAND",
            "must be set with EPHEMERA_STOP_COMMAND (a sleeping preview needs both)",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "EPHEMERA_STOP_COMMAND",
            "must be set with EPHEMERA_START_COMMAND (a sleeping preview needs both)",
        )),
    }
}

fn kubernetes_provisioner(env: &Env<'_>) -> Result<KubernetesConfig, ConfigError> {
    let instance = env
        .parsed("EPHEMERA_INSTANCE", |raw| Instance::parse(raw.trim()))?
        .unwrap_or_default();
    let dir = env.get("EPHEMERA_K8S_MANIFESTS_DIR").ok_or_else(|| {
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
    Ok(KubernetesConfig {
        manifests_dir,
        ready_timeout: env.duration("EPHEMERA_K8S_READY_TIMEOUT", Duration::from_secs(300))?,
        poll: Duration::from_secs(2),
        terminating_recheck: Duration::from_secs(5),
        instance,
        isolation: isolation(env)?,
    })
}

/// What fences each PR namespace in (kubernetes provisioner); every part
/// on by default, `off` (`none` for the lists) turns one off.
fn isolation(env: &Env<'_>) -> Result<Isolation, ConfigError> {
    let defaults = Isolation::default();
    let is = |name: &str, word: &str| env.get(name).is_some_and(|raw| raw.trim() == word);
    let pod_security = env
        .parsed("EPHEMERA_K8S_POD_SECURITY", PodSecurityLevel::parse)?
        .unwrap_or(defaults.pod_security);
    let resource_quota = if is("EPHEMERA_K8S_RESOURCE_QUOTA", "off") {
        None
    } else {
        env.parsed("EPHEMERA_K8S_RESOURCE_QUOTA", |raw| {
            Quantities::parse(raw.trim())
        })?
        .or(defaults.resource_quota)
    };
    let limit_range = if is("EPHEMERA_K8S_LIMIT_RANGE", "off") {
        None
    } else {
        env.parsed("EPHEMERA_K8S_LIMIT_RANGE", |raw| {
            ContainerLimits::parse(raw.trim())
        })?
        .or(defaults.limit_range)
    };
    let network_policy = if env.flag("EPHEMERA_K8S_NETWORK_POLICY", true)? {
        let default = defaults.network_policy.unwrap_or_default();
        Some(NetworkIsolation {
            ingress_namespaces: env
                .parsed("EPHEMERA_K8S_INGRESS_NAMESPACES", |raw| {
                    ephemera_provisioner::parse_namespaces(raw.trim())
                })?
                .unwrap_or(default.ingress_namespaces),
            egress_deny: if is("EPHEMERA_K8S_EGRESS_DENY", "none") {
                Vec::new()
            } else {
                env.parsed("EPHEMERA_K8S_EGRESS_DENY", |raw| {
                    ephemera_provisioner::parse_cidrs(raw.trim())
                })?
                .unwrap_or(default.egress_deny)
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

/// How the workers behave, retention and the sync period included.
pub fn workers(env: &Env<'_>) -> Result<WorkerSettings, ConfigError> {
    Ok(WorkerSettings {
        count: env.number("EPHEMERA_WORKERS", 2, "a number from 0 to 64", |n| *n <= 64)?,
        lease: env.duration("EPHEMERA_WORKER_LEASE", Duration::from_secs(60))?,
        max_attempts: env.number("EPHEMERA_MAX_ATTEMPTS", 5, "a number of at least 1", |n| {
            *n >= 1
        })?,
        retry_base: env.duration("EPHEMERA_RETRY_BASE", Duration::from_secs(5))?,
        retry_max: env.duration("EPHEMERA_RETRY_MAX", Duration::from_secs(300))?,
        poll: env.duration("EPHEMERA_WORKER_POLL", Duration::from_secs(1))?,
        github_sync: env.duration("EPHEMERA_GITHUB_SYNC_INTERVAL", Duration::from_secs(300))?,
        github_sync_budget: env.number(
            "EPHEMERA_GITHUB_SYNC_BUDGET",
            400,
            "a number of requests an hour (1 or more)",
            |n| *n >= 1,
        )?,
        report_delay: env.duration("EPHEMERA_GITHUB_REPORT_DELAY", Duration::from_secs(10))?,
        report_via: env
            .parsed(
                "EPHEMERA_GITHUB_REPORT_VIA",
                str::parse::<ReportingChannels>,
            )?
            .unwrap_or_default(),
        environment_ttl: env.optional_duration("EPHEMERA_ENVIRONMENT_TTL")?,
        retention: retention(env)?,
        retention_every: env
            .duration("EPHEMERA_RETENTION_INTERVAL", Duration::from_secs(60 * 60))?,
    })
}

/// `EPHEMERA_REPO_CONFIG*` and `EPHEMERA_MAX_ACTIVE`: the bounds on
/// repositories' `.github/ephemera.yml` (docs/repository-config.md).
pub fn repo_config(env: &Env<'_>) -> Result<RepoConfigSettings, ConfigError> {
    let list = |name: &str| -> Vec<String> {
        env.get(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let allowed_keys = match env.get("EPHEMERA_REPO_CONFIG_KEYS") {
        None => ConfigKey::ALL.to_vec(),
        Some(raw) if raw.trim() == "none" => Vec::new(),
        Some(_) => list("EPHEMERA_REPO_CONFIG_KEYS")
            .iter()
            .map(|k| {
                k.parse::<ConfigKey>()
                    .map_err(|e| ConfigError::new("EPHEMERA_REPO_CONFIG_KEYS", e.to_string()))
            })
            .collect::<Result<_, _>>()?,
    };
    let env_names = match env.get("EPHEMERA_REPO_CONFIG_ENV_NAMES") {
        None => vec!["*".to_owned()],
        Some(raw) if raw.trim() == "none" => Vec::new(),
        Some(_) => list("EPHEMERA_REPO_CONFIG_ENV_NAMES"),
    };
    for glob in &env_names {
        ephemera_domain::check_glob(glob).map_err(|e| {
            ConfigError::new(
                "EPHEMERA_REPO_CONFIG_ENV_NAMES",
                format!("`{glob}` is not a glob: {e}"),
            )
        })?;
    }
    let positive = |n: &u32| *n >= 1;
    Ok(RepoConfigSettings {
        read_files: env.flag("EPHEMERA_REPO_CONFIG", true)?,
        defaults: RepoRules {
            ttl: env.optional_duration("EPHEMERA_ENVIRONMENT_TTL")?,
            sleep_after: env.optional_duration("EPHEMERA_SLEEP_AFTER")?,
            ..RepoRules::default()
        },
        bounds: ConfigBounds {
            allowed_keys,
            max_ttl: env.optional_duration("EPHEMERA_REPO_CONFIG_MAX_TTL")?,
            max_sleep_after: env.optional_duration("EPHEMERA_REPO_CONFIG_MAX_SLEEP_AFTER")?,
            max_active: env.optional_number(
                "EPHEMERA_REPO_CONFIG_MAX_ACTIVE",
                "a number of previews (1 or more)",
                positive,
            )?,
            env_names,
        },
        max_active_per_installation: env.optional_number(
            "EPHEMERA_MAX_ACTIVE",
            "a number of previews (1 or more)",
            positive,
        )?,
        schema_url: "/api/v1/config-schema".to_owned(),
    })
}

/// `EPHEMERA_RETENTION_*`: how long old records are kept.
pub fn retention(env: &Env<'_>) -> Result<RetentionConfig, ConfigError> {
    let defaults = RetentionConfig::default();
    Ok(RetentionConfig {
        deliveries: env.duration("EPHEMERA_RETENTION_DELIVERIES", defaults.deliveries)?,
        reports: env.duration("EPHEMERA_RETENTION_REPORTS", defaults.reports)?,
        logs_after_destroy: env.duration("EPHEMERA_RETENTION_LOGS", defaults.logs_after_destroy)?,
    })
}

/// The GitHub App (`GITHUB_APP_ID`, its private key, `GITHUB_API_URL`):
/// `None` when neither id nor key is set, so reporting is off.
pub fn github_app(env: &Env<'_>) -> Result<Option<GitHubSettings>, ConfigError> {
    let api_url = env
        .get("GITHUB_API_URL")
        .unwrap_or_else(|| "https://api.github.com".to_owned());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(ConfigError::new(
            "GITHUB_API_URL",
            format!("`{api_url}` is not an http(s) URL"),
        ));
    }
    let key = match (
        env.get("GITHUB_APP_PRIVATE_KEY"),
        env.get("GITHUB_APP_PRIVATE_KEY_PATH"),
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
    let app_id = env.optional_number("GITHUB_APP_ID", "the App's numeric id", |n: &u64| *n > 0)?;
    match (app_id, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            "GITHUB_APP_PRIVATE_KEY",
            "GITHUB_APP_ID is set: set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH too",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "GITHUB_APP_ID",
            "a GitHub App private key is set: set GITHUB_APP_ID (the App's numeric id) too",
        )),
        (Some(app_id), Some(pem)) => Ok(Some(GitHubSettings {
            app_id,
            private_key: SecretString::from(pem),
            api_url,
        })),
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
    fn the_readers_name_the_variable_and_quote_the_bad_value() {
        let vars: HashMap<&str, &str> = HashMap::from([
            ("N", " 7 "),
            ("BAD_N", "seven"),
            ("D", "90s"),
            ("BAD_D", "0s"),
            ("HUGE_D", "101y"),
            ("F", "Yes"),
            ("BAD_F", "maybe"),
            ("A", "0.0.0.0:80"),
            ("BLANK", "  "),
        ]);
        let lookup = |name: &str| vars.get(name).map(|v| (*v).to_owned());
        let env = Env::new(&lookup);
        let message = |err: ConfigError| err.to_string();

        assert_eq!(env.number("N", 1_u32, "a number", |_| true), Ok(7));
        assert_eq!(env.number("UNSET", 1_u32, "a number", |_| true), Ok(1));
        assert_eq!(env.number("BLANK", 1_u32, "a number", |_| true), Ok(1));
        assert_eq!(
            message(
                env.number("BAD_N", 1_u32, "a number", |_| true)
                    .unwrap_err()
            ),
            "BAD_N: `seven` is not a number"
        );
        assert_eq!(
            message(
                env.number("N", 1_u32, "a number below 5", |n| *n < 5)
                    .unwrap_err()
            ),
            "N: ` 7 ` is not a number below 5"
        );

        assert_eq!(
            env.duration("D", Duration::ZERO),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(env.optional_duration("UNSET"), Ok(None));
        for (name, value) in [("BAD_D", "0s"), ("HUGE_D", "101y")] {
            assert_eq!(
                message(env.duration(name, Duration::ZERO).unwrap_err()),
                format!(
                    "{name}: `{value}` is not a duration like 30s, 15m or 72h (at most 100 years)"
                )
            );
        }

        assert_eq!(env.flag("F", false), Ok(true));
        assert_eq!(env.flag("BLANK", true), Ok(true));
        assert_eq!(
            message(env.flag("BAD_F", false).unwrap_err()),
            "BAD_F: `maybe` is not true or false"
        );

        assert_eq!(
            env.optional_address("A"),
            Ok(Some("0.0.0.0:80".parse().unwrap()))
        );
        assert_eq!(
            message(env.optional_address("N").unwrap_err()),
            "N: ` 7 ` is not an address like 127.0.0.1:8080 or 0.0.0.0:80"
        );
    }

    /// What `migrate` and `webhook send` read, and nothing more: any other
    /// variable read fails the test.
    #[test]
    fn the_small_sections_read_only_their_own_variable() {
        fn only(allowed: &'static str) -> impl Fn(&str) -> Option<String> {
            move |name| {
                assert_eq!(name, allowed, "read another variable");
                None
            }
        }
        let lookup = only("DATABASE_URL");
        assert_eq!(
            database_url(&Env::new(&lookup)).unwrap(),
            DEFAULT_DATABASE_URL
        );
        let lookup = only("EPHEMERA_LISTEN");
        assert_eq!(listen(&Env::new(&lookup)).unwrap(), DEFAULT_LISTEN);
        let lookup = only("GITHUB_WEBHOOK_SECRET");
        assert!(webhook_secret(&Env::new(&lookup)).unwrap().is_none());
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
    fn dashboard_sign_in_needs_both_credentials_and_a_long_session_key() {
        let d = settings(&[]).unwrap().dashboard;
        assert!(d.oauth.is_none() && d.session_key.is_none() && d.public_url.is_none());
        assert_eq!(d.web_url, "https://github.com");
        let err = settings(&[("EPHEMERA_GITHUB_OAUTH_CLIENT_ID", "Iv1.x")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET");
        let err = settings(&[("EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET", "s")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_GITHUB_OAUTH_CLIENT_ID");
        let err = settings(&[("EPHEMERA_SESSION_KEY", "short")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_SESSION_KEY");
        let err = settings(&[("EPHEMERA_PUBLIC_URL", "ephemera.example.com")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_PUBLIC_URL");
        let key = "k".repeat(64);
        let s = settings(&[
            ("EPHEMERA_GITHUB_OAUTH_CLIENT_ID", "Iv1.x"),
            ("EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET", "client-secret-value"),
            ("EPHEMERA_SESSION_KEY", &key),
            ("EPHEMERA_PUBLIC_URL", "https://ephemera.example.com/"),
        ])
        .unwrap();
        assert_eq!(
            s.dashboard.public_url.as_deref(),
            Some("https://ephemera.example.com")
        );
        let shown = format!("{:?}", s.dashboard);
        assert!(
            !shown.contains("client-secret-value") && !shown.contains(&key),
            "{shown}"
        );
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
        assert_eq!(command.sleep, None);
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
        let sleeping = |vars: &[(&'static str, &'static str)]| {
            let mut all = vec![
                ("EPHEMERA_PROVISIONER", "command"),
                ("EPHEMERA_PROVISION_COMMAND", "true"),
                ("EPHEMERA_DESTROY_COMMAND", "true"),
            ];
            all.extend_from_slice(vars);
            settings(&all)
        };
        let Ok(Settings {
            provisioner: ProvisionerSettings::Command(pair),
            ..
        }) = sleeping(&[
            ("EPHEMERA_STOP_COMMAND", "helm stop"),
            ("EPHEMERA_START_COMMAND", "helm start"),
        ])
        else {
            panic!("command provisioner expected");
        };
        assert_eq!(
            pair.sleep,
            Some(SleepCommands {
                stop: "helm stop".into(),
                start: "helm start".into()
            })
        );
        let err = sleeping(&[("EPHEMERA_STOP_COMMAND", "helm stop")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EPHEMERA_START_COMMAND: must be set with EPHEMERA_STOP_COMMAND \
             (a sleeping preview needs both)"
        );
        let err = sleeping(&[("EPHEMERA_START_COMMAND", "helm start")]).unwrap_err();
        assert_eq!(err.variable, "EPHEMERA_STOP_COMMAND");
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
