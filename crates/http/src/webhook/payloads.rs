//! The parts of GitHub's webhook payloads ephemera reads, and their
//! conversion into the use case's `IncomingDelivery`.
//!
//! Hand-written rather than octocrab's complete event models on purpose:
//! these structs name only the fields ephemera uses, so a delivery is never
//! refused because some unrelated field changed shape (see docs/decisions.md).

use chrono::{DateTime, Utc};
use ephemera_application::webhooks::{
    DeliveryChange, IncomingDelivery, PullRequestAction, PullRequestChange,
};
use ephemera_domain::{
    CommitSha, DeliveryId, GithubUser, GithubUserId, InstallationId, InstalledRepository, PrNumber,
    RepositoryFullName, ValidationError,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Fields every event may carry, kept as the raw JSON text: their shape is
/// only held against the event when ephemera acts on it, so an event it
/// ignores is never refused for an odd `sender` or `repository` (and costs
/// no parse of them).
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    action: Option<&'a RawValue>,
    #[serde(borrow)]
    repository: Option<&'a RawValue>,
    #[serde(borrow)]
    installation: Option<&'a RawValue>,
    #[serde(borrow)]
    sender: Option<&'a RawValue>,
}

/// The events ephemera acts on; every other one is logged and ignored.
const HANDLED: [&str; 6] = [
    "ping",
    "pull_request",
    "installation",
    "installation_repositories",
    "issue_comment",
    "check_run",
];

/// Reads one envelope field and converts it: strictly for a handled event
/// (an error names the field), leniently (absent when unreadable) for an
/// ignored one.
fn field<T: serde::de::DeserializeOwned, U>(
    raw: Option<&RawValue>,
    name: &str,
    strict: bool,
    convert: impl FnOnce(T) -> Result<U, PayloadError>,
) -> Result<Option<U>, PayloadError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let read = serde_json::from_str::<Option<T>>(raw.get())
        .map_err(|e| PayloadError(format!("`{name}`: {e}")))
        .and_then(|value| value.map(convert).transpose());
    match read {
        Err(_) if !strict => Ok(None),
        other => other,
    }
}

#[derive(Debug, Deserialize)]
struct Repository {
    #[serde(deserialize_with = "integer")]
    id: i64,
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct InstallationRef {
    /// Required on installation events (checked where it is read).
    #[serde(default, deserialize_with = "optional_integer")]
    id: Option<i64>,
    /// On installation events; GitHub sends epoch seconds or RFC 3339.
    #[serde(default)]
    updated_at: Option<GitHubTime>,
}

/// A time GitHub writes either as epoch seconds or as an RFC 3339 string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GitHubTime {
    Epoch(#[serde(deserialize_with = "integer")] i64),
    Text(DateTime<Utc>),
}

impl GitHubTime {
    fn get(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Epoch(secs) => DateTime::from_timestamp(*secs, 0),
            Self::Text(at) => Some(*at),
        }
    }
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(deserialize_with = "integer")]
    id: i64,
    login: String,
    email: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: PullRequest,
    repository: Repository,
    label: Option<Label>,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    number: i64,
    title: String,
    state: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    merged: bool,
    updated_at: DateTime<Utc>,
    user: User,
    head: GitRef,
    base: GitRef,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Debug, Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
    /// Null when the head repository (a fork) was deleted.
    repo: Option<Repository>,
}

#[derive(Debug, Deserialize)]
struct Label {
    name: String,
}

#[derive(Debug, Deserialize)]
struct InstallationEvent {
    action: String,
    installation: Installation,
    #[serde(default)]
    repositories: Option<Vec<RepositoryRef>>,
}

#[derive(Debug, Deserialize)]
struct InstallationRepositoriesEvent {
    action: String,
    installation: Installation,
    #[serde(default)]
    repositories_added: Vec<RepositoryRef>,
    #[serde(default)]
    repositories_removed: Vec<RepositoryRef>,
}

/// The installation's id comes through the envelope; only its account
/// is read here.
#[derive(Debug, Deserialize)]
struct Installation {
    account: Account,
}

#[derive(Debug, Deserialize)]
struct Account {
    login: String,
}

