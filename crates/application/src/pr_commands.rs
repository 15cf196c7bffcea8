//! Carrying out `/preview` commands recorded from PR comments and check
//! run buttons: the writer's permission is checked with GitHub (the
//! comment's `author_association` alone is not trusted), a comment gets a
//! reaction (👀 taken, 👍 done, 😕 refused or failed), the environment is
//! moved through the same commands as the REST API, and the sticky comment
//! lists the command and how it ended.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::{CommentCommand, PreviewCommand};

use ephemera_domain::{Environment, EnvironmentStatus, PreviewMode};

use crate::PageRequest;
use crate::commands::{CommandError, EnvironmentCommands, HeadDeployment};
use crate::ports::{
    Clock, CommandEnd, CommandOrigin, CommandQueue, EnvironmentFilter, EnvironmentRepository,
    GitHubReader, GitHubReporter, PendingCommand, PullRequestRef, Reaction, ReportError,
    RepositoryError,
};
use crate::repo_config::{RepoConfigs, RulesRead};
use crate::reporting::FeaturesOff;

/// The optional feature reactions are.
const REACTIONS: &str = "reactions";

/// What one `run_once` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    Idle,
    /// The command ended so, with the text the PR is told.
    Finished {
        end: CommandEnd,
        outcome: String,
    },
}

/// The commands a `/preview help` lists.
pub const HELP: &str = "`/preview deploy`, `/preview redeploy`, `/preview destroy`, \
                        `/preview approve`, `/preview sleep`, `/preview wake`, `/preview help`";

/// What carrying out a command came to, short of an error.
enum Acted {
    Done(String),
    Refused(String),
}

/// The answer to `/preview help`.
fn help() -> (CommandEnd, String) {
    (CommandEnd::Done, format!("commands: {HELP}"))
}

pub struct CommandRunner {
    queue: Arc<dyn CommandQueue>,
    environments: Arc<dyn EnvironmentRepository>,
    reader: Arc<dyn GitHubReader>,
    reporter: Arc<dyn GitHubReporter>,
    commands: EnvironmentCommands,
    rules: Arc<RepoConfigs>,
    clock: Arc<dyn Clock>,
    worker_id: String,
    lease: Duration,
    features_off: FeaturesOff,
}

