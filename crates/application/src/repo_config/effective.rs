//! The effective configuration of a repository, for the REST API: what its
//! file asks for at a ref (its default branch unless told), cut to the
//! operator's bounds over the operator's defaults, and where each value
//! came from. Read on request, with the same reader (and caches) the
//! worker uses.

use std::sync::Arc;

use ephemera_domain::{InstallationId, RepositoryFullName, ResolvedConfig};
use thiserror::Error;

use super::{CONFIG_PATH, FileOrigin, RepoConfigSettings, RepoConfigs, RulesRead};
use crate::ports::InstalledRepositories;
use crate::queries::ReadFailure;

/// A repository's configuration as it stands at a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveConfig {
    pub repository: RepositoryFullName,
    pub installation: InstallationId,
    /// The ref asked for; `None`: the repository's default branch.
    pub git_ref: Option<String>,
    /// The rules a PR reading the file at this ref gets; the operator's
    /// defaults when the file is absent, not read, or invalid.
    pub resolved: ResolvedConfig,
    pub origin: FileOrigin,
    /// Why the file at this ref is refused: a PR whose rules are read here
    /// gets nothing new deployed until it is fixed.
    pub invalid: Option<String>,
}

#[derive(Debug, Error)]
pub enum EffectiveConfigError {
    #[error("no active installation of the App lists {0}")]
    NotFound(RepositoryFullName),
    /// GitHub could not be asked now; worth retrying.
    #[error("{0}")]
    GitHubUnavailable(String),
    #[error(transparent)]
    Failed(#[from] ReadFailure),
}

/// Reads repositories' effective configuration.
#[derive(Clone)]
pub struct RepoConfigQueries {
    installations: Arc<dyn InstalledRepositories>,
    configs: Arc<RepoConfigs>,
}

impl std::fmt::Debug for RepoConfigQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoConfigQueries")
            .field("configs", &self.configs)
            .finish_non_exhaustive()
    }
}

impl RepoConfigQueries {
    pub fn new(installations: Arc<dyn InstalledRepositories>, configs: Arc<RepoConfigs>) -> Self {
        Self {
            installations,
            configs,
        }
    }

    /// The operator's settings: defaults, bounds, caps.
    pub fn settings(&self) -> &RepoConfigSettings {
        self.configs.settings()
    }

