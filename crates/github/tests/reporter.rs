//! The GitHub adapter against a fake GitHub (wiremock) that checks paths,
//! methods, bodies and the Authorization header, and refuses every request
//! GitHub's OpenAPI description would refuse (`contract`): what it reports
//! (comment, statuses, Deployments) and what it reads back (PRs, files,
//! deliveries).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ephemera_application::ports::{
    ChangedFiles, CommitState, DeploymentState, FileLookup, GitHubObserver, GitHubReader,
    GitHubReporter, OpenPullRequests, ReportError, RepositoryFile,
};
use ephemera_github::{COMMENT_MARKER, GitHubApp};
use ephemera_github_contract as contract;
use serde_json::json;
use wiremock::matchers::{
    body_partial_json, header, header_regex, method, path, path_regex, query_param,
    query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod support;
use support::{KEY, REPO, authed, github, installation, pr, repository, sha, to_repo};

/// A `Link` header pointing to `path_and_query` on the fake as the next
/// page.
fn next_link(server: &MockServer, path_and_query: &str) -> String {
    format!("<{}{path_and_query}>; rel=\"next\"", server.uri())
}

/// A PR as GitHub answers it, from a head in repository `head_repo` (the
/// base repository is 186853002) into `master`.
fn pull(number: i64, head_repo: i64, draft: bool, labels: serde_json::Value) -> serde_json::Value {
    let repo = |id: i64| json!({"id": id, "full_name": "Codertocat/Hello-World"});
    json!({
        "number": number, "state": "open", "draft": draft,
        "updated_at": "2019-05-15T15:20:33Z", "labels": labels,
        "head": {"sha": sha().as_str(), "ref": "changes", "repo": repo(head_repo)},
        "base": {"sha": sha().as_str(), "ref": "master", "repo": repo(186853002)},
    })
}

#[tokio::test]
async fn the_installation_token_is_fetched_once_and_reused() {
    let (server, app) = github().await;
    authed(to_repo("POST", &format!("/statuses/{}", sha())))
        .and(body_partial_json(json!({
            "state": "pending", "context": "ephemera/preview", "description": "Deploying ec26c3e"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(2)
        .mount(&server)
        .await;
    for _ in 0..2 {
        app.set_commit_status(
            &pr(),
            &sha(),
            CommitState::Pending,
            None,
            "Deploying ec26c3e",
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn one_comment_is_created_then_edited_in_place() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/issues/2/comments"))
        .and(query_param("per_page", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 3, "body": "LGTM"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("POST", "/issues/2/comments"))
        .respond_with(|req: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            assert!(body["body"].as_str().unwrap().starts_with(COMMENT_MARKER));
            ResponseTemplate::new(201).set_body_json(json!({"id": 77, "body": body["body"]}))
        })
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("PATCH", "/issues/comments/77"))
        .and(body_partial_json(
            json!({"body": format!("{COMMENT_MARKER}\nready")}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77, "body": "x"})))
        .expect(1)
        .mount(&server)
        .await;

    let id = app.upsert_comment(&pr(), None, "deploying").await.unwrap();
    assert_eq!(id, 77);
    assert_eq!(
        app.upsert_comment(&pr(), Some(id), "ready").await.unwrap(),
        77
    );
}

/// A comment as GitHub lists it: who wrote it, and through which App.
fn comment(id: i64, body: &str, login: &str, via_app: Option<i64>) -> serde_json::Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({
        "id": id,
        "body": body,
        "user": {"login": login, "id": id * 10, "type": kind},
        "performed_via_github_app": via_app.map(|id| json!({"id": id, "slug": "some-app"})),
    })
}

const OURS: &str = "ephemera-preview[bot]";

#[tokio::test]
async fn the_apps_own_comment_is_found_by_its_marker() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/issues/2/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            comment(3, "LGTM", "octocat", None),
            comment(5, &format!("{COMMENT_MARKER}\nold"), OURS, Some(42)),
        ])))
        .mount(&server)
        .await;
    authed(to_repo("PATCH", "/issues/comments/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 5})))
        .expect(1)
        .mount(&server)
        .await;
    to_repo("POST", "/issues/2/comments")
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;

    assert_eq!(app.upsert_comment(&pr(), None, "new").await.unwrap(), 5);
}

#[tokio::test]
async fn deployments_are_previews_whose_success_retires_the_previous_one() {
    let (server, app) = github().await;
    authed(to_repo("POST", "/deployments"))
        .and(body_partial_json(json!({
            "ref": sha().as_str(),
            "environment": "preview/pr-2",
            // Not transient, so that GitHub's auto_inactive applies.
            "transient_environment": false,
            "production_environment": false,
            "auto_merge": false,
            "required_contexts": [],
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 9})))
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("POST", "/deployments/9/statuses"))
        .and(body_partial_json(json!({
            "state": "success",
            "environment_url": "https://pr-2.example.com",
            "auto_inactive": true,
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;

    let id = app
        .create_deployment(&pr(), &sha(), "preview/pr-2", "ephemera preview")
        .await
        .unwrap();
    assert_eq!(id, 9);
    app.create_deployment_status(
        &pr(),
        id,
        DeploymentState::Success,
        Some("https://pr-2.example.com".to_owned()),
        "ready",
    )
    .await
    .unwrap();
}

async fn status_error(response: ResponseTemplate) -> ReportError {
    let (server, app) = github().await;
    to_repo("POST", &format!("/statuses/{}", sha()))
        .respond_with(response)
        .mount(&server)
        .await;
    app.set_commit_status(&pr(), &sha(), CommitState::Success, None, "ok")
        .await
        .unwrap_err()
}

fn github_error(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": "nope", "documentation_url": "https://docs.github.com"
    }))
}

#[tokio::test]
async fn errors_are_sorted_into_retry_gone_and_refused() {
    assert!(matches!(
        status_error(github_error(502)).await,
        ReportError::Retry { after: None, .. }
    ));
    assert!(matches!(
        status_error(github_error(404)).await,
        ReportError::Gone(_)
    ));
    assert!(matches!(
        status_error(github_error(422)).await,
        ReportError::Refused(_)
    ));

    let limited = github_error(429).insert_header("retry-after", "7");
    assert_eq!(
        status_error(limited).await,
        ReportError::Retry {
            message: "setting the commit status: 429 nope".into(),
            after: Some(Duration::from_secs(7)),
        }
    );

    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    let exhausted = github_error(403)
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", reset.to_string().as_str());
    let ReportError::Retry {
        after: Some(after), ..
    } = status_error(exhausted).await
    else {
        panic!("a rate limit waits for the reset");
    };
    assert!(
        after > Duration::from_secs(100) && after <= Duration::from_secs(120),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_humans_comment_with_the_marker_is_left_alone() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/issues/2/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            // Posted first by a person, and by another App, to hijack the report.
            comment(5, &format!("{COMMENT_MARKER}\nfake"), "mallory", None),
            comment(
                6,
                &format!("{COMMENT_MARKER}\nfake"),
                "other-app[bot]",
                Some(7)
            ),
        ])))
        .mount(&server)
        .await;
    Mock::given(path_regex(
        "^/repos/Codertocat/Hello-World/issues/comments/",
    ))
    .respond_with(ResponseTemplate::new(403))
    .expect(0)
    .mount(&server)
    .await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    authed(to_repo("POST", "/issues/2/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 77})))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(app.upsert_comment(&pr(), None, "new").await.unwrap(), 77);
}

#[tokio::test]
async fn a_comment_of_the_apps_bot_without_app_attribution_is_found_by_login() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/issues/2/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([comment(
            8,
            &format!("{COMMENT_MARKER}\nold"),
            OURS,
            None
        ),])))
        .mount(&server)
        .await;
    // The App's slug, asked once with the App's JWT and cached.
    Mock::given(method("GET"))
        .and(path("/app"))
        .and(header_regex(
            "authorization",
            r"^Bearer ey[\w-]+\.[\w-]+\.[\w-]+$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 42, "slug": "ephemera-preview", "name": "ephemera preview"
        })))
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("PATCH", "/issues/comments/8"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 8})))
        .expect(2)
        .mount(&server)
        .await;

    for _ in 0..2 {
        assert_eq!(app.upsert_comment(&pr(), None, "new").await.unwrap(), 8);
    }
}

