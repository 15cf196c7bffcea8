//! Carrying out `/preview` commands recorded from PR comments: the writer's
//! permission is checked with GitHub (the comment's `author_association`
//! alone is not trusted), the comment gets a reaction (👀 taken, 👍 done,
//! 😕 refused or failed), and the environment is moved through the same
//! commands as the REST API.
//!
//! Work in progress (#15): the sticky comment does not carry the
//! command's line yet, and there is no check run with buttons yet.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::{CommentCommand, PreviewCommand};

use crate::PageRequest;
use crate::commands::{CommandError, EnvironmentCommands};
use crate::ports::{
    Clock, CommandEnd, CommandQueue, EnvironmentFilter, EnvironmentRepository, GitHubReader,
    GitHubReporter, PendingCommand, PullRequestRef, Reaction, RepositoryError,
};

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
    clock: Arc<dyn Clock>,
    worker_id: String,
    lease: Duration,
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
            clock,
            worker_id,
            lease,
        }
    }

    /// Works until `stop` turns true: a command at a time, waiting for
    /// `wake` or `poll` when none is pending.
    pub async fn run(
        &self,
        wake: Arc<tokio::sync::Notify>,
        poll: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::worker::run_until_stopped(Some(&wake), stop, || async {
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
        if let Some(pr) = &pr {
            self.react(pr, pending.comment_id, Reaction::Eyes).await;
        }
        let (end, outcome) = self.carry_out(&pending, pr.as_ref()).await;
        if let Some(pr) = &pr {
            let reaction = match end {
                CommandEnd::Done => Reaction::PlusOne,
                CommandEnd::Refused | CommandEnd::Failed => Reaction::Confused,
            };
            self.react(pr, pending.comment_id, reaction).await;
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
        let done = match command {
            PreviewCommand::Sleep => self
                .commands
                .sleep(env.id, &why)
                .await
                .map(|_| "asleep soon".to_owned()),
            PreviewCommand::Wake => self
                .commands
                .wake(env.id, &why)
                .await
                .map(|_| "waking".to_owned()),
            PreviewCommand::Redeploy => self
                .commands
                .redeploy(env.id)
                .await
                .map(|_| "a redeploy is queued".to_owned()),
            PreviewCommand::Destroy => self
                .commands
                .destroy_because(env.id, &why)
                .await
                .map(|_| "being removed".to_owned()),
            PreviewCommand::Deploy => self
                .commands
                .deploy_on_request(env.id, &why)
                .await
                .map(|d| format!("a deployment of {} is queued", d.commit_sha.short())),
            PreviewCommand::Approve => self.commands.approve(env.id, &why).await.map(|d| {
                format!(
                    "{} approved; its deployment is queued",
                    d.commit_sha.short()
                )
            }),
            // Answered above, before any permission is asked for.
            PreviewCommand::Help => return help(),
        };
        match done {
            Ok(what) => (CommandEnd::Done, format!("{why}: {what}")),
            Err(CommandError::Conflict(reason)) => {
                (CommandEnd::Refused, format!("{why}: {reason}"))
            }
            Err(err @ CommandError::NotFound(_)) => (CommandEnd::Refused, format!("{why}: {err}")),
            Err(err) => (CommandEnd::Failed, format!("{why}: {err}")),
        }
    }

    /// A reaction is a courtesy: failing to add one changes nothing else.
    async fn react(&self, pr: &PullRequestRef, comment_id: i64, reaction: Reaction) {
        if let Err(err) = self
            .reporter
            .react_to_comment(pr, comment_id, reaction)
            .await
        {
            tracing::warn!(comment = comment_id, error = %err, "could not react to a /preview comment");
        }
    }
}

#[cfg(test)]
mod tests {
    use ephemera_domain::{DeployPolicy, InstallationId, PrNumber, RepositoryFullName};
    use tokio::sync::Notify;

    use super::*;
    use crate::fixtures::at;
    use crate::ports::{
        MockClock, MockCommandQueue, MockEnvironmentRepository, MockGitHubReader,
        MockGitHubReporter, MockWorkQueue, Permission,
    };

    fn pending(command: CommentCommand) -> PendingCommand {
        PendingCommand {
            id: 1,
            comment_id: 77,
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
            Arc::new(Notify::new()),
            DeployPolicy::default(),
        );
        let runner = CommandRunner::new(
            Arc::new(queue),
            Arc::new(MockEnvironmentRepository::new()),
            Arc::new(reader),
            Arc::new(reporter),
            commands,
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
