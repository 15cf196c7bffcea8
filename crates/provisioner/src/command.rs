//! Runs the operator's shell commands (`sh -c`) with the environment's
//! facts in `EPHEMERA_*` variables, so helm, kubectl, docker compose or
//! terraform can do the provisioning.
//!
//! - stdout and stderr go into the deployment logs, bounded;
//! - exit status 0 is success;
//! - a stdout line `EPHEMERA_URL=<url>` overrides the templated URL;
//! - past the timeout the whole process group is killed, as it is when the
//!   worker loses its lease and drops the run.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ephemera_application::ports::{ProvisionFailure, ProvisionRequest, Provisioned, Provisioner};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::Mutex;

/// Variables of ephemera's own that a command never sees.
const WITHHELD: &[&str] = &[
    "DATABASE_URL",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "EPHEMERA_API_TOKEN",
];

#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// `EPHEMERA_PROVISION_COMMAND`.
    pub provision: String,
    /// `EPHEMERA_DESTROY_COMMAND`.
    pub destroy: String,
    /// `EPHEMERA_COMMAND_TIMEOUT`.
    pub timeout: Duration,
    /// Most output kept per run (the newest).
    pub max_log_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct CommandProvisioner {
    config: CommandConfig,
}

impl CommandProvisioner {
    pub fn new(config: CommandConfig) -> Self {
        Self { config }
    }

    async fn run(
        &self,
        action: &str,
        script: &str,
        request: &ProvisionRequest,
    ) -> Result<(String, Option<String>), ProvisionFailure> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .env("EPHEMERA_ACTION", action)
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
        for name in WITHHELD {
            command.env_remove(name);
        }
        let mut child = command.spawn().map_err(|e| ProvisionFailure {
            message: format!("cannot start `sh -c` for the {action} command: {e}"),
            logs: String::new(),
        })?;
        let group = child.id().map(GroupKiller);

        let log = Arc::new(Mutex::new(BoundedLog::new(self.config.max_log_bytes)));
        let url = Arc::new(Mutex::new(None::<String>));
        let stdout = child.stdout.take().map(|out| {
            let (log, url) = (log.clone(), url.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(out);
                while let Some(line) = next_line(&mut reader).await {
                    if let Some(found) = line.trim().strip_prefix("EPHEMERA_URL=") {
                        *url.lock().await = Some(found.trim().to_owned());
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
        let logs = log.lock().await.text();
        let url = url.lock().await.clone();
        match failure {
            None => Ok((logs, url)),
            Some(message) => Err(ProvisionFailure { message, logs }),
        }
    }
}

#[async_trait]
impl Provisioner for CommandProvisioner {
    fn name(&self) -> &'static str {
        "command"
    }

    async fn provision(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        let (logs, url) = self
            .run("provision", &self.config.provision, request)
            .await?;
        Ok(Provisioned {
            url: url.unwrap_or_else(|| request.preview_url.clone()),
            logs,
        })
    }

    async fn destroy(&self, request: &ProvisionRequest) -> Result<String, ProvisionFailure> {
        let (logs, _) = self.run("destroy", &self.config.destroy, request).await?;
        Ok(logs)
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
