//! The octocrab adapter behind the `GitHubReporter` port: authenticates as
//! a GitHub App (a JWT for the App, an installation token per installation,
//! cached by octocrab until shortly before it expires) and keeps GitHub's
//! view of a PR's preview up to date: one sticky comment, the
//! `ephemera/preview` commit status and GitHub Deployments. It also reads
//! back what ephemera needs: PRs, the App's failed deliveries, a file of a
//! repository and the paths a PR changes (`contents`). For control from the
//! PR it reads a person's permission on a repository (`collaborators`),
//! reacts to command comments and keeps the "ephemera preview" check run
//! (`checks`).
//!
//! Every request names ephemera (`User-Agent: ephemera/<version>`), asks
//! for `application/vnd.github+json` at API version 2022-11-28, and every
//! answer's status and rate-limit reading goes to a [`GitHubObserver`]
//! (see `transport`).
//!
//! Depends on domain and application only, never on another adapter.

mod checks;
mod collaborators;
mod contents;
mod sign_in;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ephemera_application::ports::{
    ChangedFiles, CheckRun, CommitState, DeploymentState, FileLookup, GitHubObserver, GitHubReader,
    GitHubReporter, HookDelivery, OpenPullRequests, Permission, PullRequestRef, PullRequestState,
    Reaction, ReportError,
};
use ephemera_domain::{CommitSha, InstallationId, PrNumber, RepositoryFullName};
use http::Method;
use octocrab::auth::AppAuth;
use octocrab::models::{AppId, InstallationId as GhInstallationId};
use octocrab::{AuthState, Octocrab};
use serde::{Deserialize, Serialize};
use transport::{Watch, send};

pub use checks::CHECK_NAME;
pub use sign_in::GitHubOAuth;
pub use transport::{ACCEPT_VALUE, API_VERSION, USER_AGENT_VALUE};

/// The hidden line that marks ephemera's comment on a PR.
pub const COMMENT_MARKER: &str = "<!-- ephemera:preview -->";
/// The commit status context.
pub const STATUS_CONTEXT: &str = "ephemera/preview";

/// Why the App could not be set up; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfigError(pub String);

impl std::fmt::Display for GitHubConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GitHubConfigError {}

/// A GitHub App, able to act as any of its installations.
pub struct GitHubApp {
    app: Octocrab,
    app_id: u64,
    watch: Arc<Watch>,
    /// The App's slug (`GET /app`), asked once when first needed: its bot
    /// user is `<slug>[bot]`.
    slug: tokio::sync::OnceCell<String>,
    /// One client per installation, shared: octocrab keeps the token in
    /// the client (a clone would start with an empty cache).
    installations: Mutex<HashMap<i64, Arc<Octocrab>>>,
    /// Files read through the contents API, with their ETags.
    files: Mutex<contents::FileCache>,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp").finish_non_exhaustive()
    }
}

impl GitHubApp {
    /// `GITHUB_APP_ID`, the App's private key (PEM) and `GITHUB_API_URL`.
    pub fn new(
        app_id: u64,
        private_key_pem: &[u8],
        api_url: &str,
    ) -> Result<Self, GitHubConfigError> {
        let not_a_url = |why: String| {
            GitHubConfigError(format!("GITHUB_API_URL: `{api_url}` is not a URL: {why}"))
        };
        let base: http::Uri = api_url.parse().map_err(|e| not_a_url(format!("{e}")))?;
        if base.scheme().is_none() || base.authority().is_none() {
            return Err(not_a_url("it needs a scheme and a host".to_owned()));
        }
        let key = octocrab::EncodingKey::from_rsa_pem(private_key_pem).map_err(|_| {
            GitHubConfigError(
                "GITHUB_APP_PRIVATE_KEY: not an RSA private key in PEM format (the .pem file GitHub gives you)"
                    .to_owned(),
            )
        })?;
        let watch = Arc::new(Watch::default());
        let auth = AuthState::App(AppAuth {
            app_id: AppId(app_id),
            key,
        });
        let app = transport::app_client(auth, base, watch.clone())
            .map_err(|e| GitHubConfigError(format!("building the GitHub client: {e}")))?;
        Ok(Self {
            app,
            app_id,
            watch,
            slug: tokio::sync::OnceCell::new(),
            installations: Mutex::new(HashMap::new()),
            files: Mutex::new(contents::FileCache::default()),
        })
    }

