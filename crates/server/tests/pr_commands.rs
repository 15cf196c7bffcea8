//! `/preview` commands written on PRs, black-box on SQLite and PostgreSQL:
//! each command by a writer and by a reader, twice in a row, on a fork and
//! on a closed PR, with what the provisioner did and what GitHub shows.

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_application::ports::CommandEnd;
use ephemera_application::pr_commands::CommandOutcome;
use ephemera_application::reconciler::RunOutcome;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use support::controls::{self, READER, WRITER};
use support::fake_github::{REPO, app_reporting_to, calls};
use support::{TestApp, payload, pr};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// GitHub's example comment, made `body` on PR 2 (GitHub's example PR).
fn comment(body: &str) -> Value {
    let mut event = payload("issue_comment.created.with-installation");
    event["issue"]["number"] = json!(2);
    event["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/2"});
    event["comment"]["body"] = json!(body);
    event
}

async fn a_command_is_recorded_once_and_a_plain_comment_is_not(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let command = comment("/preview sleep");
    let first = app
        .deliver_ok("issue_comment", &support::delivery_id(), &command)
        .await;
    assert_eq!(first["outcome"], "applied", "{first}");
    assert_eq!(
        first["reason"],
        "/preview sleep by @Codertocat on #2: recorded for a worker"
    );
    // The same comment again, in a body that differs (an identical body
    // is already refused as a replay before this).
    let mut resent = command.clone();
    resent["comment"]["updated_at"] = json!("2030-01-01T00:00:00Z");
    let again = app
        .deliver_ok("issue_comment", &support::delivery_id(), &resent)
        .await;
    assert_eq!(again["outcome"], "ignored");
    assert_eq!(
        again["reason"],
        "/preview sleep by @Codertocat on #2: recorded before"
    );
    let plain = app
        .deliver_ok("issue_comment", &support::delivery_id(), &comment("nice"))
        .await;
    assert_eq!(plain["reason"], "no /preview command");
}

/// A writer's `/preview sleep`: permission checked with GitHub, 👀 then 👍
/// on the comment, and the preview asleep.
async fn a_writers_command_is_carried_out_with_reactions(t: TestDatabase) {
    let github = controls::github().await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.deliver_ok(
        "issue_comment",
        &support::delivery_id(),
        &comment("/preview sleep"),
    )
    .await;

    let runner = app.pr_commands.clone().unwrap();
    let outcome = runner.run_once().await.unwrap();
    assert_eq!(
        outcome,
        CommandOutcome::Finished {
            end: CommandEnd::Done,
            outcome: "@Codertocat: /preview sleep: asleep soon".into()
        }
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Asleep(_)]));
    assert_eq!(app.only_environment().await["status"], "sleeping");
    let reactions: Vec<Value> = calls(&github)
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/reactions"))
        .map(|(_, _, body)| body["content"].clone())
        .collect();
    assert_eq!(reactions, [json!("eyes"), json!("+1")]);
    assert_eq!(runner.run_once().await.unwrap(), CommandOutcome::Idle);
}

/// `previews.mode: manual` waits for `/preview deploy` from a writer; a
/// reader's is refused and changes nothing.
async fn manual_mode_waits_for_a_writers_deploy(t: TestDatabase) {
    use base64::Engine as _;
    let github = controls::github().await;
    let file = "version: 1\npreviews:\n  mode: manual\n";
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/contents/.github/ephemera.yml")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "file", "encoding": "base64", "size": file.len(),
            "name": "ephemera.yml", "path": ".github/ephemera.yml",
            "content": base64::engine::general_purpose::STANDARD.encode(file),
            "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
        })))
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    assert_eq!(app.only_environment().await["status"], "skipped");

    app.deliver_ok(
        "issue_comment",
        &support::delivery_id(),
        &comment("/preview deploy"),
    )
    .await;
    let runner = app.pr_commands.clone().unwrap();
    let outcome = runner.run_once().await.unwrap();
    let CommandOutcome::Finished { end, outcome } = outcome else {
        panic!("no command ran");
    };
    assert_eq!(end, CommandEnd::Done, "{outcome}");
    assert!(outcome.ends_with("is queued"), "{outcome}");
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(app.only_environment().await["status"], "ready");
}