#[tokio::test]
async fn a_deployment_status_without_a_url_leaves_the_field_out() {
    let (server, app) = github().await;
    authed(to_repo("POST", "/deployments/9/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(2)
        .mount(&server)
        .await;

    for state in [DeploymentState::InProgress, DeploymentState::Inactive] {
        app.create_deployment_status(&pr(), 9, state, None, "deploying")
            .await
            .unwrap();
    }
    for request in server.received_requests().await.unwrap() {
        if request.url.path().ends_with("/statuses") {
            let body: serde_json::Value = request.body_json().unwrap();
            assert!(body.get("environment_url").is_none(), "{body}");
            // Only a success may retire the earlier deployments.
            assert_eq!(body["auto_inactive"], false, "{body}");
        }
    }
}

#[tokio::test]
async fn a_422_is_refused_with_githubs_message_and_errors() {
    let refused = status_error(ResponseTemplate::new(422).set_body_json(json!({
        "message": "Validation Failed",
        "errors": [{
            "resource": "Status", "code": "custom", "field": "target_url",
            "message": "target_url must use http(s) scheme"
        }],
        "documentation_url": "https://docs.github.com/rest/commits/statuses",
    })))
    .await;
    let ReportError::Refused(message) = refused else {
        panic!("a 422 is refused for good: {refused:?}");
    };
    assert!(
        message.contains("422 Validation Failed")
            && message.contains("target_url must use http(s) scheme"),
        "{message}"
    );
}

#[tokio::test]
async fn a_pull_request_is_read_with_the_installation_token() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/pulls/2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull(
            2,
            186853002,
            false,
            json!([{"id": 1, "name": "preview"}]),
        )))
        .expect(1)
        .mount(&server)
        .await;

    let state = app.pull_request(&pr()).await.unwrap();
    assert!(state.open && !state.is_fork && !state.draft);
    assert_eq!(state.head_sha, sha());
    assert_eq!(state.labels, ["preview"]);
    assert_eq!(state.base_ref, "master");
}

