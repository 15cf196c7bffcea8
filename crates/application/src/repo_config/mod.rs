//! Reading a repository's `.github/ephemera.yml` for one commit of a PR:
//! from the PR's head for a PR of the same repository (a PR may change its
//! own preview), from the base branch for a fork (its author never controls
//! the rules). Read in the worker, never on the webhook's answer path;
//! parsed files are kept by blob SHA, so the same file is parsed once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ephemera_domain::{
    CommitSha, ConfigBounds, Environment, InstallationId, RepoConfigFile, RepoRules,
    RepositoryFullName, ResolvedConfig, resolve,
};

use crate::ports::{FileLookup, GitHubReader, PullRequestRef, ReportError};

mod effective;
mod parse;

pub use effective::{EffectiveConfig, EffectiveConfigError, RepoConfigQueries};
pub use parse::{ConfigFileError, parse};

/// Where the file lives in a repository.
pub const CONFIG_PATH: &str = ".github/ephemera.yml";

/// The largest file read; a larger one is refused unread.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Parsed files kept at most (by blob SHA).
const PARSED_KEPT: usize = 512;

/// What the operator decides for every repository (docs/repository-config.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfigSettings {
    /// Read `.github/ephemera.yml` at all (`EPHEMERA_REPO_CONFIG`).
    pub read_files: bool,
    /// The rules where a file says nothing.
    pub defaults: RepoRules,
    pub bounds: ConfigBounds,
    /// Live previews per installation (`EPHEMERA_MAX_ACTIVE`).
    pub max_active_per_installation: Option<u32>,
    /// Where users read the file's schema (linked from errors).
    pub schema_url: String,
}

impl Default for RepoConfigSettings {
    fn default() -> Self {
        Self {
            read_files: true,
            defaults: RepoRules::default(),
            bounds: ConfigBounds::default(),
            max_active_per_installation: None,
            schema_url: "/api/v1/config-schema".to_owned(),
        }
    }
}

/// Where the rules came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOrigin {
    /// No file was read: the operator's defaults apply. Says why.
    Defaults(String),
    /// The file at `git_ref`.
    File { git_ref: String, blob_sha: String },
}

/// The rules for one commit of a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesRead {
    Rules {
        resolved: Box<ResolvedConfig>,
        origin: FileOrigin,
    },
    /// The file is there but is not valid: nothing new is deployed.
    Invalid { git_ref: String, error: String },
    /// GitHub could not be asked now; try again later.
    Unavailable(String),
}

/// Reads and resolves repositories' rules.
pub struct RepoConfigs {
    github: Option<Arc<dyn GitHubReader>>,
    settings: RepoConfigSettings,
    parsed: Mutex<HashMap<String, Result<RepoConfigFile, ConfigFileError>>>,
}