#[derive(Debug, Deserialize)]
struct RepositoryRef {
    #[serde(deserialize_with = "integer")]
    id: i64,
    full_name: String,
}

/// Why a signed delivery could not be read.
/// A JSON integer, also when written with a fraction of zero (`5.0`): JSON
/// (and the API description, after JSON Schema) counts that as the same
/// integer, so it is read as one.
fn integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error as _;
    match serde_json::Number::deserialize(deserializer)? {
        n if n.is_i64() => n
            .as_i64()
            .ok_or_else(|| D::Error::custom("not a 64-bit integer")),
        n => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63))
            .map(|f| f as i64)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a 64-bit integer"))),
    }
}

/// [`integer`], or `None` for an absent or null field.
fn optional_integer<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Integer(#[serde(deserialize_with = "integer")] i64);
    Ok(Option::<Integer>::deserialize(deserializer)?.map(|Integer(n)| n))
}

#[derive(Debug)]
pub(crate) struct PayloadError(pub String);

impl From<ValidationError> for PayloadError {
    fn from(err: ValidationError) -> Self {
        Self(err.to_string())
    }
}

fn json_error(what: &str, err: serde_json::Error) -> PayloadError {
    PayloadError(format!("{what} payload: {err}"))
}

impl User {
    fn into_domain(self) -> Result<GithubUser, PayloadError> {
        Ok(GithubUser {
            github_id: GithubUserId::new(self.id)?,
            login: self.login,
            email: self.email,
            avatar_url: self.avatar_url,
        })
    }
}

impl RepositoryRef {
    fn into_domain(self) -> Result<InstalledRepository, PayloadError> {
        Ok(InstalledRepository {
            github_id: self.id,
            full_name: RepositoryFullName::parse(&self.full_name)?,
        })
    }
}

fn repositories(refs: Vec<RepositoryRef>) -> Result<Vec<InstalledRepository>, PayloadError> {
    refs.into_iter().map(RepositoryRef::into_domain).collect()
}

/// Reads a verified delivery's body.
pub(crate) fn parse(
    event: &str,
    delivery_id: DeliveryId,
    body: &[u8],
) -> Result<IncomingDelivery, PayloadError> {
    // The envelope first, the event's own shape only for events ephemera
    // handles: a handled event is read twice, but an event it ignores can
    // never be refused for a field that happens to share a name.
    // A JSON object, as GitHub sends: serde would also read a struct from
    // an array of its fields.
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(PayloadError(
            "malformed JSON: the payload is not an object".into(),
        ));
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| PayloadError(format!("malformed JSON: {e}")))?;
    let strict = HANDLED.contains(&event);
    let repository = field(
        envelope.repository,
        "repository",
        strict,
        |r: Repository| Ok(RepositoryFullName::parse(&r.full_name)?),
    )?;
    let installed = field(
        envelope.installation,
        "installation",
        strict,
        |i: InstallationRef| {
            let id = i.id.map(InstallationId::new).transpose()?;
            Ok((id, i.updated_at.as_ref().and_then(GitHubTime::get)))
        },
    )?;
    let (installation_id, installation_updated_at) = installed.unwrap_or_default();
    if matches!(event, "installation" | "installation_repositories") && installation_id.is_none() {
        return Err(PayloadError(format!(
            "{event} event without `installation.id`"
        )));
    }
    let sender = field(envelope.sender, "sender", strict, User::into_domain)?;
    let action = field(envelope.action, "action", strict, |a: String| Ok(a))?;

    let change = match event {
        "ping" => DeliveryChange::Ping,
        "pull_request" => pull_request(body)?,
        "installation" => installation(body)?,
        "installation_repositories" => installation_repositories(body)?,
        "issue_comment" => issue_comment(body)?,
        "check_run" => check_run(body)?,
        other => DeliveryChange::Ignored(format!("`{other}` events do not affect previews")),
    };
    Ok(IncomingDelivery {
        delivery_id,
        event: event.to_owned(),
        action,
        repository,
        installation_id,
        sender,
        body_sha256: Some(hex::encode(Sha256::digest(body))),
        installation_updated_at,
        change,
    })
}

