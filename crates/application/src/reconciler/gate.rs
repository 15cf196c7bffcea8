//! Before a deployment: what the repository's rules say about its commit.
//! Read outside any transaction (it asks GitHub), then carried out by the
//! plan under the row lock, if the commit is still the one wanted.

use ephemera_domain::{CommitSha, DueWork, EnvironmentId, PrSubject, ResolvedConfig};

use super::{ReconcileError, Reconciler};
use crate::repo_config::{FileOrigin, RulesRead, invalid_file_message};

/// The rules' verdict on one commit.
#[derive(Debug, Clone)]
pub(super) struct Gate {
    pub(super) commit: CommitSha,
    pub(super) verdict: Verdict,
}

#[derive(Debug, Clone)]
pub(super) enum Verdict {
    /// Deploy under these rules.
    Open {
        resolved: Box<ResolvedConfig>,
        origin: FileOrigin,
    },
    /// The rules give the commit no preview (the message names the rule).
    Skip(String),
    /// The file is invalid: nothing new is deployed.
    Invalid(String),
    /// GitHub could not be asked; look again later.
    Unavailable(String),
}

impl Reconciler {
    /// The rules for the commit `id` is about to deploy; `None` when it is
    /// not about to deploy or no rules are read.
    pub(super) async fn gate(&self, id: EnvironmentId) -> Result<Option<Gate>, ReconcileError> {
        let Some(configs) = &self.configs else {
            return Ok(None);
        };
        let (env, commit) = {
            let mut tx = self.queue.begin().await?;
            let Some(env) = tx.environment(id).await? else {
                return Ok(None);
            };
            if env.due_work() != DueWork::Deploy {
                return Ok(None);
            }
            let commit = match tx.active_deployment(id).await? {
                Some(d) => d.commit_sha,
                None if env.awaits_deployment() => env.commit_sha.clone(),
                None => return Ok(None),
            };
            // Read only: dropping the transaction rolls back and unlocks.
            (env, commit)
        };
        let verdict = match configs.for_commit(&env, &commit).await {
            RulesRead::Rules { resolved, origin } => {
                let files = if resolved.rules.needs_changed_files() {
                    match configs.changed_files(&env).await {
                        Ok(files) => files,
                        Err(why) => {
                            return Ok(Some(Gate {
                                commit,
                                verdict: Verdict::Unavailable(why),
                            }));
                        }
                    }
                } else {
                    None
                };
                let subject = PrSubject {
                    base_ref: &env.base_ref,
                    author: env.owner.as_ref().map_or("", |o| o.login.as_str()),
                    title: &env.pr_title,
                    changed_files: files.as_deref(),
                    requested: env.deploy_requested_sha.as_ref() == Some(&commit),
                };
                match resolved.rules.evaluate(&subject) {
                    Ok(()) => Verdict::Open { resolved, origin },
                    Err(skip) => Verdict::Skip(skip.to_string()),
                }
            }
            RulesRead::Invalid { git_ref, error } => Verdict::Invalid(invalid_file_message(
                &git_ref,
                &error,
                &configs.settings().schema_url,
            )),
            RulesRead::Unavailable(why) => Verdict::Unavailable(why),
        };
        Ok(Some(Gate { commit, verdict }))
    }
}
