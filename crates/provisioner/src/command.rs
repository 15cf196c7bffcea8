//! Runs the operator's shell commands (`sh -c`) with the environment's
//! facts in `EPHEMERA_*` variables, so helm, kubectl, docker compose or
//! terraform can do the provisioning.
//!
//! - the command starts from an empty environment: only `PATH`, `HOME`,
//!   the locale, its `EPHEMERA_*` inputs and what the operator names in
//!   `EPHEMERA_COMMAND_PASS_ENV` reach it, never ephemera's own secrets;
//! - it runs in a fresh temporary directory, removed afterwards, never the
//!   server's working directory (which may hold `.env`);
//! - stdout and stderr go into the deployment logs, bounded;
//! - exit status 0 is success;
//! - the optional stop/start pair (`EPHEMERA_STOP_COMMAND`,
//!   `EPHEMERA_START_COMMAND`) puts a preview to sleep and wakes it, run
//!   the same way with `EPHEMERA_ACTION=stop|start`;
//! - a `url=<url>` line the command writes to the file `$EPHEMERA_OUTPUT`
//!   (like GitHub Actions' `$GITHUB_OUTPUT`) overrides the templated URL,
//!   if it passes [`crate::preview_url::check`]; stdout is not trusted for
//!   it, since a PR's own build output lands there;
//! - past the timeout the whole process group is killed, as it is when the
//!   worker loses its lease and drops the run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ephemera_application::ports::{
    ProvisionFailure, ProvisionRequest, Provisioned, Provisioner, Stopped, Teardown,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::preview_url::{self, PreviewUrlPattern};

/// Ephemera's own secrets: a command never sees them, and naming one in
/// `EPHEMERA_COMMAND_PASS_ENV` is a configuration error. (Every other
/// `EPHEMERA_*` setting is refused there too.)
pub const OWN_SECRETS: &[&str] = &[
    "DATABASE_URL",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "EPHEMERA_API_TOKEN",
];

/// What every command gets from the server's environment when it is set
/// there: enough for a shell, tools and messages in the right language.
const BASICS: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// `EPHEMERA_COMMAND_PASS_ENV`: further variables of the server's
/// environment the commands receive (`KUBECONFIG`, cloud credentials…).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassEnv(Vec<String>);

impl PassEnv {
    /// A comma-separated list of variable names; refuses ephemera's own
    /// secrets and settings, so a typo cannot leak them to PR code.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`{name}` is not an environment variable name"));
            }
            if OWN_SECRETS.contains(&name) {
                return Err(format!(
                    "`{name}` is one of ephemera's own secrets and is never passed to commands"
                ));
            }
            if name.starts_with("EPHEMERA_") {
                return Err(format!(
                    "`{name}`: ephemera's own EPHEMERA_* settings are never passed to commands \
                     (it sets the command's EPHEMERA_* inputs itself)"
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        Ok(Self(names))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// `EPHEMERA_PROVISION_COMMAND`.
    pub provision: String,
    /// `EPHEMERA_DESTROY_COMMAND`.
    pub destroy: String,
    /// `EPHEMERA_STOP_COMMAND` and `EPHEMERA_START_COMMAND`; without them
    /// previews cannot sleep.
    pub sleep: Option<SleepCommands>,
    /// `EPHEMERA_COMMAND_TIMEOUT`.
    pub timeout: Duration,
    /// Most output kept per run (the newest).
    pub max_log_bytes: usize,
    /// `EPHEMERA_COMMAND_PASS_ENV`.
    pub pass_env: PassEnv,
    /// `EPHEMERA_PREVIEW_URL_PATTERN`: hosts a reported URL may have
    /// besides the templated one.
    pub url_pattern: Option<PreviewUrlPattern>,
}

/// The commands that put a preview to sleep and wake it: both or neither,
/// since a preview stopped with no way to start it again would be lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SleepCommands {
    /// `EPHEMERA_STOP_COMMAND`: stops whatever runs, keeping the data.
    pub stop: String,
    /// `EPHEMERA_START_COMMAND`: starts it again as it was.
    pub start: String,
}

/// Why a command provisioner without [`SleepCommands`] cannot stop or start.
const CANNOT_SLEEP: &str = "sleeping previews with EPHEMERA_PROVISIONER=command needs \
                            EPHEMERA_STOP_COMMAND and EPHEMERA_START_COMMAND, and they are not set";

/// Most of `$EPHEMERA_OUTPUT` read; a preview URL is short.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024;

/// What a successful run left behind.
struct Finished {
    logs: Vec<String>,
    /// The last `url=` line of `$EPHEMERA_OUTPUT`.
    url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CommandProvisioner {
    config: CommandConfig,
    host: HostEnv,
}

/// Where the allowed variables are read from.
#[derive(Clone)]
enum HostEnv {
    /// The server's own environment, read at each run.
    Process,
    /// A fixed set (tests).
    Fixed(Arc<BTreeMap<String, OsString>>),
}

impl HostEnv {
    fn get(&self, name: &str) -> Option<OsString> {
        match self {
            Self::Process => std::env::var_os(name),
            Self::Fixed(vars) => vars.get(name).cloned(),
        }
    }
}

impl std::fmt::Debug for HostEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the values may be credentials.
        match self {
            Self::Process => f.write_str("Process"),
            Self::Fixed(vars) => f.debug_set().entries(vars.keys()).finish(),
        }
    }
}