/// `previews.mode: off`: a writer's deploy, redeploy or approve is refused
/// with the reason, and nothing runs.
async fn where_previews_are_off_a_deploy_is_refused_saying_so(t: TestDatabase) {
    use base64::Engine as _;
    let github = controls::github().await;
    let file = "version: 1\npreviews:\n  mode: off\n";
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/contents/.github/ephemera.yml")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "file", "encoding": "base64", "size": file.len(),
            "name": "ephemera.yml", "path": ".github/ephemera.yml",
            "content": base64::engine::general_purpose::STANDARD.encode(file),
            "sha": "5d21ec53a331a6f037a91c368710b99387d012c1",
        })))
        .mount(&github)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("actions");
    let app = controls::app(t, &github, &record, |_| {}).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    assert_eq!(app.only_environment().await["status"], "skipped");
    for (id, word) in (91..).zip(["deploy", "redeploy", "approve"]) {
        let (end, said) = app.command(WRITER, id, &format!("/preview {word}")).await;
        assert_eq!(
            (end, said.as_str()),
            (
                CommandEnd::Refused,
                format!("@Codertocat: /preview {word}: previews are off for this repository (`previews.mode: off` in .github/ephemera.yml)").as_str()
            )
        );
    }
    assert!(app.drain().await.is_empty());
    assert!(controls::actions(&record).is_empty(), "nothing ran");
}

/// A fresh app with PR #2 ready at commit 1 (a command provisioner
/// recording its actions in `dir`).
async fn ready(
    t: TestDatabase,
    github: &wiremock::MockServer,
    dir: &tempfile::TempDir,
) -> (TestApp, std::path::PathBuf) {
    let record = dir.path().join("actions");
    let app = controls::app(t, github, &record, |_| {}).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    (app, record)
}

async fn each_writers_command_does_its_work_and_is_listed_in_the_sticky_comment(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, record) = ready(t, &github, &dir).await;

    let (end, said) = app.command(WRITER, 11, "/preview redeploy").await;
    assert_eq!(end, CommandEnd::Done, "{said}");
    assert!(
        said.starts_with("@Codertocat: /preview redeploy: a redeploy of "),
        "{said}"
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(app.deployments().await.len(), 2);

    let (end, said) = app.command(WRITER, 12, "/preview sleep").await;
    assert_eq!(
        (end, said.as_str()),
        (CommandEnd::Done, "@Codertocat: /preview sleep: asleep soon")
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Asleep(_)]));
    assert_eq!(app.only_environment().await["status"], "sleeping");

    let (end, said) = app.command(WRITER, 13, "/preview wake").await;
    assert_eq!(
        (end, said.as_str()),
        (CommandEnd::Done, "@Codertocat: /preview wake: waking")
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));

    let (end, said) = app.command(WRITER, 14, "/preview help").await;
    assert_eq!(end, CommandEnd::Done);
    assert!(said.contains("`/preview approve`"), "{said}");

    let (end, said) = app.command(WRITER, 15, "/preview destroy").await;
    assert_eq!(
        (end, said.as_str()),
        (
            CommandEnd::Done,
            "@Codertocat: /preview destroy: being removed"
        )
    );
    app.drain().await;
    assert_eq!(app.only_environment().await["status"], "destroyed");

    assert_eq!(
        controls::actions(&record),
        [
            "provision 01",
            "provision 01",
            "stop 01",
            "start 01",
            "destroy 01"
        ],
        "each command's work, once"
    );
    for id in 11..=15 {
        assert_eq!(
            controls::reactions(&github, id).await,
            ["eyes", "+1"],
            "comment {id}"
        );
    }
    // The sticky comment lists them, with how each ended.
    app.drain_reports().await;
    let comment = controls::sticky_comment(&github).await;
    for line in [
        "asked for `/preview redeploy`",
        "asked for `/preview sleep`",
        ": done (asleep soon)",
        "asked for `/preview wake`",
        ": done (waking)",
        "asked for `/preview destroy`",
        ": done (being removed)",
    ] {
        assert!(comment.contains(line), "{line}: {comment}");
    }
    assert!(
        comment.contains("**Commands**\n- @Codertocat asked for"),
        "{comment}"
    );
}