    /// Tells `observer` about every answer from GitHub from now on (the
    /// first observer set stays).
    pub fn observed_by(self, observer: Arc<dyn GitHubObserver>) -> Self {
        self.watch.observe_with(observer);
        self
    }

    /// GitHub's `x-ratelimit-remaining` on the latest answer that had one,
    /// whichever installation (or the App itself) it was for.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        self.watch.rate_limit_remaining()
    }

    /// The client of one installation; octocrab caches its token and
    /// renews it shortly before it expires.
    fn client(&self, installation: InstallationId) -> Result<Arc<Octocrab>, ReportError> {
        let mut cache = self.installations.lock().map_err(|_| ReportError::Retry {
            message: "installation cache poisoned".into(),
            after: None,
        })?;
        if let Some(client) = cache.get(&installation.get()) {
            return Ok(client.clone());
        }
        let client = Arc::new(
            self.app
                .installation(GhInstallationId(installation.get() as u64))
                .map_err(|e| ReportError::Refused(format!("installation {installation}: {e}")))?,
        );
        cache.insert(installation.get(), client.clone());
        Ok(client)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sorts an octocrab error into what the outbox does next.
fn classify(what: &str, err: octocrab::Error) -> ReportError {
    match err {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let mut message = format!("{what}: {status} {}", source.message);
            // GitHub says what it refused in `errors` (field, code, message):
            // keep it, or a 422 in the logs says only "Validation Failed".
            let errors: Vec<String> = source
                .errors
                .iter()
                .flatten()
                .map(|e| e.to_string())
                .collect();
            if !errors.is_empty() {
                message = format!("{message}: {}", errors.join(", "));
            }
            if status == 422 {
                tracing::warn!(
                    status,
                    github_message = %source.message,
                    errors = %errors.join(", "),
                    "GitHub refused a request as invalid ({what})"
                );
            }
            let header = |name: &str| {
                source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let retry_after = header("retry-after").map(Duration::from_secs);
            let reset = source
                .rate_limit_reset
                .or_else(|| header("x-ratelimit-reset"))
                .map(|at| Duration::from_secs(at.saturating_sub(now_secs()).max(1)));
            let exhausted = header("x-ratelimit-remaining") == Some(0);
            match status {
                403 | 429 if retry_after.is_some() || exhausted || status == 429 => {
                    ReportError::Retry {
                        message,
                        after: retry_after.or(reset),
                    }
                }
                404 | 410 => ReportError::Gone(message),
                500..=599 => ReportError::Retry {
                    message,
                    after: retry_after,
                },
                _ => ReportError::Refused(message),
            }
        }
        other => ReportError::Retry {
            message: format!("{what}: {other}"),
            after: None,
        },
    }
}

/// The App permission an operation needs, as the App's settings name it.
fn permission_needed(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "checks/create" | "checks/update" => "Checks (write)",
        "reactions/create-for-issue-comment" => "Issues (write)",
        "issues/create-comment" | "issues/update-comment" | "issues/list-comments" => {
            "Pull requests (write)"
        }
        "repos/create-commit-status" => "Commit statuses (write)",
        "repos/create-deployment" | "repos/create-deployment-status" => "Deployments (write)",
        _ => return None,
    })
}

/// [`classify`] for an installation's call of `operation`: a 403 that is
/// not a rate limit is refused with the App permission the call needs
/// named (GitHub says only "Resource not accessible by integration").
fn classify_call(operation: &str, what: &str, err: octocrab::Error) -> ReportError {
    let forbidden = matches!(
        &err,
        octocrab::Error::GitHub { source, .. } if source.status_code.as_u16() == 403
    );
    match (classify(what, err), permission_needed(operation)) {
        (ReportError::Refused(message), Some(permission)) if forbidden => {
            ReportError::NotPermitted(format!(
                "{message}: the GitHub App lacks the {permission} permission on this \
                 installation (grant it in the App's settings; the installation's owner \
                 then accepts it)"
            ))
        }
        (other, _) => other,
    }
}