impl CommandProvisioner {
    /// Commands get their allowed variables from this process's
    /// environment.
    pub fn new(config: CommandConfig) -> Self {
        Self {
            config,
            host: HostEnv::Process,
        }
    }

    /// Commands get their allowed variables from `vars` instead of this
    /// process's environment (tests).
    pub fn with_host_env<K, V>(
        config: CommandConfig,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<OsString>,
    {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self {
            config,
            host: HostEnv::Fixed(Arc::new(vars)),
        }
    }

    /// Whether stop and start can work (both sleep commands are set), so
    /// the server can say once at start-up that previews will not sleep.
    pub fn can_sleep(&self) -> bool {
        self.config.sleep.is_some()
    }

    fn sleep_commands(&self) -> Result<&SleepCommands, ProvisionFailure> {
        self.config.sleep.as_ref().ok_or_else(|| ProvisionFailure {
            message: CANNOT_SLEEP.to_owned(),
            logs: String::new(),
        })
    }

    /// Runs the `action` command and answers the preview URL it reported
    /// (checked) or the templated one.
    async fn run_for_url(
        &self,
        action: &str,
        script: &str,
        request: &ProvisionRequest,
    ) -> Result<Provisioned, ProvisionFailure> {
        let Finished { mut logs, url } = self.run(action, script, request).await?;
        let Some(reported) = url else {
            return Ok(Provisioned {
                url: request.preview_url.clone(),
                logs: logs.concat(),
            });
        };
        match preview_url::check(
            &reported,
            &request.preview_url,
            self.config.url_pattern.as_ref(),
        ) {
            Ok(url) => Ok(Provisioned {
                url,
                logs: logs.concat(),
            }),
            Err(refused) => {
                tracing::warn!(action, namespace = %request.namespace, reason = %refused.0, "refused the command's preview URL");
                // The URL goes to the deployment log only: the message is
                // shown on the PR, and the URL may be an attacker's text.
                logs.push(format!(
                    "ephemera: refused the preview URL `{}` from $EPHEMERA_OUTPUT: {}\n",
                    reported.escape_debug(),
                    refused.0
                ));
                Err(ProvisionFailure {
                    message: format!(
                        "the {action} command reported a preview URL that is not allowed \
                         (see the deployment log)"
                    ),
                    logs: logs.concat(),
                })
            }
        }
    }

    async fn run(
        &self,
        action: &str,
        script: &str,
        request: &ProvisionRequest,
    ) -> Result<Finished, ProvisionFailure> {
        // Declared before the process group so it is removed after the
        // group is killed when a run is dropped half-way.
        let workdir = tempfile::Builder::new()
            .prefix("ephemera-run-")
            .tempdir()
            .map_err(|e| ProvisionFailure {
                message: format!("cannot create a working directory for the {action} command: {e}"),
                logs: String::new(),
            })?;
        let output = workdir.path().join("ephemera-output");
        std::fs::File::create(&output).map_err(|e| ProvisionFailure {
            message: format!("cannot create $EPHEMERA_OUTPUT for the {action} command: {e}"),
            logs: String::new(),
        })?;
        let mut command = Command::new("sh");
        command.env_clear();
        let allowed = BASICS
            .iter()
            .copied()
            .chain(self.config.pass_env.names().iter().map(String::as_str))
            // Refused at start-up already; kept out here too in case a
            // config is built another way.
            .filter(|name| !OWN_SECRETS.contains(name) && !name.starts_with("EPHEMERA_"));
        for name in allowed {
            if let Some(value) = self.host.get(name) {
                command.env(name, value);
            }
        }
        // The repository's plain variables (`env` in .github/ephemera.yml,
        // within the operator's bounds); ephemera's own inputs come after
        // and cannot be overridden.
        command.envs(&request.variables);
        command
            .arg("-c")
            .arg(script)
            .current_dir(workdir.path())
            .env("EPHEMERA_ACTION", action)
            .env("EPHEMERA_OUTPUT", &output)
            .env(
                "EPHEMERA_ENVIRONMENT_ID",
                request.environment_id.to_string(),
            )
            .env("EPHEMERA_NAMESPACE", request.namespace.as_str())
            .env("EPHEMERA_REPOSITORY", request.repository.as_str())
            .env("EPHEMERA_PR_NUMBER", request.pr_number.to_string())
            .env("EPHEMERA_COMMIT_SHA", request.commit_sha.as_str())
            .env("EPHEMERA_BRANCH", &request.branch)
            .env("EPHEMERA_ENVIRONMENT_URL", &request.preview_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout can kill everything it
            // started, not just the shell.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| ProvisionFailure {
            message: format!("cannot start `sh -c` for the {action} command: {e}"),
            logs: String::new(),
        })?;
        let group = child.id().map(GroupKiller);

        let log = Arc::new(Mutex::new(BoundedLog::new(self.config.max_log_bytes)));
        let stdout_url = Arc::new(Mutex::new(false));
        let stdout = child.stdout.take().map(|out| {
            let (log, stdout_url) = (log.clone(), stdout_url.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(out);
                while let Some(line) = next_line(&mut reader).await {
                    if line.trim().starts_with("EPHEMERA_URL=") {
                        *stdout_url.lock().await = true;
                    }
                    log.lock().await.push(&line);
                }
            })
        });
        let stderr = child.stderr.take().map(|err| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(err);
                while let Some(line) = next_line(&mut reader).await {
                    log.lock().await.push(&format!("stderr: {line}"));
                }
            })
        });

        let waited = tokio::time::timeout(self.config.timeout, child.wait()).await;
        let failure = match waited {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(format!("the {action} command failed ({status})")),
            Ok(Err(e)) => Some(format!("waiting for the {action} command: {e}")),
            Err(_) => {
                if let Some(group) = &group {
                    group.kill();
                }
                let _ = child.wait().await;
                Some(format!(
                    "the {action} command timed out after {}s and was killed",
                    self.config.timeout.as_secs()
                ))
            }
        };
        // Output readers end when every process holding the pipes is gone.
        for reader in [stdout, stderr].into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        // Finished normally: nothing to kill (the group id may be reused
        // from here on).
        std::mem::forget(group);
        let mut logs = vec![log.lock().await.text()];
        if *stdout_url.lock().await {
            tracing::warn!(
                action,
                namespace = %request.namespace,
                "ignored an EPHEMERA_URL= line on the command's stdout"
            );
            logs.push(
                "ephemera: ignored an `EPHEMERA_URL=` line on stdout (a PR's build output can \
                 print anything there); write `url=<url>` to $EPHEMERA_OUTPUT instead\n"
                    .to_owned(),
            );
        }
        let url = match failure {
            None => read_output(&output, &mut logs),
            Some(message) => {
                return Err(ProvisionFailure {
                    message,
                    logs: logs.concat(),
                });
            }
        };
        if let Err(e) = workdir.close() {
            tracing::warn!(action, error = %e, "could not remove the command's working directory");
        }
        Ok(Finished { logs, url })
    }
}