impl std::fmt::Debug for RepoConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoConfigs")
            .field("reads_github", &self.github.is_some())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RepoConfigs {
    /// Without `github`, no file is read: the defaults apply everywhere.
    pub fn new(github: Option<Arc<dyn GitHubReader>>, settings: RepoConfigSettings) -> Self {
        Self {
            github,
            settings,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &RepoConfigSettings {
        &self.settings
    }

    /// The operator's rules alone.
    pub fn defaults(&self, why: &str) -> RulesRead {
        let (resolved, origin) = self.default_rules(why);
        RulesRead::Rules {
            resolved: Box::new(resolved),
            origin,
        }
    }

    fn default_rules(&self, why: &str) -> (ResolvedConfig, FileOrigin) {
        (
            resolve(None, &self.settings.defaults, &self.settings.bounds),
            FileOrigin::Defaults(why.to_owned()),
        )
    }

    /// The ref the rules for `commit` of `env`'s PR are read at: the commit
    /// itself for a PR of the same repository, the base branch for a fork.
    pub fn rules_ref(env: &Environment, commit: &CommitSha) -> Option<String> {
        if !env.is_fork {
            Some(commit.as_str().to_owned())
        } else if env.base_ref.is_empty() {
            None
        } else {
            Some(env.base_ref.clone())
        }
    }

    /// The rules for `commit` of `env`'s PR.
    pub async fn for_commit(&self, env: &Environment, commit: &CommitSha) -> RulesRead {
        let Some(installation) = env.installation_id else {
            return self.defaults("no App installation: no file can be read");
        };
        let Some(git_ref) = Self::rules_ref(env, commit) else {
            return self.defaults("a fork PR whose base branch is not known yet");
        };
        self.at(installation, &env.repository, &git_ref).await
    }

    /// The rules of `repository` at `git_ref` (a commit or a branch; empty:
    /// the repository's default branch).
    pub async fn at(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        git_ref: &str,
    ) -> RulesRead {
        if !self.settings.read_files {
            return self.defaults("EPHEMERA_REPO_CONFIG=false");
        }
        let Some(github) = &self.github else {
            return self.defaults("GitHub App not configured: no file can be read");
        };
        let lookup = github
            .repository_file(
                installation,
                repository,
                CONFIG_PATH,
                git_ref,
                MAX_CONFIG_BYTES,
            )
            .await;
        let file = match lookup {
            Ok(FileLookup::Found(file)) => file,
            Ok(FileLookup::Missing) | Err(ReportError::Gone(_)) => {
                return self.defaults(&format!("no {CONFIG_PATH} at {}", short(git_ref)));
            }
            Ok(FileLookup::TooLarge { size }) => {
                return RulesRead::Invalid {
                    git_ref: git_ref.to_owned(),
                    error: format!("the file is {size} bytes; at most {MAX_CONFIG_BYTES} are read"),
                };
            }
            Err(ReportError::Refused(why) | ReportError::NotPermitted(why)) => {
                return RulesRead::Invalid {
                    git_ref: git_ref.to_owned(),
                    error: why,
                };
            }
            Err(err @ ReportError::Retry { .. }) => {
                return RulesRead::Unavailable(format!("reading {CONFIG_PATH}: {err}"));
            }
        };
        match self.parsed(&file.blob_sha, &file.text) {
            Ok(asked) => RulesRead::Rules {
                resolved: Box::new(resolve(
                    Some(&asked),
                    &self.settings.defaults,
                    &self.settings.bounds,
                )),
                origin: FileOrigin::File {
                    git_ref: git_ref.to_owned(),
                    blob_sha: file.blob_sha,
                },
            },
            Err(error) => RulesRead::Invalid {
                git_ref: git_ref.to_owned(),
                error: error.to_string(),
            },
        }
    }

    /// The files `env`'s PR changes; `None` when GitHub's list was cut
    /// short (path rules then let the PR through).
    pub async fn changed_files(&self, env: &Environment) -> Result<Option<Vec<String>>, String> {
        let (Some(github), Some(installation)) = (&self.github, env.installation_id) else {
            return Ok(None);
        };
        let pr = PullRequestRef {
            installation,
            repository: env.repository.clone(),
            number: env.pr_number,
        };
        match github.pull_request_files(&pr).await {
            Ok(files) if files.complete => Ok(Some(files.paths)),
            Ok(_) => Ok(None),
            Err(err) => Err(format!("listing the PR's files: {err}")),
        }
    }

    fn parsed(&self, blob_sha: &str, text: &str) -> Result<RepoConfigFile, ConfigFileError> {
        let mut cache = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = cache.get(blob_sha) {
            return known.clone();
        }
        let result = parse(text);
        if cache.len() >= PARSED_KEPT {
            cache.clear();
        }
        cache.insert(blob_sha.to_owned(), result.clone());
        result
    }
}

/// A ref as messages name it: a commit by its short SHA, no ref as the
/// default branch.
fn short(git_ref: &str) -> &str {
    if git_ref.is_empty() {
        "the default branch"
    } else if git_ref.len() == 40 && git_ref.chars().all(|c| c.is_ascii_hexdigit()) {
        &git_ref[..7]
    } else {
        git_ref
    }
}

/// The message a PR sees for an invalid file.
pub fn invalid_file_message(git_ref: &str, error: &str, schema_url: &str) -> String {
    format!(
        "{CONFIG_PATH} at {} is invalid: {error} (schema: {schema_url})",
        short(git_ref)
    )
}