#[tokio::test]
async fn open_pull_requests_are_listed_page_by_page_and_asked_conditionally() {
    let (server, app) = github().await;
    let listed = |number: i64, head_repo: i64| pull(number, head_repo, number == 3, json!([]));
    authed(to_repo("GET", "/pulls").and(query_param("page", "2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([listed(3, 186853002)])))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    authed(
        to_repo("GET", "/pulls")
            .and(query_param("state", "open"))
            .and(header("if-none-match", "\"v1\"")),
    )
    .respond_with(ResponseTemplate::new(304))
    .with_priority(2)
    .expect(1)
    .mount(&server)
    .await;
    authed(to_repo("GET", "/pulls").and(query_param("state", "open")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"v1\"")
                .insert_header(
                    "link",
                    next_link(
                        &server,
                        &format!("{REPO}/pulls?state=open&per_page=100&page=2"),
                    ),
                )
                .set_body_json(json!([listed(2, 999)])),
        )
        .with_priority(3)
        .expect(1)
        .mount(&server)
        .await;

    let (repository, installation) = (repository(), installation());
    let OpenPullRequests::Listed {
        etag,
        pulls,
        complete,
        pages,
    } = app
        .open_pull_requests(installation, &repository, None)
        .await
        .unwrap()
    else {
        panic!("a first listing is never unchanged");
    };
    let numbers: Vec<u32> = pulls.iter().map(|(n, _)| n.get()).collect();
    assert_eq!(numbers, [2, 3]);
    assert!(complete);
    assert_eq!(pages, 2);
    assert!(pulls[0].1.is_fork && !pulls[1].1.is_fork && pulls[1].1.draft);
    // A list over several pages has no single ETag to ask with.
    assert_eq!(etag, None);
    assert_eq!(
        app.open_pull_requests(installation, &repository, Some("\"v1\"".into()))
            .await
            .unwrap(),
        OpenPullRequests::Unchanged
    );
}

/// A repository with more open PRs than the page cap: the listing stops
/// there and says it is not the whole list, so drift repair does not take
/// the PRs past it for closed.
#[tokio::test]
async fn a_listing_cut_at_the_page_cap_says_it_is_incomplete() {
    let (server, app) = github().await;
    let next = next_link(
        &server,
        &format!("{REPO}/pulls?state=open&per_page=100&page=2"),
    );
    authed(to_repo("GET", "/pulls"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next)
                .set_body_json(json!([])),
        )
        .expect(10)
        .mount(&server)
        .await;
    let listed = app
        .open_pull_requests(installation(), &repository(), None)
        .await
        .unwrap();
    assert!(
        matches!(
            listed,
            OpenPullRequests::Listed {
                complete: false,
                ..
            }
        ),
        "{listed:?}"
    );
}

#[tokio::test]
async fn missed_deliveries_are_listed_and_redelivered_as_the_app() {
    let server = MockServer::start().await;
    contract::enforce(&server).await;
    let app = GitHubApp::new(42, KEY, &server.uri()).unwrap();
    let jwt = || header_regex("authorization", r"^Bearer ey[\w-]+\.[\w-]+\.[\w-]+$");
    let delivery = |id: i64, at: &str| {
        json!({
            "id": id, "guid": format!("guid-{id}"),
            "delivered_at": at, "redelivery": false,
            "duration": 0.27, "status": "Invalid HTTP Response: 503",
            "status_code": 503, "event": "pull_request", "action": "opened",
            "installation_id": 1, "repository_id": 186853002
        })
    };
    // Two pages of failures, newest first; the second reaches back past
    // `since`, so no third page is asked for.
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(query_param("status", "failure"))
        .and(query_param("cursor", "v1_page2"))
        .and(jwt())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    next_link(
                        &server,
                        "/app/hook/deliveries?per_page=100&status=failure&cursor=v1_page3",
                    ),
                )
                .set_body_json(json!([
                    delivery(12345677, "2019-06-02T00:00:00Z"),
                    delivery(12345600, "2019-05-01T00:00:00Z")
                ])),
        )
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(query_param("status", "failure"))
        .and(query_param("per_page", "100"))
        .and(jwt())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    next_link(
                        &server,
                        "/app/hook/deliveries?per_page=100&status=failure&cursor=v1_page2",
                    ),
                )
                .set_body_json(json!([delivery(12345678, "2019-06-03T00:57:16Z")])),
        )
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/12345678/attempts"))
        .and(jwt())
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;

    let since = "2019-06-01T00:00:00Z".parse().unwrap();
    let missed = app.failed_deliveries(since, 10).await.unwrap();
    let ids: Vec<i64> = missed.iter().map(|d| d.id).collect();
    assert_eq!(
        ids,
        [12345678, 12345677],
        "both pages, nothing older than since"
    );
    assert_eq!(missed[0].status_code, 503);
    app.redeliver(missed[0].id).await.unwrap();
}