#[async_trait]
impl Provisioner for CommandProvisioner {
    fn name(&self) -> &'static str {
        "command"
    }

    async fn provision(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        self.run_for_url("provision", &self.config.provision, request)
            .await
    }

    async fn stop(&self, request: &ProvisionRequest) -> Result<Stopped, ProvisionFailure> {
        let commands = self.sleep_commands()?;
        let Finished { logs, .. } = self.run("stop", &commands.stop, request).await?;
        Ok(Stopped {
            logs: logs.concat(),
        })
    }

    async fn start(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        let commands = self.sleep_commands()?;
        self.run_for_url("start", &commands.start, request).await
    }

    async fn destroy(&self, request: &ProvisionRequest) -> Result<Teardown, ProvisionFailure> {
        let Finished { logs, .. } = self.run("destroy", &self.config.destroy, request).await?;
        // Exit status 0 means done: a command that must wait for
        // something waits itself, within EPHEMERA_COMMAND_TIMEOUT.
        Ok(Teardown::Gone {
            logs: logs.concat(),
        })
    }
}

/// Longest line kept; the rest of an endless line is dropped.
const MAX_LINE: usize = 16 * 1024;

/// The next output line, whatever its bytes (invalid UTF-8 is replaced, a
/// line past [`MAX_LINE`] is cut); `None` at end of output. The pipe is
/// always drained, so a chatty command never blocks on a full pipe.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                return (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned());
            }
            Ok(bytes) => bytes,
        };
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (&available[..end], end + 1),
            None => (available, available.len()),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let found_end = done > chunk.len();
        reader.consume(done);
        if found_end {
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

/// Kills a whole process group (the `kill` utility, so no unsafe code)
/// when dropped: a run abandoned mid-way leaves nothing behind.
struct GroupKiller(u32);

impl GroupKiller {
    fn kill(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Output lines, keeping the newest `max` bytes.
struct BoundedLog {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
    max: usize,
    dropped: usize,
}

impl BoundedLog {
    fn new(max: usize) -> Self {
        Self {
            lines: Default::default(),
            bytes: 0,
            max,
            dropped: 0,
        }
    }

    fn push(&mut self, line: &str) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_owned());
        while self.bytes > self.max {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.len() + 1;
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::with_capacity(self.bytes + 40);
        if self.dropped > 0 {
            out.push_str(&format!("[… {} earlier lines cut …]\n", self.dropped));
        }
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The last `url=` line of the output file; other lines are named in the
/// logs and otherwise ignored.
fn read_output(path: &std::path::Path, logs: &mut Vec<String>) -> Option<String> {
    use std::io::Read as _;
    let mut text = Vec::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_OUTPUT_BYTES).read_to_end(&mut text));
    if let Err(e) = read {
        logs.push(format!("ephemera: cannot read $EPHEMERA_OUTPUT: {e}\n"));
        return None;
    }
    let mut url = None;
    for line in String::from_utf8_lossy(&text).lines() {
        match line.split_once('=') {
            Some(("url", value)) => url = Some(value.trim().to_owned()),
            Some((key, _)) => logs.push(format!(
                "ephemera: ignored `{}` in $EPHEMERA_OUTPUT (only `url` is read)\n",
                key.escape_debug()
            )),
            None if line.trim().is_empty() => {}
            None => {
                logs.push("ephemera: ignored a line without `=` in $EPHEMERA_OUTPUT\n".to_owned())
            }
        }
    }
    url
}