impl std::fmt::Debug for CommandRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRunner")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl CommandRunner {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Arc<dyn CommandQueue>,
        environments: Arc<dyn EnvironmentRepository>,
        reader: Arc<dyn GitHubReader>,
        reporter: Arc<dyn GitHubReporter>,
        commands: EnvironmentCommands,
        rules: Arc<RepoConfigs>,
        clock: Arc<dyn Clock>,
        worker_id: String,
        lease: Duration,
    ) -> Self {
        Self {
            queue,
            environments,
            reader,
            reporter,
            commands,
            rules,
            clock,
            worker_id,
            lease,
            features_off: FeaturesOff::default(),
        }
    }

    /// Works until `stop` turns true: a command at a time, waiting for
    /// `wake` or `poll` when none is pending.
    pub async fn run(
        &self,
        wake: crate::worker::Doorbell,
        poll: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::worker::run_until_stopped(Some(wake.listen()), stop, || async {
            match self.run_once().await {
                Ok(CommandOutcome::Idle) => crate::worker::Next::After(poll),
                Ok(CommandOutcome::Finished { .. }) => crate::worker::Next::Now,
                Err(err) => {
                    tracing::warn!(error = %err, "/preview command step failed");
                    crate::worker::Next::After(poll.max(Duration::from_secs(1)))
                }
            }
        })
        .await;
    }

    /// Carries out the oldest pending command, if any.
    pub async fn run_once(&self) -> Result<CommandOutcome, RepositoryError> {
        let Some(pending) = self
            .queue
            .claim_command(&self.worker_id, self.clock.now(), self.lease)
            .await?
        else {
            return Ok(CommandOutcome::Idle);
        };
        let pr = pending.installation_id.map(|installation| PullRequestRef {
            installation,
            repository: pending.repository.clone(),
            number: pending.pr_number,
        });
        let comment = pending.origin.comment_id();
        if let (Some(pr), Some(comment)) = (&pr, comment) {
            self.react(pr, comment, Reaction::Eyes).await;
        }
        let (end, outcome) = self.carry_out(&pending, pr.as_ref()).await;
        if let (Some(pr), Some(comment)) = (&pr, comment) {
            let reaction = match end {
                CommandEnd::Done => Reaction::PlusOne,
                CommandEnd::Refused | CommandEnd::Failed => Reaction::Confused,
            };
            self.react(pr, comment, reaction).await;
        }
        self.queue
            .finish_command(pending.id, end, &outcome, self.clock.now())
            .await?;
        Ok(CommandOutcome::Finished { end, outcome })
    }

    async fn carry_out(
        &self,
        pending: &PendingCommand,
        pr: Option<&PullRequestRef>,
    ) -> (CommandEnd, String) {
        let who = &pending.author_login;
        let command = match &pending.command {
            CommentCommand::Known(PreviewCommand::Help) => return help(),
            CommentCommand::Unknown(word) => {
                return (
                    CommandEnd::Refused,
                    format!("`/preview {word}` is not a command; commands: {HELP}"),
                );
            }
            CommentCommand::Known(command) => *command,
        };
        let Some(pr) = pr else {
            return (
                CommandEnd::Refused,
                "the delivery carried no App installation".to_owned(),
            );
        };
        match self
            .reader
            .collaborator_permission(pr.installation, &pr.repository, who)
            .await
        {
            Ok(permission) if permission.can_write() => {}
            Ok(permission) => {
                return (
                    CommandEnd::Refused,
                    format!(
                        "@{who} has {permission} permission on {}; commands need write",
                        pr.repository
                    ),
                );
            }
            Err(err) => {
                return (
                    CommandEnd::Failed,
                    format!("could not check @{who}'s permission: {err}"),
                );
            }
        }
        let filter = EnvironmentFilter {
            repository: Some(pr.repository.clone()),
            pr_number: Some(pr.number),
            ..EnvironmentFilter::default()
        };
        let first = match PageRequest::parse(Some(1), None) {
            Ok(first) => first,
            Err(err) => return (CommandEnd::Failed, format!("reading the preview: {err}")),
        };
        let env = match self.environments.list(&filter, first).await {
            Ok(found) => found.into_iter().next(),
            Err(err) => return (CommandEnd::Failed, format!("reading the preview: {err}")),
        };
        let Some(env) = env else {
            return (
                CommandEnd::Refused,
                format!("#{} has no preview yet", pr.number),
            );
        };
        let why = format!("@{who}: /preview {command}");
        let done = match self.act(pending, pr, command, &env, &why).await {
            Ok(Acted::Done(what)) => return (CommandEnd::Done, format!("{why}: {what}")),
            Ok(Acted::Refused(reason)) => return (CommandEnd::Refused, format!("{why}: {reason}")),
            Err(err) => err,
        };
        match done {
            CommandError::Conflict(reason) => (CommandEnd::Refused, format!("{why}: {reason}")),
            err @ CommandError::NotFound(_) => (CommandEnd::Refused, format!("{why}: {err}")),
            err => (CommandEnd::Failed, format!("{why}: {err}")),
        }
    }

    /// Carries out `command` (permission checked) on the PR's preview
    /// `env`; a command whose work is done already does nothing again.
    async fn act(
        &self,
        pending: &PendingCommand,
        pr: &PullRequestRef,
        command: PreviewCommand,
        env: &Environment,
        why: &str,
    ) -> Result<Acted, CommandError> {
        use EnvironmentStatus::{
            Destroyed, Destroying, Ready, Sleeping, Stopping, Updating, Waking,
        };
        let status = env.status();
        let deploys = matches!(
            command,
            PreviewCommand::Deploy | PreviewCommand::Redeploy | PreviewCommand::Approve
        );
        if deploys && let Some(off) = self.previews_off(env).await {
            return Ok(Acted::Refused(off));
        }
        let queued = |head: HeadDeployment, what: &str| {
            let sha = head.deployment.commit_sha.short();
            Acted::Done(if head.fresh {
                format!("{what}{sha} is queued")
            } else {
                format!("a deployment of {sha} is under way already")
            })
        };
        Ok(match command {
            PreviewCommand::Sleep if matches!(status, Stopping | Sleeping) => {
                Acted::Done("asleep already".to_owned())
            }
            PreviewCommand::Sleep => {
                self.commands.sleep(env.id, why).await?;
                Acted::Done("asleep soon".to_owned())
            }
            PreviewCommand::Wake if matches!(status, Waking | Ready | Updating) => {
                Acted::Done("awake already".to_owned())
            }
            PreviewCommand::Wake => {
                self.commands.wake(env.id, why).await?;
                Acted::Done("waking".to_owned())
            }
            PreviewCommand::Destroy if matches!(status, Destroying | Destroyed) => {
                Acted::Done(format!("removed already ({status})"))
            }
            PreviewCommand::Destroy => {
                self.commands.destroy_because(env.id, why).await?;
                Acted::Done("being removed".to_owned())
            }
            PreviewCommand::Redeploy => queued(
                self.commands.redeploy_head(env.id, why).await?,
                "a redeploy of ",
            ),
            PreviewCommand::Deploy => queued(
                self.commands.deploy_on_request(env.id, why).await?,
                "a deployment of ",
            ),
            PreviewCommand::Approve if !env.is_live() => {
                // Refused by the lifecycle, without asking GitHub.
                let head = self.commands.approve(env.id, &env.commit_sha, why).await?;
                Acted::Done(format!("{} approved", head.deployment.commit_sha.short()))
            }
            PreviewCommand::Approve => {
                // The head as GitHub has it now: a push the policy held
                // back is not the environment's commit yet.
                let now = self.reader.pull_request(pr).await.map_err(|err| {
                    CommandError::Unexpected(anyhow::anyhow!(
                        "reading #{} from GitHub: {err}",
                        pr.number
                    ))
                })?;
                if !now.open {
                    return Ok(Acted::Refused(format!("#{} is closed", pr.number)));
                }
                // A button approves the commit its check run is on, and
                // only while that commit is the PR's head.
                if let CommandOrigin::Button { head_sha, .. } = &pending.origin
                    && *head_sha != now.head_sha
                {
                    return Ok(Acted::Refused(format!(
                        "the button is on {}, but the PR's head is now {}; approve the head's check run or comment `/preview approve`",
                        head_sha.short(),
                        now.head_sha.short()
                    )));
                }
                // Approved and deployed already: nothing to do again.
                if env.trusted_sha.as_ref() == Some(&now.head_sha)
                    && env.commit_sha == now.head_sha
                    && matches!(status, Ready | Updating | Sleeping | Stopping | Waking)
                {
                    return Ok(Acted::Done(format!(
                        "{} is approved already",
                        now.head_sha.short()
                    )));
                }
                let head = self.commands.approve(env.id, &now.head_sha, why).await?;
                let sha = head.deployment.commit_sha.short();
                Acted::Done(if head.fresh {
                    format!("{sha} approved; its deployment is queued")
                } else {
                    format!("{sha} approved; its deployment is under way already")
                })
            }
            // Answered before any permission is asked for.
            PreviewCommand::Help => Acted::Done(help().1),
        })
    }

    /// Why a deployment cannot be asked for, when the repository's
    /// `.github/ephemera.yml` turns previews off.
    async fn previews_off(&self, env: &Environment) -> Option<String> {
        match self.rules.for_commit(env, &env.commit_sha).await {
            RulesRead::Rules { resolved, .. } if resolved.rules.mode == PreviewMode::Off => Some(
                "previews are off for this repository (`previews.mode: off` in .github/ephemera.yml)"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// A reaction is a courtesy: failing to add one changes nothing else.
    /// An App without the Issues permission gets none, said once.
    async fn react(&self, pr: &PullRequestRef, comment_id: i64, reaction: Reaction) {
        if self.features_off.is_off(pr.installation, REACTIONS) {
            return;
        }
        match self
            .reporter
            .react_to_comment(pr, comment_id, reaction)
            .await
        {
            Ok(()) => {}
            Err(ReportError::NotPermitted(why)) => {
                self.features_off.turn_off(pr.installation, REACTIONS, &why);
            }
            Err(err) => {
                tracing::warn!(comment = comment_id, error = %err, "could not react to a /preview comment");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::worker::Doorbell;
    use ephemera_domain::{DeployPolicy, InstallationId, PrNumber, RepositoryFullName};

    use super::*;
    use crate::fixtures::at;
    use crate::ports::{
        MockClock, MockCommandQueue, MockEnvironmentRepository, MockGitHubReader,
        MockGitHubReporter, MockWorkQueue, Permission,
    };

    fn pending(command: CommentCommand) -> PendingCommand {
        PendingCommand {
            id: 1,
            origin: CommandOrigin::Comment(77),
            installation_id: Some(InstallationId::new(5).unwrap()),
            repository: RepositoryFullName::parse("octo/web").unwrap(),
            pr_number: PrNumber::new(3).unwrap(),
            author_login: "mallory".into(),
            command,
        }
    }

    /// Runs `command` written by someone with `permission`; the reactions
    /// the comment got and how the command ended.
    async fn run(
        command: CommentCommand,
        permission: Permission,
    ) -> (Vec<Reaction>, CommandOutcome) {
        let mut queue = MockCommandQueue::new();
        let claimed = pending(command);
        queue
            .expect_claim_command()
            .times(1)
            .returning(move |_, _, _| Ok(Some(claimed.clone())));
        queue
            .expect_finish_command()
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut reader = MockGitHubReader::new();
        reader
            .expect_collaborator_permission()
            .returning(move |_, _, login| {
                assert_eq!(login, "mallory");
                Ok(permission)
            });
        let reactions = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = reactions.clone();
        let mut reporter = MockGitHubReporter::new();
        reporter
            .expect_react_to_comment()
            .returning(move |_, comment, reaction| {
                assert_eq!(comment, 77);
                seen.lock().unwrap().push(reaction);
                Ok(())
            });
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(0));
        let clock: Arc<dyn Clock> = Arc::new(clock);
        // Refusals never reach the environment.
        let mut work = MockWorkQueue::new();
        work.expect_begin().never();
        let commands = EnvironmentCommands::new(
            Arc::new(work),
            clock.clone(),
            Doorbell::new(),
            DeployPolicy::default(),
        );
        let runner = CommandRunner::new(
            Arc::new(queue),
            Arc::new(MockEnvironmentRepository::new()),
            Arc::new(reader),
            Arc::new(reporter),
            commands,
            Arc::new(RepoConfigs::new(None, Default::default())),
            clock,
            "w".into(),
            Duration::from_secs(60),
        );
        let outcome = runner.run_once().await.unwrap();
        let reactions = reactions.lock().unwrap().clone();
        (reactions, outcome)
    }

    #[tokio::test]
    async fn a_reader_is_refused_and_told_why() {
        let (reactions, outcome) = run(
            CommentCommand::Known(PreviewCommand::Destroy),
            Permission::Read,
        )
        .await;
        assert_eq!(reactions, [Reaction::Eyes, Reaction::Confused]);
        assert_eq!(
            outcome,
            CommandOutcome::Finished {
                end: CommandEnd::Refused,
                outcome: "@mallory has read permission on octo/web; commands need write".into()
            }
        );
    }

    #[tokio::test]
    async fn help_and_unknown_words_answer_with_the_commands() {
        let (reactions, outcome) = run(
            CommentCommand::Known(PreviewCommand::Help),
            Permission::None,
        )
        .await;
        assert_eq!(reactions, [Reaction::Eyes, Reaction::PlusOne]);
        assert!(
            matches!(&outcome, CommandOutcome::Finished { end: CommandEnd::Done, outcome } if outcome.contains("/preview wake")),
            "{outcome:?}"
        );
        let (reactions, outcome) =
            run(CommentCommand::Unknown("frob".into()), Permission::Admin).await;
        assert_eq!(reactions, [Reaction::Eyes, Reaction::Confused]);
        assert!(
            matches!(&outcome, CommandOutcome::Finished { end: CommandEnd::Refused, outcome } if outcome.starts_with("`/preview frob` is not a command")),
            "{outcome:?}"
        );
    }
}
