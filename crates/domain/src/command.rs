//! `/preview` commands written in a PR's conversation: what a reviewer may
//! ask of the PR's preview.

use std::fmt;

crate::string_enum! {
    /// What a `/preview` comment asks for.
    pub enum PreviewCommand ("preview command") {
        /// Start a preview (also what `previews.mode: manual` waits for).
        Deploy = "deploy",
        /// Deploy the head commit again.
        Redeploy = "redeploy",
        /// Remove the preview.
        Destroy = "destroy",
        /// Vouch for a fork PR's current head commit.
        Approve = "approve",
        /// Put the preview to sleep.
        Sleep = "sleep",
        /// Wake a sleeping preview.
        Wake = "wake",
        /// List the commands.
        Help = "help",
    }
}

/// What a comment says to ephemera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentCommand {
    Known(PreviewCommand),
    /// `/preview` followed by a word ephemera does not know (or nothing):
    /// answered with the list of commands.
    Unknown(String),
}

impl fmt::Display for CommentCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(command) => write!(f, "/preview {command}"),
            Self::Unknown(word) if word.is_empty() => f.write_str("/preview"),
            Self::Unknown(word) => write!(f, "/preview {word}"),
        }
    }
}

/// Longest word read after `/preview`; longer is cut (it is quoted back).
const MAX_WORD: usize = 40;

impl CommentCommand {
    /// The command of a comment: its first line that starts with
    /// `/preview` (leading spaces allowed), case-insensitively; `None`
    /// when no line does (a comment that merely mentions `/preview`
    /// mid-sentence is not a command).
    pub fn parse(body: &str) -> Option<Self> {
        body.lines().find_map(|line| {
            let rest = line.trim_start();
            let head = rest.get(..8)?;
            if !head.eq_ignore_ascii_case("/preview") {
                return None;
            }
            let after = &rest[8..];
            // `/previewer` is not a command.
            if after.chars().next().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
            let word: String = after
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .chars()
                .take(MAX_WORD)
                .collect::<String>()
                .to_ascii_lowercase();
            Some(match word.parse::<PreviewCommand>() {
                Ok(command) => Self::Known(command),
                Err(_) => Self::Unknown(word),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_starting_with_the_command_decides() {
        let cases: &[(&str, Option<CommentCommand>)] = &[
            (
                "/preview redeploy",
                Some(CommentCommand::Known(PreviewCommand::Redeploy)),
            ),
            (
                "Looks good.\n  /Preview SLEEP please\n/preview destroy",
                Some(CommentCommand::Known(PreviewCommand::Sleep)),
            ),
            ("/preview", Some(CommentCommand::Unknown(String::new()))),
            (
                "/preview frobnicate",
                Some(CommentCommand::Unknown("frobnicate".into())),
            ),
            ("please run /preview deploy", None),
            ("/previewer deploy", None),
            ("> /preview destroy (quoted)", None),
            ("", None),
            ("/pré", None),
        ];
        for (body, expected) in cases {
            assert_eq!(&CommentCommand::parse(body), expected, "{body:?}");
        }
    }

    #[test]
    fn a_long_unknown_word_is_cut_and_every_command_reads_back() {
        let long = format!("/preview {}", "x".repeat(500));
        assert_eq!(
            CommentCommand::parse(&long),
            Some(CommentCommand::Unknown("x".repeat(MAX_WORD)))
        );
        for command in PreviewCommand::ALL {
            let written = CommentCommand::Known(command).to_string();
            assert_eq!(
                CommentCommand::parse(&written),
                Some(CommentCommand::Known(command))
            );
        }
    }
}
