//! The dashboard's pages, black-box on SQLite and PostgreSQL: what a person
//! reads at `/` on the real server (the browser tests of #16 come on top).

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::json;
use support::{TestApp, pr};

/// The page at `path` as a browser without credentials gets it: status
/// and HTML.
async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(kind, "text/html; charset=utf-8", "{path}");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    (status, response.text().await.unwrap())
}

async fn an_empty_dashboard_says_how_to_get_a_first_preview(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let (status, html) = page(&app, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Overview</h1>"), "{html}");
    assert!(
        html.contains("ephemera webhook send --example pull_request.opened"),
        "{html}"
    );
    let (_, html) = page(&app, "/deliveries").await;
    assert!(html.contains("No delivery yet."), "{html}");
}

async fn a_preview_is_listed_and_its_page_shows_deployments_log_and_links(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let mut opened = pr("opened", 1, 0);
    opened["pull_request"]["title"] = json!("Fix <script>alert(1)</script> & more");
    app.deliver_pr(&opened).await;
    app.drain().await;
    let env = app.only_environment().await;

    let (_, overview) = page(&app, "/").await;
    assert!(
        overview.contains("<a class=\"card\" href=\"/environments?status=ready\"><b>1</b><span class=\"status ok\">ready</span></a>"),
        "{overview}"
    );
    assert!(overview.contains("Nobody is waiting"), "{overview}");

    let (status, list) = page(&app, "/environments").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("href=\"/environments/{}\"", env["id"])),
        "{list}"
    );
    // What a PR says is text, never markup.
    assert!(
        list.contains("Fix &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
        "{list}"
    );
    assert!(!list.contains("<script>"), "{list}");
    let (_, filtered) = page(&app, "/environments?status=failed").await;
    assert!(filtered.contains("No preview matches."), "{filtered}");
    // By author (any case, with or without @) and by text in the title,
    // branch or repository (any case; `%` and `_` are plain text).
    for (query, found) in [
        ("author=codertocat", true),
        ("author=%40Codertocat", true),
        ("author=someone", false),
        ("q=SCRIPT", true),
        ("q=hello-world", true),
        ("q=changes", true),
        ("q=%25", false),
        ("q=r_pt", false),
    ] {
        let (_, html) = page(&app, &format!("/environments?{query}")).await;
        assert_eq!(
            html.contains(&format!("href=\"/environments/{}\"", env["id"])),
            found,
            "{query}: {html}"
        );
    }

    let (status, one) = page(&app, &format!("/environments/{}", env["id"])).await;
    assert_eq!(status, 200);
    for expected in [
        "href=\"https://github.com/Codertocat/Hello-World/pull/2\"",
        &format!(
            "href=\"https://github.com/Codertocat/Hello-World/commit/{:040x}\"",
            1
        ),
        &format!("href=\"{}\"", env["environment_url"].as_str().unwrap()),
        "<h2>Deployments</h2>",
        "<h2>Timeline</h2>",
        "became <span class=\"status busy\">pending</span></li>",
        "became <span class=\"status ok\">ready</span></li>",
        "deployment 1 ended success</li>",
        "success",
        "ready at",
    ] {
        assert!(one.contains(expected), "{expected}: {one}");
    }

    let (_, deliveries) = page(&app, "/deliveries?outcome=applied").await;
    assert!(deliveries.contains("pull_request.opened"), "{deliveries}");
}

async fn bad_filters_and_unknown_previews_get_a_page_that_says_so(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let (status, html) = page(&app, "/environments?status=bogus").await;
    assert_eq!(status, 400);
    assert!(html.contains("Not a status"), "{html}");
    let (status, html) = page(&app, "/environments?repository=no-slash").await;
    assert_eq!(status, 400);
    assert!(html.contains("write it as owner/name"), "{html}");
    let (status, html) = page(&app, "/environments/999").await;
    assert_eq!(status, 404);
    assert!(html.contains("There is no preview 999"), "{html}");
    let (status, _) = page(&app, "/deliveries?cursor=forged").await;
    assert_eq!(status, 400);
}

/// Where the REST API needs a token to read, the dashboard is closed and
/// says what to configure.
async fn where_reads_need_a_token_the_dashboard_says_what_to_configure(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    for path in ["/", "/environments", "/environments/1", "/deliveries"] {
        let (status, html) = page(&app, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(html.contains("EPHEMERA_ANONYMOUS_READS=true"), "{html}");
    }
}

/// The next server-sent event of `stream` (its whole text), waiting at
/// most ten seconds.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if !event.starts_with(':') {
                    return event;
                }
                continue;
            }
            let chunk = stream.chunk().await.unwrap().expect("the stream went on");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .expect("an event within ten seconds")
}