async fn a_readers_commands_are_refused_and_change_nothing(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, record) = ready(t, &github, &dir).await;
    let refusal = "@mallory has read permission on Codertocat/Hello-World; commands need write";
    for (id, word) in (21..).zip(["deploy", "redeploy", "destroy", "approve", "sleep", "wake"]) {
        let (end, said) = app.command(READER, id, &format!("/preview {word}")).await;
        assert_eq!(
            (end, said.as_str()),
            (CommandEnd::Refused, refusal),
            "{word}"
        );
        assert_eq!(
            controls::reactions(&github, id).await,
            ["eyes", "confused"],
            "{word}"
        );
    }
    // `help` needs no permission.
    let (end, _) = app.command(READER, 30, "/preview help").await;
    assert_eq!(end, CommandEnd::Done);
    assert!(app.drain().await.is_empty());
    assert_eq!(app.only_environment().await["status"], "ready");
    assert_eq!(app.deployments().await.len(), 1);
    assert_eq!(controls::actions(&record), ["provision 01"]);
    app.drain_reports().await;
    let comment = controls::sticky_comment(&github).await;
    assert!(
        comment.contains("asked for `/preview wake` at ")
            && comment.contains(&format!("refused ({refusal})")),
        "{comment}"
    );
}

async fn the_same_command_twice_in_a_row_does_the_work_once(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, record) = ready(t, &github, &dir).await;

    let (first, _) = app.command(WRITER, 41, "/preview redeploy").await;
    let (second, said) = app.command(WRITER, 42, "/preview redeploy").await;
    assert_eq!((first, second), (CommandEnd::Done, CommandEnd::Done));
    assert!(said.ends_with("is under way already"), "{said}");
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(app.deployments().await.len(), 2, "one redeploy");

    app.command(WRITER, 43, "/preview sleep").await;
    let (_, said) = app.command(WRITER, 44, "/preview sleep").await;
    assert_eq!(said, "@Codertocat: /preview sleep: asleep already");
    assert!(matches!(app.drain().await[..], [RunOutcome::Asleep(_)]));

    app.command(WRITER, 45, "/preview destroy").await;
    let (end, said) = app.command(WRITER, 46, "/preview destroy").await;
    assert_eq!(end, CommandEnd::Done);
    assert_eq!(
        said,
        "@Codertocat: /preview destroy: removed already (destroying)"
    );
    app.drain().await;
    assert_eq!(
        controls::actions(&record),
        ["provision 01", "provision 01", "stop 01", "destroy 01"]
    );
    for id in 41..=46 {
        assert_eq!(
            controls::reactions(&github, id).await,
            ["eyes", "+1"],
            "comment {id}"
        );
    }
}

async fn commands_on_a_closed_pr_say_the_preview_is_gone(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let (app, record) = ready(t, &github, &dir).await;
    app.deliver_pr(&pr("closed", 1, 10)).await;
    app.drain().await;
    for (id, word) in (51..).zip(["deploy", "redeploy", "approve"]) {
        let (end, said) = app.command(WRITER, id, &format!("/preview {word}")).await;
        assert_eq!(end, CommandEnd::Refused, "{word}: {said}");
        assert!(
            said.ends_with("the preview is destroyed; reopen or push to the PR to bring it back"),
            "{said}"
        );
    }
    for (id, word) in (54..).zip(["sleep", "wake"]) {
        let (end, said) = app.command(WRITER, id, &format!("/preview {word}")).await;
        assert_eq!(end, CommandEnd::Refused, "{word}: {said}");
        assert!(said.contains("is destroyed; only a"), "{said}");
    }
    let (end, said) = app.command(WRITER, 56, "/preview destroy").await;
    assert_eq!(
        (end, said.as_str()),
        (
            CommandEnd::Done,
            "@Codertocat: /preview destroy: removed already (destroyed)"
        )
    );
    assert!(app.drain().await.is_empty());
    assert_eq!(controls::actions(&record), ["provision 01", "destroy 01"]);
}