    /// `repository`'s configuration at `git_ref` (a branch, tag or commit;
    /// `None`: its default branch).
    #[tracing::instrument(skip(self), fields(repository = %repository))]
    pub async fn effective(
        &self,
        repository: &RepositoryFullName,
        git_ref: Option<&str>,
    ) -> Result<EffectiveConfig, EffectiveConfigError> {
        let installation = self
            .installations
            .installation_of(repository)
            .await
            .map_err(|e| {
                ReadFailure::from_store(e, format!("finding the installation of {repository}"))
            })?
            .ok_or_else(|| EffectiveConfigError::NotFound(repository.clone()))?;
        let read = self
            .configs
            .at(installation, repository, git_ref.unwrap_or(""))
            .await;
        let (resolved, origin, invalid) = match read {
            RulesRead::Rules { resolved, origin } => (*resolved, origin, None),
            RulesRead::Invalid { git_ref, error } => {
                let (resolved, origin) = self.configs.default_rules(&format!(
                    "{CONFIG_PATH} at {} is invalid",
                    super::short(&git_ref)
                ));
                (resolved, origin, Some(error))
            }
            RulesRead::Unavailable(why) => {
                return Err(EffectiveConfigError::GitHubUnavailable(why));
            }
        };
        Ok(EffectiveConfig {
            repository: repository.clone(),
            installation,
            git_ref: git_ref.map(str::to_owned),
            resolved,
            origin,
            invalid,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use ephemera_domain::{ConfigBounds, ConfigKey, ValueSource};
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::ports::{
        FileLookup, GitHubReader, MockGitHubReader, MockInstalledRepositories, ReportError,
        RepositoryError, RepositoryFile,
    };

    fn repository() -> RepositoryFullName {
        RepositoryFullName::parse("octo/app").unwrap()
    }

    fn installations(known: bool) -> Arc<dyn InstalledRepositories> {
        let mut mock = MockInstalledRepositories::new();
        mock.expect_installation_of()
            .returning(move |_| Ok(known.then(|| InstallationId::new(7).unwrap())));
        Arc::new(mock)
    }

    fn queries(github: Option<MockGitHubReader>, known: bool) -> RepoConfigQueries {
        let settings = RepoConfigSettings {
            bounds: ConfigBounds {
                max_ttl: Some(Duration::from_secs(86_400)),
                ..ConfigBounds::default()
            },
            ..RepoConfigSettings::default()
        };
        let github = github.map(|g| Arc::new(g) as Arc<dyn GitHubReader>);
        RepoConfigQueries::new(
            installations(known),
            Arc::new(RepoConfigs::new(github, settings)),
        )
    }

    fn serving(git_ref: &'static str, answer: Result<FileLookup, ReportError>) -> MockGitHubReader {
        let mut github = MockGitHubReader::new();
        github
            .expect_repository_file()
            .with(always(), always(), eq(CONFIG_PATH), eq(git_ref), always())
            .times(1)
            .return_once(move |_, _, _, _, _| answer);
        github
    }

    #[tokio::test]
    async fn the_default_branch_is_read_when_no_ref_is_given_and_bounds_apply() {
        let file = FileLookup::Found(RepositoryFile {
            blob_sha: "abc".into(),
            text: "version: 1\npreviews:\n  ttl: 3d\n  mode: manual\n".into(),
        });
        let got = queries(Some(serving("", Ok(file))), true)
            .effective(&repository(), None)
            .await
            .unwrap();
        assert_eq!(got.installation, InstallationId::new(7).unwrap());
        assert_eq!(got.git_ref, None);
        assert_eq!(
            got.origin,
            FileOrigin::File {
                git_ref: String::new(),
                blob_sha: "abc".into()
            }
        );
        assert_eq!(got.resolved.sources[&ConfigKey::Mode], ValueSource::File);
        assert_eq!(got.resolved.sources[&ConfigKey::Ttl], ValueSource::Bound);
        assert_eq!(got.resolved.rules.ttl, Some(Duration::from_secs(86_400)));
        assert_eq!(got.invalid, None);
    }

    #[tokio::test]
    async fn an_invalid_file_shows_the_defaults_and_the_error() {
        let file = FileLookup::Found(RepositoryFile {
            blob_sha: "bad".into(),
            text: "version: 1\npreviews:\n  mdoe: off\n".into(),
        });
        let got = queries(Some(serving("feature", Ok(file))), true)
            .effective(&repository(), Some("feature"))
            .await
            .unwrap();
        assert_eq!(got.git_ref.as_deref(), Some("feature"));
        assert_eq!(
            got.origin,
            FileOrigin::Defaults(".github/ephemera.yml at feature is invalid".into())
        );
        assert!(got.invalid.unwrap().starts_with("line 3, column 3: "));
        assert!(
            got.resolved
                .sources
                .values()
                .all(|s| *s == ValueSource::Default)
        );
    }

    #[tokio::test]
    async fn unknown_repositories_unreachable_github_and_no_github_are_told_apart() {
        let err = queries(None, false)
            .effective(&repository(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, EffectiveConfigError::NotFound(_)), "{err}");

        let down = Err(ReportError::Retry {
            message: "502".into(),
            after: None,
        });
        let err = queries(Some(serving("", down)), true)
            .effective(&repository(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EffectiveConfigError::GitHubUnavailable(_)),
            "{err}"
        );

        let got = queries(None, true)
            .effective(&repository(), None)
            .await
            .unwrap();
        assert_eq!(
            got.origin,
            FileOrigin::Defaults("GitHub App not configured: no file can be read".into())
        );

        let mut broken = MockInstalledRepositories::new();
        broken
            .expect_installation_of()
            .returning(|_| Err(RepositoryError::unavailable("x", "refused")));
        let err = RepoConfigQueries::new(
            Arc::new(broken),
            Arc::new(RepoConfigs::new(None, RepoConfigSettings::default())),
        )
        .effective(&repository(), None)
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                EffectiveConfigError::Failed(ReadFailure::Unavailable { .. })
            ),
            "{err}"
        );
    }
}
