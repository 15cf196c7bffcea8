//! The "ephemera preview" check run of a head commit (GitHub's Checks
//! API): the body GitHub takes, cut to GitHub's limits, so a long log tail
//! or a wordy button never turns a report into a 422.

use ephemera_application::ports::{CheckRun, CheckStatus, ReportError};
use serde::Serialize;

pub use ephemera_application::reporting::CHECK_NAME;

/// GitHub's cap on `output.summary` and `output.text`. Its description
/// says 65,535 characters, but its validation counts UTF-8 bytes
/// ("summary exceeds a maximum bytesize of 65535", github/docs#35252):
/// staying under the bytes keeps under both.
const MAX_OUTPUT_BYTES: usize = 65_535;
/// What a cut text says where its missing part was.
const CUT: &str = "…";
/// Buttons GitHub shows at most.
const MAX_ACTIONS: usize = 3;
const MAX_LABEL: usize = 20;
const MAX_DESCRIPTION: usize = 40;
const MAX_IDENTIFIER: usize = 20;

/// Absent fields are left out, never sent as `null` (GitHub answers 422).
#[derive(Serialize)]
pub(crate) struct CheckRunBody<'a> {
    /// Only when creating: an update keeps the name and the commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_sha: Option<&'a str>,
    /// The PR's number: a fork PR's check run lists no PR, and a click on
    /// its button must still find it.
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details_url: Option<&'a str>,
    output: Output,
    /// Always sent, empty too: an update replaces the buttons, so one that
    /// no longer applies goes away.
    actions: Vec<Action>,
}

#[derive(Serialize)]
struct Output {
    title: String,
    summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

#[derive(Serialize)]
struct Action {
    label: String,
    description: String,
    identifier: String,
}

impl<'a> CheckRunBody<'a> {
    /// The body of `run`; `created` (the head SHA and the external id)
    /// only when creating it. `now` stamps
    /// `started_at` (in progress) or `completed_at` (completed).
    ///
    /// A conclusion is sent only with `completed` (GitHub would complete
    /// the run on any conclusion); `completed` without one is refused
    /// here, as GitHub would refuse it. An identifier over 20 bytes is
    /// refused rather than cut: GitHub sends it back on a click, and a cut
    /// one would name no button.
    pub(crate) fn of(
        run: &'a CheckRun,
        created: Option<(&'a str, &'a str)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, ReportError> {
        let stamp = || Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let (started_at, conclusion, completed_at) = match run.status {
            CheckStatus::Queued => (None, None, None),
            CheckStatus::InProgress => (stamp(), None, None),
            CheckStatus::Completed => {
                let conclusion = run.conclusion.ok_or_else(|| {
                    ReportError::Refused("a completed check run needs a conclusion".to_owned())
                })?;
                (None, Some(conclusion.as_str()), stamp())
            }
        };
        if run.actions.len() > MAX_ACTIONS {
            tracing::warn!(
                actions = run.actions.len(),
                "GitHub shows three check run buttons at most; the rest are left out"
            );
        }
        let actions = run
            .actions
            .iter()
            .take(MAX_ACTIONS)
            .map(|action| {
                if action.identifier.len() > MAX_IDENTIFIER {
                    return Err(ReportError::Refused(format!(
                        "check run button identifier `{}` is over {MAX_IDENTIFIER} bytes",
                        action.identifier
                    )));
                }
                Ok(Action {
                    label: head(&action.label, MAX_LABEL),
                    description: head(&action.description, MAX_DESCRIPTION),
                    identifier: action.identifier.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: created.map(|_| CHECK_NAME),
            head_sha: created.map(|(sha, _)| sha),
            external_id: created.map(|(_, id)| id),
            status: run.status.as_str(),
            started_at,
            conclusion,
            completed_at,
            details_url: run.details_url.as_deref(),
            output: Output {
                title: run.title.clone(),
                summary: head(&run.summary, MAX_OUTPUT_BYTES),
                // The text is the tail of a log: its end matters most.
                text: run.text.as_deref().map(|t| tail(t, MAX_OUTPUT_BYTES)),
            },
            actions,
        })
    }
}

/// `text`'s beginning in at most `max` UTF-8 bytes, ending in `…` when
/// cut; never splits a character.
pub(crate) fn head(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(CUT.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end])
}

/// `text`'s end in at most `max` UTF-8 bytes, starting with `…` when cut;
/// never splits a character.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max.saturating_sub(CUT.len());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{CUT}{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_within_the_bytes_and_split_no_character() {
        assert_eq!(head("Redeploy", 20), "Redeploy");
        assert_eq!(head("abcdef", 5), "ab…");
        // "é" is two bytes: a cut through it moves before it.
        assert_eq!(head("aééé", 5), "a…");
        assert_eq!(tail("abcdef", 5), "…ef");
        assert_eq!(tail("éééa", 5), "…a");
        for text in ["ü".repeat(40_000), "🚀".repeat(20_000), "x".repeat(70_000)] {
            for cut in [head(&text, MAX_OUTPUT_BYTES), tail(&text, MAX_OUTPUT_BYTES)] {
                assert!(cut.len() <= MAX_OUTPUT_BYTES && cut.len() > MAX_OUTPUT_BYTES - 8);
            }
        }
    }
}