#[derive(Deserialize)]
struct Comment {
    id: i64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Author>,
    /// Set by GitHub on what an App wrote with an installation token.
    #[serde(default)]
    performed_via_github_app: Option<AppRef>,
}

#[derive(Deserialize)]
struct Author {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct AppRef {
    id: u64,
}

#[derive(Deserialize)]
struct AppBody {
    slug: String,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

#[derive(Serialize)]
struct CommentBody<'a> {
    body: &'a str,
}

#[derive(Serialize)]
struct ReactionBody {
    content: &'static str,
}

/// Absent fields are left out, never sent as `null`: GitHub answers 422
/// for `null` in most string fields (the contract tests check each one).
#[derive(Serialize)]
struct NewCommitStatus<'a> {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
    description: &'a str,
    context: &'static str,
}

#[derive(Serialize)]
struct NewDeployment<'a> {
    #[serde(rename = "ref")]
    git_ref: &'a str,
    environment: &'a str,
    description: &'a str,
    transient_environment: bool,
    production_environment: bool,
    auto_merge: bool,
    /// Empty: deploy whatever the checks say (ephemera sets one itself).
    required_contexts: [&'static str; 0],
}

#[derive(Serialize)]
struct NewDeploymentStatus<'a> {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment_url: Option<&'a str>,
    description: &'a str,
    auto_inactive: bool,
}

/// GitHub caps status descriptions at 140 characters.
fn short(description: &str) -> String {
    description.chars().take(140).collect()
}

fn owner_repo(pr: &PullRequestRef) -> (&str, &str) {
    (pr.repository.owner(), pr.repository.name())
}

impl GitHubApp {
    /// Whether `comment` is ephemera's sticky comment: it carries the
    /// marker and this App wrote it. Anyone can paste the marker; only the
    /// App's own comment is edited, so a person (or another App) can
    /// neither hijack the report nor make it fail on their comment.
    async fn is_ours(&self, comment: &Comment) -> Result<bool, ReportError> {
        if !comment
            .body
            .as_deref()
            .is_some_and(|b| b.starts_with(COMMENT_MARKER))
        {
            return Ok(false);
        }
        if let Some(app) = &comment.performed_via_github_app {
            return Ok(app.id == self.app_id);
        }
        // No App attribution: the App's bot user, `<slug>[bot]`.
        match &comment.user {
            Some(user) if user.kind == "Bot" && user.login.ends_with("[bot]") => {
                let slug = self.slug().await?;
                Ok(user.login.strip_suffix("[bot]") == Some(slug))
            }
            _ => Ok(false),
        }
    }

    /// POSTs `body` to `/repos/{owner}/{repo}/{rest}` of the PR's
    /// repository with its installation's token; `what` names the call in
    /// errors.
    async fn post<R: serde::de::DeserializeOwned>(
        &self,
        pr: &PullRequestRef,
        operation: &'static str,
        rest: String,
        body: &impl Serialize,
        what: &str,
    ) -> Result<R, ReportError> {
        self.to_repo(pr, operation, Method::POST, rest, body, what)
            .await
    }

    /// Sends `body` with `method` to `/repos/{owner}/{repo}/{rest}` of the
    /// PR's repository with its installation's token; `what` names the
    /// call in errors.
    async fn to_repo<R: serde::de::DeserializeOwned>(
        &self,
        pr: &PullRequestRef,
        operation: &'static str,
        method: Method,
        rest: String,
        body: &impl Serialize,
        what: &str,
    ) -> Result<R, ReportError> {
        let client = self.client(pr.installation)?;
        let (owner, repo) = owner_repo(pr);
        send(
            &client,
            operation,
            method,
            format!("/repos/{owner}/{repo}/{rest}"),
            Some(body),
        )
        .await
        .map_err(|e| classify_call(operation, what, e))
    }