fn pull_request(body: &[u8]) -> Result<DeliveryChange, PayloadError> {
    let event: PullRequestEvent =
        serde_json::from_slice(body).map_err(|e| json_error("pull_request", e))?;
    let pr = event.pull_request;
    let action = match event.action.as_str() {
        "opened" => PullRequestAction::Opened,
        "reopened" => PullRequestAction::Reopened,
        "ready_for_review" => PullRequestAction::ReadyForReview,
        "synchronize" => PullRequestAction::Synchronize,
        "closed" => PullRequestAction::Closed { merged: pr.merged },
        "converted_to_draft" => PullRequestAction::ConvertedToDraft,
        "edited" => PullRequestAction::Edited,
        "labeled" | "unlabeled" => {
            let label = event.label.map(|l| l.name).ok_or_else(|| {
                PayloadError(format!("pull_request.{} without a label", event.action))
            })?;
            if event.action == "labeled" {
                PullRequestAction::Labeled { label }
            } else {
                PullRequestAction::Unlabeled { label }
            }
        }
        other => {
            return Ok(DeliveryChange::Ignored(format!(
                "pull_request.{other} does not affect previews"
            )));
        }
    };
    // A head in another repository, or in one that no longer exists, is a
    // fork: its code was not written by someone with access to the base.
    let is_fork = match (&pr.head.repo, &pr.base.repo) {
        (Some(head), Some(base)) => head.id != base.id,
        _ => true,
    };
    Ok(DeliveryChange::PullRequest(Box::new(PullRequestChange {
        action,
        repository: RepositoryFullName::parse(&event.repository.full_name)?,
        repository_id: event.repository.id,
        number: PrNumber::new(pr.number)?,
        title: pr.title,
        head_sha: CommitSha::parse(&pr.head.sha)?,
        head_ref: pr.head.name,
        base_ref: pr.base.name,
        is_fork,
        open: pr.state == "open",
        draft: pr.draft,
        labels: pr.labels.into_iter().map(|l| l.name).collect(),
        author: pr.user.into_domain()?,
        updated_at: pr.updated_at,
    })))
}

