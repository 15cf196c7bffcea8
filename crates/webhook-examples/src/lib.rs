//! GitHub's documented webhook examples, vendored in `fixtures/github/`
//! (with their provenance and licence) and compiled into the binary, so
//! `ephemera webhook send --example`, the load generator and the tests need
//! no file beside the checkout. Depends on nothing.

/// One example delivery body, named `<event>.<action>[.<variant>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    pub name: &'static str,
    pub body: &'static str,
}

impl Example {
    /// The `X-GitHub-Event` this body is sent with: the name up to the
    /// first dot.
    pub fn event(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }
}

macro_rules! examples {
    ($($name:literal),* $(,)?) => {
        &[$(Example {
            name: $name,
            body: include_str!(concat!("../../../fixtures/github/", $name, ".json")),
        }),*]
    };
}

/// Every vendored example, sorted by name.
pub const ALL: &[Example] = examples![
    "check_run.requested_action",
    "check_run.rerequested",
    "installation.created",
    "installation.created.with-requester",
    "installation.deleted",
    "installation.new_permissions_accepted",
    "installation.suspend",
    "installation.unsuspend",
    "installation_repositories.added",
    "installation_repositories.added.without-requester",
    "installation_repositories.removed",
    "issue_comment.created",
    "issue_comment.created.with-installation",
    "issue_comment.edited",
    "ping",
    "ping.with-app_id",
    "ping.with-organization",
    "pull_request.closed",
    "pull_request.closed.with-organization",
    "pull_request.converted_to_draft",
    "pull_request.converted_to_draft.with-installation",
    "pull_request.converted_to_draft.with-organization",
    "pull_request.edited",
    "pull_request.labeled",
    "pull_request.labeled.with-organization",
    "pull_request.opened",
    "pull_request.opened.with-null-body",
    "pull_request.opened.with-organization",
    "pull_request.ready_for_review",
    "pull_request.ready_for_review.with-installation",
    "pull_request.ready_for_review.with-organization",
    "pull_request.reopened",
    "pull_request.reopened.with-organization",
    "pull_request.synchronize",
    "pull_request.unlabeled",
    "push",
    "push.1",
    "push.with-installation",
    "push.with-new-branch",
    "push.with-no-username-committer",
    "push.with-organization",
];

/// The example called `name` (e.g. `pull_request.opened`).
pub fn find(name: &str) -> Option<&'static Example> {
    ALL.iter().find(|example| example.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use sha2::{Digest, Sha256};

    use super::*;

    fn fixtures() -> &'static Path {
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/github"
        ))
    }

    #[test]
    fn every_vendored_file_is_compiled_in_and_nothing_else() {
        let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
            .expect("fixtures/github")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_owned)
            })
            .collect();
        on_disk.sort();
        let compiled: Vec<&str> = ALL.iter().map(|example| example.name).collect();
        assert_eq!(compiled, on_disk);
    }

    #[test]
    fn the_compiled_bodies_match_the_recorded_checksums() {
        let sums = std::fs::read_to_string(fixtures().join("SHA256SUMS")).expect("SHA256SUMS");
        let recorded: BTreeMap<&str, &str> = sums
            .lines()
            .filter_map(|line| line.split_once("  "))
            .map(|(sum, file)| (file.trim_end_matches(".json"), sum))
            .collect();
        assert_eq!(recorded.len(), ALL.len(), "one checksum per example");
        for example in ALL {
            let sum = hex::encode(Sha256::digest(example.body.as_bytes()));
            assert_eq!(
                recorded.get(example.name),
                Some(&sum.as_str()),
                "{}",
                example.name
            );
        }
    }

    #[test]
    fn the_event_is_the_name_up_to_the_first_dot() {
        assert_eq!(
            find("pull_request.opened").map(Example::event),
            Some("pull_request")
        );
        assert_eq!(find("ping").map(Example::event), Some("ping"));
        assert_eq!(
            find("installation_repositories.added.without-requester").map(Example::event),
            Some("installation_repositories")
        );
        assert_eq!(find("pull_request.nope"), None);
    }
}