/// Records what the adapter tells its observer.
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(String, u16)>>,
    remaining: Mutex<Vec<u64>>,
}

impl GitHubObserver for Recorder {
    fn request(&self, operation: &str, status: u16) {
        self.requests
            .lock()
            .unwrap()
            .push((operation.to_owned(), status));
    }

    fn rate_limit_remaining(&self, remaining: u64) {
        self.remaining.lock().unwrap().push(remaining);
    }
}

#[tokio::test]
async fn every_answer_is_counted_by_operation_and_status_and_its_rate_limit_read() {
    let (server, app) = github().await;
    let recorder = Arc::new(Recorder::default());
    let app = app.observed_by(recorder.clone());
    assert_eq!(app.rate_limit_remaining(), None);
    authed(to_repo("POST", &format!("/statuses/{}", sha())))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("x-ratelimit-remaining", "4998")
                .set_body_json(json!({"id": 1})),
        )
        .mount(&server)
        .await;
    authed(to_repo("GET", "/pulls/2"))
        .respond_with(github_error(404).insert_header("x-ratelimit-remaining", "4997"))
        .mount(&server)
        .await;

    app.set_commit_status(&pr(), &sha(), CommitState::Pending, None, "Deploying")
        .await
        .unwrap();
    assert!(matches!(
        app.pull_request(&pr()).await,
        Err(ReportError::Gone(_))
    ));

    assert_eq!(
        *recorder.requests.lock().unwrap(),
        [
            ("apps/create-installation-access-token".to_owned(), 201),
            ("repos/create-commit-status".to_owned(), 201),
            ("pulls/get".to_owned(), 404),
        ]
    );
    assert_eq!(*recorder.remaining.lock().unwrap(), [4998, 4997]);
    assert_eq!(app.rate_limit_remaining(), Some(4997));
}

#[test]
fn a_malformed_key_is_refused_with_the_variable_named() {
    let err = GitHubApp::new(42, b"not a key", "https://api.github.com").unwrap_err();
    assert!(
        err.to_string().starts_with("GITHUB_APP_PRIVATE_KEY:"),
        "{err}"
    );
}

const CONFIG: &str = "/contents/.github/ephemera.yml";
const CONFIG_SHA: &str = "3d21ec53a331a6f037a91c368710b99387d012c1";

/// A file as the contents API answers it: its base64 wrapped in lines of
/// 60 characters, as GitHub sends it; `size` as GitHub says.
fn content_file(name: &str, bytes: &[u8], size: usize) -> serde_json::Value {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let wrapped: String = encoded
        .as_bytes()
        .chunks(60)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    content_entry(
        "file",
        name,
        size,
        json!({"encoding": "base64", "content": wrapped}),
    )
}