    async fn slug(&self) -> Result<&str, ReportError> {
        self.slug
            .get_or_try_init(|| async {
                // The App's own JWT, not an installation token.
                send::<AppBody>(
                    &self.app,
                    "apps/get-authenticated",
                    Method::GET,
                    "/app".to_owned(),
                    None::<&()>,
                )
                .await
                .map(|app| app.slug)
                .map_err(|e| classify("reading the App's slug", e))
            })
            .await
            .map(String::as_str)
    }
}

#[async_trait]
impl GitHubReporter for GitHubApp {
    async fn upsert_comment(
        &self,
        pr: &PullRequestRef,
        known_id: Option<i64>,
        body: &str,
    ) -> Result<i64, ReportError> {
        let client = self.client(pr.installation)?;
        let (owner, repo) = owner_repo(pr);
        let body = format!("{COMMENT_MARKER}\n{body}");
        let edit = |id: i64| {
            let client = client.clone();
            let body = body.clone();
            async move {
                send::<Comment>(
                    &client,
                    "issues/update-comment",
                    Method::PATCH,
                    format!("/repos/{owner}/{repo}/issues/comments/{id}"),
                    Some(&CommentBody { body: &body }),
                )
                .await
            }
        };
        if let Some(id) = known_id {
            match edit(id).await {
                Ok(comment) => return Ok(comment.id),
                // Deleted by someone: find or create it again below.
                Err(octocrab::Error::GitHub { source, .. })
                    if source.status_code.as_u16() == 404 => {}
                Err(e) => {
                    return Err(classify_call(
                        "issues/update-comment",
                        "editing the PR comment",
                        e,
                    ));
                }
            }
        }
        let mut page = 1;
        loop {
            let comments: Vec<Comment> = send(
                &client,
                "issues/list-comments",
                Method::GET,
                format!(
                    "/repos/{owner}/{repo}/issues/{}/comments?per_page=100&page={page}",
                    pr.number
                ),
                None::<&()>,
            )
            .await
            .map_err(|e| classify("listing PR comments", e))?;
            for comment in &comments {
                if self.is_ours(comment).await? {
                    return edit(comment.id)
                        .await
                        .map(|c| c.id)
                        .map_err(|e| classify("editing the PR comment", e));
                }
            }
            if comments.len() < 100 {
                break;
            }
            page += 1;
        }
        let created: Created = self
            .post(
                pr,
                "issues/create-comment",
                format!("issues/{}/comments", pr.number),
                &CommentBody { body: &body },
                "creating the PR comment",
            )
            .await?;
        Ok(created.id)
    }

    async fn set_commit_status(
        &self,
        pr: &PullRequestRef,
        sha: &CommitSha,
        state: CommitState,
        target_url: Option<String>,
        description: &str,
    ) -> Result<(), ReportError> {
        let _: serde_json::Value = self
            .post(
                pr,
                "repos/create-commit-status",
                format!("statuses/{sha}"),
                &NewCommitStatus {
                    state: state.as_str(),
                    target_url: target_url.as_deref(),
                    description: &short(description),
                    context: STATUS_CONTEXT,
                },
                "setting the commit status",
            )
            .await?;
        Ok(())
    }

    async fn create_deployment(
        &self,
        pr: &PullRequestRef,
        sha: &CommitSha,
        environment: &str,
        description: &str,
    ) -> Result<i64, ReportError> {
        let created: Created = self
            .post(
                pr,
                "repos/create-deployment",
                "deployments".to_owned(),
                &NewDeployment {
                    git_ref: sha.as_str(),
                    environment,
                    description,
                    // Not transient: GitHub's `auto_inactive` only retires
                    // non-transient deployments, and it saves a request a push.
                    transient_environment: false,
                    production_environment: false,
                    auto_merge: false,
                    required_contexts: [],
                },
                "creating the GitHub deployment",
            )
            .await?;
        Ok(created.id)
    }

    async fn react_to_comment(
        &self,
        pr: &PullRequestRef,
        comment_id: i64,
        reaction: Reaction,
    ) -> Result<(), ReportError> {
        // 201 when new, 200 when the App had reacted so already: both done.
        let _: serde_json::Value = self
            .post(
                pr,
                "reactions/create-for-issue-comment",
                format!("issues/comments/{comment_id}/reactions"),
                &ReactionBody {
                    content: reaction.as_str(),
                },
                "reacting to the comment",
            )
            .await?;
        Ok(())
    }