/// A preview's page stays current: its live part comes again over
/// server-sent events when the preview changes.
async fn a_preview_page_follows_its_status_live(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    let id = app.only_environment().await["id"].clone();
    let (_, html) = page(&app, &format!("/environments/{id}")).await;
    assert!(
        html.contains(&format!("data-live=\"/live/environments/{id}\"")),
        "{html}"
    );
    assert!(
        html.contains("<script src=\"/assets/dashboard.js\" defer>"),
        "{html}"
    );
    let script = app
        .client
        .get(format!("{}/assets/dashboard.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("new EventSource"));

    let mut stream = app
        .client
        .get(format!("{}/live/environments/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let first = next_event(&mut stream, &mut buffer).await;
    assert!(first.starts_with("event: live\ndata: "), "{first}");
    assert!(
        first.contains("<span class=\"status ok\">ready</span>"),
        "{first}"
    );

    app.deliver_pr(&pr("closed", 1, 10)).await;
    app.drain().await;
    let next = next_event(&mut stream, &mut buffer).await;
    assert!(
        next.contains("<span class=\"status idle\">destroyed</span>"),
        "{next}"
    );
}

/// The repositories page lists those with previews; each one's page
/// shows its effective configuration and where each value came from.
async fn a_repositorys_page_shows_its_effective_configuration(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| {
        s.repo_config.defaults.ttl = Some(std::time::Duration::from_secs(2 * 86_400));
    })
    .await;
    let (_, empty) = page(&app, "/repositories").await;
    assert!(
        empty.contains("No repository has had a preview yet."),
        "{empty}"
    );
    let (status, unknown) = page(&app, "/repositories/Codertocat/Hello-World").await;
    assert_eq!(status, 404);
    assert!(
        unknown.contains("No active installation of the GitHub App lists Codertocat/Hello-World"),
        "{unknown}"
    );

    let mut installed = support::payload("installation.created");
    installed["installation"]["id"] = json!(1);
    app.deliver_ok("installation", &support::delivery_id(), &installed)
        .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    let (_, list) = page(&app, "/repositories").await;
    assert!(
        list.contains(
            "<a href=\"/repositories/Codertocat/Hello-World\">Codertocat/Hello-World</a>"
        ),
        "{list}"
    );
    let (status, config) = page(&app, "/repositories/Codertocat/Hello-World").await;
    assert_eq!(status, 200, "{config}");
    // No GitHub App configured: no file is read, the defaults apply.
    assert!(
        config.contains("this server&#39;s defaults") || config.contains("this server's defaults"),
        "{config}"
    );
    assert!(
        config.contains("<td><code>previews.ttl</code></td><td>2d</td><td>default</td>"),
        "{config}"
    );
    assert!(
        config.contains("<td><code>previews.mode</code></td><td>auto</td><td>default</td>"),
        "{config}"
    );
}

/// The statuses a preview page's timeline names, newest first.
fn statuses_in_timeline(html: &str) -> Vec<&str> {
    let timeline = &html[html.find("<ol class=\"timeline\">").unwrap()..];
    let timeline = &timeline[..timeline.find("</ol>").unwrap()];
    timeline
        .split("became <span class=\"status ")
        .skip(1)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..];
            &text[..text.find('<').unwrap()]
        })
        .collect()
}

/// A preview's timeline keeps every status it went through, with the
/// reason: going to sleep and being woken by a push stay visible after it
/// is ready again.
async fn a_preview_page_shows_every_status_it_went_through(t: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let provisioner = support::controls::recording_provisioner(&dir.path().join("actions"));
    let app = TestApp::spawn_with(t, move |s| {
        s.provisioner = provisioner;
        s.repo_config.defaults.sleep_after = Some(std::time::Duration::from_secs(3600));
    })
    .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    let id = app.only_environment().await["id"].clone();
    let (_, fresh) = page(&app, &format!("/environments/{id}")).await;
    assert_eq!(
        statuses_in_timeline(&fresh),
        ["ready", "provisioning", "pending"]
    );

    app.clock.advance(std::time::Duration::from_secs(2 * 3600));
    assert_eq!(app.commands.sleep_idle().await.unwrap(), 1);
    app.drain().await;
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    app.drain().await;
    let (_, html) = page(&app, &format!("/environments/{id}")).await;
    assert_eq!(
        statuses_in_timeline(&html),
        [
            "ready",
            "updating",
            "sleeping",
            "stopping",
            "ready",
            "provisioning",
            "pending"
        ],
        "{html}"
    );
    assert!(
        html.contains("</span>: asleep: no activity for more than 1h (previews.sleep_after)</li>"),
        "{html}"
    );
}

backend_tests!(
    a_preview_page_shows_every_status_it_went_through,
    a_repositorys_page_shows_its_effective_configuration,
    a_preview_page_follows_its_status_live,
    an_empty_dashboard_says_how_to_get_a_first_preview,
    a_preview_is_listed_and_its_page_shows_deployments_log_and_links,
    bad_filters_and_unknown_previews_get_a_page_that_says_so,
    where_reads_need_a_token_the_dashboard_says_what_to_configure,
);