/// One entry of the contents API (`type` file, dir, symlink, submodule)
/// with GitHub's required fields, and `extra` ones.
fn content_entry(
    kind: &str,
    name: &str,
    size: usize,
    extra: serde_json::Value,
) -> serde_json::Value {
    let url = format!("https://api.github.com{REPO}/contents/.github/{name}");
    let mut entry = json!({
        "type": kind, "size": size, "name": name, "path": format!(".github/{name}"),
        "sha": CONFIG_SHA, "url": url,
        "git_url": format!("https://api.github.com{REPO}/git/blobs/{CONFIG_SHA}"),
        "html_url": format!("https://github.com/Codertocat/Hello-World/blob/main/.github/{name}"),
        "download_url": null,
        "_links": {"git": null, "html": null, "self": url},
    });
    for (key, value) in extra.as_object().unwrap() {
        entry[key] = value.clone();
    }
    entry
}

async fn read_config(
    app: &GitHubApp,
    git_ref: &str,
    max_bytes: u64,
) -> Result<FileLookup, ReportError> {
    app.repository_file(
        installation(),
        &repository(),
        ".github/ephemera.yml",
        git_ref,
        max_bytes,
    )
    .await
}

#[tokio::test]
async fn a_file_is_read_at_a_ref_then_asked_again_conditionally() {
    let (server, app) = github().await;
    // Long enough for GitHub to wrap its base64 over several lines.
    let yaml = "preview:\n  port: 8080\n  paths:\n    - src/**\n    - Dockerfile\n  ttl: 72h\n";
    authed(to_repo("GET", CONFIG))
        .and(query_param("ref", "feature/config"))
        .and(header("if-none-match", "W/\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("GET", CONFIG))
        .and(query_param("ref", "feature/config"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "W/\"v1\"")
                .set_body_json(content_file("ephemera.yml", yaml.as_bytes(), yaml.len())),
        )
        .with_priority(3)
        .expect(1)
        .mount(&server)
        .await;

    let found = FileLookup::Found(RepositoryFile {
        blob_sha: CONFIG_SHA.into(),
        text: yaml.into(),
    });
    assert_eq!(
        read_config(&app, "feature/config", 4096).await.unwrap(),
        found
    );
    // The second read is answered 304 (free of rate limit) from the cache.
    assert_eq!(
        read_config(&app, "feature/config", 4096).await.unwrap(),
        found
    );
    let requests = server.received_requests().await.unwrap();
    let reads: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path().contains("/contents/"))
        .collect();
    assert_eq!(reads.len(), 2);
    assert!(reads[0].headers.get("if-none-match").is_none());
    // The branch's `/` is sent encoded: it is one query value.
    assert_eq!(reads[0].url.query(), Some("ref=feature%2Fconfig"));
}

#[tokio::test]
async fn an_empty_ref_reads_the_default_branch_without_a_ref_parameter() {
    let (server, app) = github().await;
    let yaml = "version: 1\n";
    authed(to_repo("GET", CONFIG))
        .and(query_param_is_missing("ref"))
        .respond_with(ResponseTemplate::new(200).set_body_json(content_file(
            "ephemera.yml",
            yaml.as_bytes(),
            yaml.len(),
        )))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        read_config(&app, "", 4096).await.unwrap(),
        FileLookup::Found(RepositoryFile {
            blob_sha: CONFIG_SHA.into(),
            text: yaml.into(),
        })
    );
}

#[tokio::test]
async fn a_missing_file_a_directory_a_symlink_and_a_submodule_are_missing() {
    let (server, app) = github().await;
    authed(to_repo("GET", CONFIG))
        .and(query_param("ref", "absent"))
        .respond_with(github_error(404))
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("GET", CONFIG))
        .and(query_param("ref", "dir"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([content_entry(
                "file",
                "inside.yml",
                3,
                json!({})
            )])),
        )
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("GET", CONFIG))
        .and(query_param("ref", "symlink"))
        .respond_with(ResponseTemplate::new(200).set_body_json(content_entry(
            "symlink",
            "ephemera.yml",
            12,
            json!({"target": "/etc/passwd"}),
        )))
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("GET", CONFIG))
        .and(query_param("ref", "submodule"))
        .respond_with(ResponseTemplate::new(200).set_body_json(content_entry(
            "submodule",
            "ephemera.yml",
            0,
            json!({"submodule_git_url": "git://example.com/defunkt/dotjs.git"}),
        )))
        .expect(1)
        .mount(&server)
        .await;

    for git_ref in ["absent", "dir", "symlink", "submodule"] {
        assert_eq!(
            read_config(&app, git_ref, 4096).await.unwrap(),
            FileLookup::Missing,
            "{git_ref}"
        );
    }
}