/// PR #2 from a fork, as GitHub's API answers `GET /pulls/2`: open at
/// commit `head` (a later call, with a lower `head`-derived priority,
/// answers instead of an earlier one).
async fn fork_on_github(github: &wiremock::MockServer, head: u32) {
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls/2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "number": 2, "state": "open", "draft": false,
            "updated_at": "2019-05-15T17:00:00Z", "labels": [],
            "head": {"sha": controls::sha(head),
                     "repo": {"id": 999_999, "full_name": "forker/Hello-World"}},
            "base": {"ref": "master",
                     "repo": {"id": 186_853_002, "full_name": "Codertocat/Hello-World"}}
        })))
        .with_priority(u8::try_from(10 - head).unwrap())
        .mount(github)
        .await;
}

/// PR #2 from someone's fork.
fn from_fork(mut p: Value) -> Value {
    p["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    p["pull_request"]["head"]["repo"]["full_name"] = json!("forker/Hello-World");
    p["pull_request"]["user"] = json!({"login": "forker", "id": 4242});
    p
}

/// A fork PR waits: a writer's `/preview approve` vouches for the head
/// GitHub names and deploys it; a push waits again until approved again.
async fn on_a_fork_approve_deploys_the_head_a_maintainer_vouched_for(t: TestDatabase) {
    let github = controls::github().await;
    fork_on_github(&github, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("actions");
    let app = controls::app(t, &github, &record, |_| {}).await;
    app.deliver_pr(&from_fork(pr("opened", 1, 0))).await;
    assert!(app.drain().await.is_empty());
    assert_eq!(app.only_environment().await["status"], "skipped");
    app.drain_reports().await;
    let comment = controls::sticky_comment(&github).await;
    assert!(comment.contains("`/preview approve`"), "{comment}");

    // Nothing else deploys it: not a writer's redeploy, not a reader.
    let (end, said) = app.command(WRITER, 61, "/preview redeploy").await;
    assert_eq!(end, CommandEnd::Refused);
    assert!(
        said.contains("cannot be deployed: PR from a fork"),
        "{said}"
    );
    let (end, _) = app.command(READER, 62, "/preview approve").await;
    assert_eq!(end, CommandEnd::Refused);
    assert!(app.drain().await.is_empty());

    let (end, said) = app.command(WRITER, 63, "/preview approve").await;
    assert_eq!(
        (end, said.as_str()),
        (
            CommandEnd::Done,
            "@Codertocat: /preview approve: 0000000 approved; its deployment is queued"
        )
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(controls::actions(&record), ["provision 01"]);

    // The fork's author pushes: nothing new runs until approved again.
    let push = app.deliver_pr(&from_fork(pr("synchronize", 2, 20))).await;
    assert_eq!(push["outcome"], "ignored", "{push}");
    assert!(app.drain().await.is_empty());
    fork_on_github(&github, 2).await;
    let (end, _) = app.command(WRITER, 64, "/preview approve").await;
    assert_eq!(end, CommandEnd::Done);
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    let env = app.only_environment().await;
    assert_eq!(env["commit_sha"], controls::sha(2));
    assert_eq!(controls::actions(&record), ["provision 01", "provision 02"]);
}

backend_tests!(
    a_command_is_recorded_once_and_a_plain_comment_is_not,
    a_writers_command_is_carried_out_with_reactions,
    manual_mode_waits_for_a_writers_deploy,
    each_writers_command_does_its_work_and_is_listed_in_the_sticky_comment,
    a_readers_commands_are_refused_and_change_nothing,
    the_same_command_twice_in_a_row_does_the_work_once,
    commands_on_a_closed_pr_say_the_preview_is_gone,
    on_a_fork_approve_deploys_the_head_a_maintainer_vouched_for,
    where_previews_are_off_a_deploy_is_refused_saying_so,
);