#[derive(Debug, Deserialize)]
struct IssueCommentEvent {
    action: String,
    issue: CommentedIssue,
    comment: Comment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct CheckRunEvent {
    action: String,
    check_run: CheckRunPayload,
    #[serde(default)]
    requested_action: Option<RequestedAction>,
    repository: Repository,
    sender: User,
}

#[derive(Debug, Deserialize)]
struct CheckRunPayload {
    #[serde(deserialize_with = "integer")]
    id: i64,
    name: String,
    head_sha: String,
    /// The PR's number, as ephemera set it when creating the run.
    #[serde(default)]
    external_id: Option<String>,
    /// Empty for a fork PR.
    #[serde(default)]
    pull_requests: Vec<CheckRunPull>,
}

#[derive(Debug, Deserialize)]
struct CheckRunPull {
    number: i64,
}

#[derive(Debug, Deserialize)]
struct RequestedAction {
    identifier: String,
}

#[derive(Debug, Deserialize)]
struct CommentedIssue {
    number: i64,
    /// Present only when the issue is a PR.
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    #[serde(deserialize_with = "integer")]
    id: i64,
    #[serde(default)]
    body: Option<String>,
    user: CommentAuthor,
}

#[derive(Debug, Deserialize)]
struct CommentAuthor {
    #[serde(flatten)]
    user: User,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// A new comment on a PR that starts a line with `/preview`; edits, issues
/// and bots never command anything.
fn issue_comment(body: &[u8]) -> Result<DeliveryChange, PayloadError> {
    let event: IssueCommentEvent =
        serde_json::from_slice(body).map_err(|e| json_error("issue_comment", e))?;
    if event.action != "created" {
        return Ok(DeliveryChange::Ignored(format!(
            "issue_comment.{}: only new comments carry commands",
            event.action
        )));
    }
    if event.issue.pull_request.is_none() {
        return Ok(DeliveryChange::Ignored(
            "a comment on an issue, not on a pull request".into(),
        ));
    }
    if event.comment.user.kind.as_deref() == Some("Bot") {
        return Ok(DeliveryChange::Ignored(
            "a bot's comment: bots never command previews".into(),
        ));
    }
    let Some(command) =
        ephemera_domain::CommentCommand::parse(event.comment.body.as_deref().unwrap_or_default())
    else {
        return Ok(DeliveryChange::Ignored("no /preview command".into()));
    };
    Ok(DeliveryChange::Command(Box::new(
        ephemera_application::webhooks::PreviewCommandChange {
            repository: RepositoryFullName::parse(&event.repository.full_name)?,
            repository_id: event.repository.id,
            number: PrNumber::new(event.issue.number)?,
            origin: ephemera_application::ports::CommandOrigin::Comment(event.comment.id),
            author: event.comment.user.user.into_domain()?,
            command,
        },
    )))
}

/// A click on a button of the "ephemera preview" check run
/// (`check_run.requested_action`): the `/preview` command of the same
/// name, on the PR the run's external id names.
fn check_run(body: &[u8]) -> Result<DeliveryChange, PayloadError> {
    let event: CheckRunEvent =
        serde_json::from_slice(body).map_err(|e| json_error("check_run", e))?;
    if event.action != "requested_action" {
        return Ok(DeliveryChange::Ignored(format!(
            "check_run.{}: only a button click carries a command",
            event.action
        )));
    }
    let run = event.check_run;
    if run.name != ephemera_application::reporting::CHECK_NAME {
        return Ok(DeliveryChange::Ignored(format!(
            "a button of the `{}` check run, not ephemera's",
            run.name
        )));
    }
    let Some(action) = event.requested_action else {
        return Err(PayloadError(
            "check_run.requested_action without `requested_action`".into(),
        ));
    };
    let number = run
        .external_id
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
        .or_else(|| run.pull_requests.first().map(|p| p.number));
    let Some(number) = number else {
        return Ok(DeliveryChange::Ignored(
            "the check run names no pull request".into(),
        ));
    };
    let command = match action.identifier.parse::<ephemera_domain::PreviewCommand>() {
        Ok(
            command @ (ephemera_domain::PreviewCommand::Redeploy
            | ephemera_domain::PreviewCommand::Destroy
            | ephemera_domain::PreviewCommand::Approve
            | ephemera_domain::PreviewCommand::Wake),
        ) => ephemera_domain::CommentCommand::Known(command),
        _ => {
            return Ok(DeliveryChange::Ignored(format!(
                "`{}` is not a button of ephemera's",
                action.identifier.chars().take(40).collect::<String>()
            )));
        }
    };
    Ok(DeliveryChange::Command(Box::new(
        ephemera_application::webhooks::PreviewCommandChange {
            repository: RepositoryFullName::parse(&event.repository.full_name)?,
            repository_id: event.repository.id,
            number: PrNumber::new(number)?,
            origin: ephemera_application::ports::CommandOrigin::Button {
                check_run_id: run.id,
                head_sha: ephemera_domain::CommitSha::parse(&run.head_sha)?,
            },
            author: event.sender.into_domain()?,
            command,
        },
    )))
}

fn installation(body: &[u8]) -> Result<DeliveryChange, PayloadError> {
    let event: InstallationEvent =
        serde_json::from_slice(body).map_err(|e| json_error("installation", e))?;
    let account_login = event.installation.account.login;
    Ok(match event.action.as_str() {
        "created" => DeliveryChange::InstallationCreated {
            account_login,
            repositories: repositories(event.repositories.unwrap_or_default())?,
        },
        "deleted" => DeliveryChange::InstallationDeleted { account_login },
        "suspend" => DeliveryChange::InstallationSuspended { account_login },
        "unsuspend" => DeliveryChange::InstallationUnsuspended { account_login },
        other => DeliveryChange::Ignored(format!("installation.{other} does not affect previews")),
    })
}

fn installation_repositories(body: &[u8]) -> Result<DeliveryChange, PayloadError> {
    let event: InstallationRepositoriesEvent =
        serde_json::from_slice(body).map_err(|e| json_error("installation_repositories", e))?;
    let account_login = event.installation.account.login;
    Ok(match event.action.as_str() {
        "added" => DeliveryChange::RepositoriesAdded {
            account_login,
            repositories: repositories(event.repositories_added)?,
        },
        "removed" => DeliveryChange::RepositoriesRemoved {
            account_login,
            repositories: repositories(event.repositories_removed)?,
        },
        other => DeliveryChange::Ignored(format!(
            "installation_repositories.{other} does not affect previews"
        )),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::*;

    fn example(name: &str) -> Value {
        serde_json::from_str(ephemera_webhook_examples::find(name).unwrap().body).unwrap()
    }

    fn read(event: &str, body: &Value) -> Result<IncomingDelivery, PayloadError> {
        parse(
            event,
            DeliveryId::parse("d-1").unwrap(),
            &serde_json::to_vec(body).unwrap(),
        )
    }

    fn change(event: &str, body: &Value) -> PullRequestChange {
        match read(event, body).unwrap().change {
            DeliveryChange::PullRequest(pr) => *pr,
            other => panic!("not a pull request change: {other:?}"),
        }
    }

    #[test]
    fn every_vendored_example_reads() {
        for example in ephemera_webhook_examples::ALL {
            let body: Value = serde_json::from_str(example.body).unwrap();
            let read = read(example.event(), &body);
            assert!(read.is_ok(), "{}: {:?}", example.name, read.err());
        }
    }

    /// GitHub's example comment, made a `/preview` command on PR 1.
    fn command_comment(body: &str) -> Value {
        let mut event = example("issue_comment.created.with-installation");
        event["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
        event["comment"]["body"] = json!(body);
        event
    }

    fn outcome(body: &Value) -> DeliveryChange {
        read("issue_comment", body).unwrap().change
    }

    #[test]
    fn a_new_pr_comment_starting_a_line_with_preview_is_a_command() {
        let DeliveryChange::Command(c) = outcome(&command_comment("thanks!\n/preview sleep"))
        else {
            panic!("not a command");
        };
        assert_eq!(
            c.command,
            ephemera_domain::CommentCommand::Known(ephemera_domain::PreviewCommand::Sleep)
        );
        assert_eq!(c.number.get(), 1);
        assert_eq!(
            c.origin,
            ephemera_application::ports::CommandOrigin::Comment(492_700_400)
        );
        assert_eq!(c.repository.as_str(), "Codertocat/Hello-World");
    }

    #[test]
    fn edits_issues_bots_and_plain_comments_command_nothing() {
        let mut edited = command_comment("/preview destroy");
        edited["action"] = json!("edited");
        let mut on_issue = command_comment("/preview destroy");
        on_issue["issue"]
            .as_object_mut()
            .unwrap()
            .remove("pull_request");
        let mut by_bot = command_comment("/preview destroy");
        by_bot["comment"]["user"]["type"] = json!("Bot");
        let plain = command_comment("Looks good to me, try /preview destroy later");
        for (body, why) in [
            (
                edited,
                "issue_comment.edited: only new comments carry commands",
            ),
            (on_issue, "a comment on an issue, not on a pull request"),
            (by_bot, "a bot's comment: bots never command previews"),
            (plain, "no /preview command"),
        ] {
            match outcome(&body) {
                DeliveryChange::Ignored(reason) => assert_eq!(reason, why),
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    /// GitHub's example click, made one on ephemera's check run of PR 7
    /// (its external id) with button `identifier`.
    fn click(identifier: &str) -> Value {
        let mut event = example("check_run.requested_action");
        event["check_run"]["name"] = json!("ephemera preview");
        event["check_run"]["external_id"] = json!("7");
        event["requested_action"]["identifier"] = json!(identifier);
        event
    }

    #[test]
    fn a_click_on_ephemeras_check_run_button_is_a_command_on_its_pr() {
        let DeliveryChange::Command(c) = read("check_run", &click("redeploy")).unwrap().change
        else {
            panic!("not a command");
        };
        assert_eq!(
            c.command,
            ephemera_domain::CommentCommand::Known(ephemera_domain::PreviewCommand::Redeploy)
        );
        // The external id names the PR (a fork's run lists none).
        assert_eq!(c.number.get(), 7);
        assert_eq!(c.author.login, "codebytere");
        assert_eq!(
            c.origin,
            ephemera_application::ports::CommandOrigin::Button {
                check_run_id: 1_494_503_112,
                head_sha: ephemera_domain::CommitSha::parse(
                    "5bd5f196a46b8222fb7484f05faba41a73cf34bd"
                )
                .unwrap(),
            }
        );
        // Without an external id, the run's PR list does.
        let mut listed = click("destroy");
        listed["check_run"]["external_id"] = json!("");
        let DeliveryChange::Command(c) = read("check_run", &listed).unwrap().change else {
            panic!("not a command");
        };
        assert_eq!(c.number.get(), 26764);
    }

    #[test]
    fn other_check_runs_and_unknown_buttons_command_nothing() {
        let mut theirs = click("redeploy");
        theirs["check_run"]["name"] = json!("API Review");
        let mut rerun = click("redeploy");
        rerun["action"] = json!("rerequested");
        let mut no_pr = click("redeploy");
        no_pr["check_run"]["external_id"] = json!("");
        no_pr["check_run"]["pull_requests"] = json!([]);
        for (body, why) in [
            (
                theirs,
                "a button of the `API Review` check run, not ephemera's",
            ),
            (
                rerun,
                "check_run.rerequested: only a button click carries a command",
            ),
            (click("sleep"), "`sleep` is not a button of ephemera's"),
            (no_pr, "the check run names no pull request"),
        ] {
            match read("check_run", &body).unwrap().change {
                DeliveryChange::Ignored(reason) => assert_eq!(reason, why),
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_pr_from_a_deleted_fork_is_a_fork() {
        let mut body = example("pull_request.opened");
        assert!(!change("pull_request", &body).is_fork);
        body["pull_request"]["head"]["repo"] = Value::Null;
        assert!(change("pull_request", &body).is_fork);
    }

    #[test]
    fn labeled_without_a_label_is_refused() {
        let mut body = example("pull_request.labeled");
        assert!(matches!(
            change("pull_request", &body).action,
            PullRequestAction::Labeled { .. }
        ));
        body.as_object_mut().unwrap().remove("label");
        let err = read("pull_request", &body).unwrap_err();
        assert!(err.0.contains("without a label"), "{}", err.0);
    }

    #[test]
    fn unknown_actions_are_ignored_not_refused() {
        let mut body = example("pull_request.opened");
        body["action"] = json!("auto_merge_enabled");
        let delivery = read("pull_request", &body).unwrap();
        assert!(
            matches!(&delivery.change, DeliveryChange::Ignored(why) if why.contains("auto_merge_enabled")),
            "{delivery:?}"
        );
        let mut body = example("installation.created");
        body["action"] = json!("new_permissions_accepted");
        assert!(matches!(
            read("installation", &body).unwrap().change,
            DeliveryChange::Ignored(_)
        ));
    }

    #[test]
    fn an_ignored_event_with_an_odd_sender_or_repository_is_not_refused() {
        let mut body = example("push");
        body["sender"] = json!({"login": "no-id"});
        body["repository"] = json!({"full_name": "not a repository name"});
        body["action"] = json!(7);
        let delivery = read("push", &body).unwrap();
        assert!(matches!(delivery.change, DeliveryChange::Ignored(_)));
        assert_eq!((delivery.sender, delivery.repository), (None, None));
        // The same sender on an event ephemera acts on is refused.
        let mut body = example("pull_request.opened");
        body["sender"] = json!({"login": "no-id"});
        let err = read("pull_request", &body).unwrap_err();
        assert!(err.0.contains("sender"), "{}", err.0);
    }

    #[test]
    fn an_installation_event_without_an_installation_id_is_refused() {
        for name in ["installation.created", "installation_repositories.added"] {
            let mut body = example(name);
            body["installation"].as_object_mut().unwrap().remove("id");
            let event = name.split('.').next().unwrap();
            let err = read(event, &body).unwrap_err();
            assert!(err.0.contains("installation.id"), "{name}: {}", err.0);
        }
    }
}