    async fn create_check_run(
        &self,
        pr: &PullRequestRef,
        sha: &CommitSha,
        run: &CheckRun,
    ) -> Result<i64, ReportError> {
        let external_id = pr.number.to_string();
        let body =
            checks::CheckRunBody::of(run, Some((sha.as_str(), &external_id)), chrono::Utc::now())?;
        let created: Created = self
            .post(
                pr,
                "checks/create",
                "check-runs".to_owned(),
                &body,
                "creating the check run",
            )
            .await?;
        Ok(created.id)
    }

    async fn update_check_run(
        &self,
        pr: &PullRequestRef,
        id: i64,
        run: &CheckRun,
    ) -> Result<(), ReportError> {
        let body = checks::CheckRunBody::of(run, None, chrono::Utc::now())?;
        let _: serde_json::Value = self
            .to_repo(
                pr,
                "checks/update",
                Method::PATCH,
                format!("check-runs/{id}"),
                &body,
                "updating the check run",
            )
            .await?;
        Ok(())
    }

    async fn create_deployment_status(
        &self,
        pr: &PullRequestRef,
        deployment_id: i64,
        state: DeploymentState,
        environment_url: Option<String>,
        description: &str,
    ) -> Result<(), ReportError> {
        let _: serde_json::Value = self
            .post(
                pr,
                "repos/create-deployment-status",
                format!("deployments/{deployment_id}/statuses"),
                &NewDeploymentStatus {
                    state: state.as_str(),
                    environment_url: environment_url.as_deref(),
                    description: &short(description),
                    auto_inactive: state == DeploymentState::Success,
                },
                "setting the deployment status",
            )
            .await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct PullRequestBody {
    state: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    labels: Vec<LabelBody>,
    head: Head,
    base: Base,
}

impl PullRequestBody {
    fn into_state(self) -> Result<PullRequestState, ReportError> {
        Ok(PullRequestState {
            open: self.state == "open",
            head_sha: CommitSha::parse(&self.head.sha)
                .map_err(|e| ReportError::Refused(format!("GitHub sent {e}")))?,
            updated_at: self.updated_at,
            // A head in another repository, or in one that is gone, is a fork.
            is_fork: match (&self.head.repo, &self.base.repo) {
                (Some(head), Some(base)) => head.id != base.id,
                _ => true,
            },
            draft: self.draft,
            labels: self.labels.into_iter().map(|l| l.name).collect(),
            base_ref: self.base.git_ref,
        })
    }
}

/// One PR of a repository's list: the same fields as a single PR, and its
/// number.
#[derive(Deserialize)]
struct PullRequestListed {
    number: i64,
    #[serde(flatten)]
    body: PullRequestBody,
}

/// Pages of 100 open PRs read per repository at most.
const MAX_PR_PAGES: u32 = 10;

#[derive(Deserialize)]
struct LabelBody {
    name: String,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
    /// Null when the head repository (a fork) was deleted.
    repo: Option<RepoBody>,
}

#[derive(Deserialize)]
struct Base {
    #[serde(rename = "ref")]
    git_ref: String,
    repo: Option<RepoBody>,
}

#[derive(Deserialize)]
struct RepoBody {
    id: i64,
}

#[derive(Deserialize)]
struct DeliveryBody {
    id: i64,
    guid: String,
    event: String,
    action: Option<String>,
    status_code: u16,
    delivered_at: chrono::DateTime<chrono::Utc>,
}

#[async_trait]
impl GitHubReader for GitHubApp {
    async fn pull_request(&self, pr: &PullRequestRef) -> Result<PullRequestState, ReportError> {
        let client = self.client(pr.installation)?;
        let (owner, repo) = owner_repo(pr);
        let body: PullRequestBody = send(
            &client,
            "pulls/get",
            Method::GET,
            format!("/repos/{owner}/{repo}/pulls/{}", pr.number),
            None::<&()>,
        )
        .await
        .map_err(|e| classify("reading the PR", e))?;
        body.into_state()
    }

    async fn open_pull_requests(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        etag: Option<String>,
    ) -> Result<OpenPullRequests, ReportError> {
        let client = self.client(installation)?;
        let (owner, repo) = (repository.owner(), repository.name());
        let mut pages = transport::Pages::new(
            format!("/repos/{owner}/{repo}/pulls?state=open&per_page=100"),
            MAX_PR_PAGES,
        );
        let mut pulls = Vec::new();
        let mut first_etag = None;
        while let Some(next) = pages.next() {
            // Only the first page is asked conditionally: its ETag stands
            // for the list when the list fits on it.
            let condition = if pages.count() == 0 {
                etag.as_deref()
            } else {
                None
            };
            let answer: Option<(Vec<PullRequestListed>, _)> =
                transport::get_unless_unchanged(&client, "pulls/list", next, condition)
                    .await
                    .map_err(|e| classify("listing open PRs", e))?;
            let Some((page, headers)) = answer else {
                return Ok(OpenPullRequests::Unchanged);
            };
            pages.read(&headers);
            if pages.count() == 1 && pages.at_end() {
                first_etag = transport::etag(&headers);
            }
            for listed in page {
                let number = PrNumber::new(listed.number)
                    .map_err(|e| ReportError::Refused(format!("GitHub sent {e}")))?;
                pulls.push((number, listed.body.into_state()?));
            }
        }
        Ok(OpenPullRequests::Listed {
            etag: first_etag,
            pulls,
            complete: pages.complete(),
            pages: pages.count(),
        })
    }

    async fn repository_file(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        path: &str,
        git_ref: &str,
        max_bytes: u64,
    ) -> Result<FileLookup, ReportError> {
        self.read_file(installation, repository, path, git_ref, max_bytes)
            .await
    }

    async fn pull_request_files(&self, pr: &PullRequestRef) -> Result<ChangedFiles, ReportError> {
        self.changed_files(pr).await
    }

    async fn collaborator_permission(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        login: &str,
    ) -> Result<Permission, ReportError> {
        self.permission(installation, repository, login).await
    }

    fn rate_limit_remaining(&self) -> Option<u64> {
        GitHubApp::rate_limit_remaining(self)
    }

    async fn failed_deliveries(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        max_pages: u32,
    ) -> Result<Vec<HookDelivery>, ReportError> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let mut path = "/app/hook/deliveries?per_page=100&status=failure".to_owned();
            if let Some(cursor) = &cursor {
                path.push_str("&cursor=");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>(),
                );
            }
            // The App's own JWT, not an installation token.
            let (page, headers): (Vec<DeliveryBody>, _) =
                transport::send_paged(&self.app, "apps/list-webhook-deliveries", path)
                    .await
                    .map_err(|e| classify("listing the App's webhook deliveries", e))?;
            // Newest first: a page reaching back past `since` is the last.
            let reached_back = page.iter().any(|d| d.delivered_at < since);
            found.extend(
                page.into_iter()
                    .filter(|d| d.delivered_at >= since)
                    .map(|d| HookDelivery {
                        id: d.id,
                        guid: d.guid,
                        event: d.event,
                        action: d.action,
                        status_code: d.status_code,
                        delivered_at: d.delivered_at,
                    }),
            );
            cursor = transport::next_cursor(&headers);
            if reached_back || cursor.is_none() {
                break;
            }
        }
        Ok(found)
    }

    async fn redeliver(&self, id: i64) -> Result<(), ReportError> {
        let status = transport::status(
            &self.app,
            "apps/redeliver-webhook-delivery",
            Method::POST,
            format!("/app/hook/deliveries/{id}/attempts"),
        )
        .await
        .map_err(|e| classify("requesting a redelivery", e))?;
        if status.is_success() {
            Ok(())
        } else if status.as_u16() == 404 {
            Err(ReportError::Gone(format!(
                "delivery {id} is no longer kept by GitHub"
            )))
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(ReportError::Retry {
                message: format!("redelivery of {id}: {status}"),
                after: None,
            })
        } else {
            Err(ReportError::Refused(format!(
                "redelivery of {id}: {status}"
            )))
        }
    }
}