#[tokio::test]
async fn a_file_over_the_limit_is_too_large_and_its_content_not_read() {
    let (server, app) = github().await;
    // Not base64 at all: decoding it would be refused, so the answer shows
    // the content was left alone.
    let mut large = content_file("ephemera.yml", b"", 2_000_000);
    large["content"] = json!("!! not base64 !!");
    authed(to_repo("GET", CONFIG))
        .respond_with(ResponseTemplate::new(200).set_body_json(large))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(
        read_config(&app, "main", 65_536).await.unwrap(),
        FileLookup::TooLarge { size: 2_000_000 }
    );
}

#[tokio::test]
async fn a_file_that_is_not_utf8_is_refused_with_its_name() {
    let (server, app) = github().await;
    let latin1 = b"name: caf\xe9\n";
    authed(to_repo("GET", CONFIG))
        .respond_with(ResponseTemplate::new(200).set_body_json(content_file(
            "ephemera.yml",
            latin1,
            10,
        )))
        .expect(1)
        .mount(&server)
        .await;

    let refused = read_config(&app, "main", 4096).await.unwrap_err();
    let ReportError::Refused(message) = &refused else {
        panic!("not text is refused for good: {refused:?}");
    };
    assert!(
        message.contains(".github/ephemera.yml") && message.contains("not UTF-8"),
        "{message}"
    );
}

/// A changed file as GitHub lists it; `previous` for a rename.
fn diff_entry(filename: &str, previous: Option<&str>) -> serde_json::Value {
    let blob = format!(
        "https://github.com/Codertocat/Hello-World/blob/{}/{filename}",
        sha()
    );
    let mut entry = json!({
        "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
        "filename": filename,
        "status": if previous.is_some() { "renamed" } else { "modified" },
        "additions": 1, "deletions": 1, "changes": 2,
        "blob_url": blob, "raw_url": blob,
        "contents_url": format!("https://api.github.com{REPO}/contents/{filename}?ref={}", sha()),
    });
    if let Some(previous) = previous {
        entry["previous_filename"] = json!(previous);
    }
    entry
}

#[tokio::test]
async fn the_files_of_a_pr_are_listed_over_every_page_with_renames_old_and_new() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/pulls/2/files"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([diff_entry("deploy/chart.yaml", Some("chart.yaml"))])),
        )
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    authed(to_repo("GET", "/pulls/2/files"))
        .and(query_param("per_page", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    next_link(
                        &server,
                        &format!("{REPO}/pulls/2/files?per_page=100&page=2"),
                    ),
                )
                .set_body_json(json!([
                    diff_entry("src/main.rs", None),
                    diff_entry("README.md", None)
                ])),
        )
        .with_priority(3)
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(
        app.pull_request_files(&pr()).await.unwrap(),
        ChangedFiles {
            paths: vec![
                "src/main.rs".into(),
                "README.md".into(),
                "deploy/chart.yaml".into(),
                "chart.yaml".into()
            ],
            complete: true,
        }
    );
}

/// GitHub lists at most 3,000 files of a PR: 30 pages of 100. A listing
/// that still had a next page there says it is not the whole list.
#[tokio::test]
async fn the_files_of_a_pr_stop_at_githubs_cap_and_say_they_are_incomplete() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/pulls/2/files"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    next_link(
                        &server,
                        &format!("{REPO}/pulls/2/files?per_page=100&page=31"),
                    ),
                )
                .set_body_json(json!([diff_entry("src/main.rs", None)])),
        )
        .expect(30)
        .mount(&server)
        .await;

    let listed = app.pull_request_files(&pr()).await.unwrap();
    assert!(!listed.complete);
    assert_eq!(listed.paths.len(), 30);
}

#[tokio::test]
async fn the_files_of_a_pr_that_is_gone_are_gone() {
    let (server, app) = github().await;
    authed(to_repo("GET", "/pulls/2/files"))
        .respond_with(github_error(404))
        .expect(1)
        .mount(&server)
        .await;

    assert!(matches!(
        app.pull_request_files(&pr()).await,
        Err(ReportError::Gone(_))
    ));
}
