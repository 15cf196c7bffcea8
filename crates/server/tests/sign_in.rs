//! "Sign in with GitHub" on the dashboard, black-box on SQLite and
//! PostgreSQL against a fake GitHub (its REST side checked against
//! GitHub's OpenAPI description): the OAuth round trip, a person seeing
//! only the repositories they reach through the App, and acting only with
//! write permission and the session's CSRF token.

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use support::people::github;
use support::{TestApp, pr};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn app(t: TestDatabase, web: &MockServer, api: &MockServer) -> TestApp {
    let (web_url, api_url) = (web.uri(), api.uri());
    TestApp::spawn_with(t, move |s| {
        s.dashboard.oauth = Some(("Iv1.test".into(), "test-client-secret".to_owned().into()));
        s.dashboard.web_url = web_url;
        s.dashboard.api_url = api_url;
        s.dashboard.public_url = Some("http://127.0.0.1:8080".into());
    })
    .await
}

/// A browser without JavaScript: one cookie jar (ephemera's one cookie),
/// redirects shown rather than followed.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookie: None,
        }
    }

    async fn keep(&mut self, response: reqwest::Response) -> (u16, Option<String>, String) {
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap();
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Lax"),
                "{set}"
            );
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }

    /// Signs in with GitHub's `code`, from the sign-in page to the page
    /// asked for first.
    async fn sign_in(&mut self, code: &str, next: &str) {
        let (status, to_github, _) = self.get(&format!("/login?next={next}")).await;
        assert_eq!(status, 302);
        let to_github = to_github.unwrap();
        assert!(to_github.contains("/login/oauth/authorize?client_id=Iv1.test&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback&state="), "{to_github}");
        let state = to_github
            .split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        let (status, back, page) = self
            .get(&format!("/oauth/callback?code={code}&state={state}"))
            .await;
        assert_eq!((status, back.as_deref()), (303, Some(next)), "{page}");
    }
}

/// The CSRF token of the first form of `html`.
fn csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// PR #2 of another repository, which neither alice nor bob reaches.
fn elsewhere() -> Value {
    let mut p = pr("opened", 9, 0);
    p["repository"]["full_name"] = json!("acme/secret");
    p["repository"]["id"] = json!(555);
    p["pull_request"]["base"]["repo"]["full_name"] = json!("acme/secret");
    p["pull_request"]["base"]["repo"]["id"] = json!(555);
    p["pull_request"]["head"]["repo"]["full_name"] = json!("acme/secret");
    p["pull_request"]["head"]["repo"]["id"] = json!(555);
    p
}

/// How many deployments preview `id` has had.
async fn deployments(app: &TestApp, id: &Value) -> usize {
    app.json(&format!("/api/v1/environments/{id}/deployments"))
        .await
        .as_array()
        .unwrap()
        .len()
}

async fn a_person_signs_in_sees_their_repositories_and_acts_with_write(t: TestDatabase) {
    let (web, api) = github(&[("Codertocat/Hello-World", true)]).await;
    let app = app(t, &web, &api).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.deliver_pr(&elsewhere()).await;
    app.drain().await;
    let envs = app.json("/api/v1/environments").await;
    let id_of = |repo: &str| {
        envs.as_array()
            .unwrap()
            .iter()
            .find(|e| e["repository_full_name"] == repo)
            .unwrap()["id"]
            .clone()
    };
    let (mine, theirs) = (id_of("Codertocat/Hello-World"), id_of("acme/secret"));

    let mut alice = Browser::new(&app);
    // Not signed in: every page sends to the sign-in first.
    let (status, to, _) = alice.get("/environments").await;
    assert_eq!(
        (status, to.as_deref()),
        (302, Some("/login?next=/environments"))
    );
    // A state this browser did not start is refused.
    alice.get("/login").await;
    let (status, _, page) = alice
        .get("/oauth/callback?code=alice-code&state=forged")
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("does not match"), "{page}");
    // A code GitHub does not know is refused with GitHub's words.
    let (_, to_github, _) = alice.get("/login").await;
    let state = to_github
        .unwrap()
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, page) = alice
        .get(&format!("/oauth/callback?code=stale&state={state}"))
        .await;
    assert_eq!(status, 502);
    assert!(page.contains("bad_verification_code"), "{page}");

    alice.sign_in("alice-code", "/environments").await;
    let (status, _, list) = alice.get("/environments").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("Signed in as <strong>@alice</strong>"),
        "{list}"
    );
    assert!(list.contains("Codertocat/Hello-World"), "{list}");
    assert!(
        !list.contains("acme/secret"),
        "only what alice reaches: {list}"
    );
    let (status, _, _) = alice.get(&format!("/environments/{theirs}")).await;
    assert_eq!(status, 404);
    let (_, _, deliveries) = alice.get("/deliveries").await;
    assert!(!deliveries.contains("acme/secret"), "{deliveries}");

    // Her preview offers actions; each asks to confirm, then acts.
    let (_, _, page) = alice.get(&format!("/environments/{mine}")).await;
    assert!(
        page.contains(&format!("href=\"/environments/{mine}/redeploy\"")),
        "{page}"
    );
    let (status, _, confirm) = alice.get(&format!("/environments/{mine}/redeploy")).await;
    assert_eq!(status, 200);
    assert!(
        confirm.contains("Redeploy the preview of Codertocat/Hello-World#2?"),
        "{confirm}"
    );
    let token = csrf(&confirm);
    let (status, _, page) = alice
        .post(
            &format!("/environments/{mine}/redeploy"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(status, 403, "a forged CSRF token: {page}");
    assert_eq!(deployments(&app, &mine).await, 1);
    let (status, to, _) = alice
        .post(
            &format!("/environments/{mine}/redeploy"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!((status, to), (303, Some(format!("/environments/{mine}"))));
    assert_eq!(deployments(&app, &mine).await, 2, "redeployed once");
    // Nothing to do with a preview she cannot see.
    let (status, _, _) = alice
        .post(
            &format!("/environments/{theirs}/destroy"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(status, 404);

    // bob reads the same repository but cannot act on it.
    let mut bob = Browser::new(&app);
    bob.sign_in("bob-code", "/").await;
    let (_, _, page) = bob.get(&format!("/environments/{mine}")).await;
    assert!(
        page.contains("acting on it needs write permission on Codertocat/Hello-World"),
        "{page}"
    );
    assert!(
        !page.contains(&format!("/environments/{mine}/destroy")),
        "{page}"
    );
    let (status, _, page) = bob.get(&format!("/environments/{mine}/destroy")).await;
    assert_eq!(status, 403);
    assert!(
        page.contains("@bob has no write permission on Codertocat/Hello-World"),
        "{page}"
    );
    let (_, _, home) = bob.get("/").await;
    let bobs = csrf(&home);
    let (status, _, _) = bob
        .post(&format!("/environments/{mine}/destroy"), &[("csrf", &bobs)])
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        app.json(&format!("/api/v1/environments/{mine}")).await["status"],
        "ready"
    );

    // Signing out ends the session.
    let (status, to, _) = bob.post("/logout", &[("csrf", &bobs)]).await;
    assert_eq!((status, to.as_deref()), (303, Some("/")));
    let (status, to, _) = bob.get("/").await;
    assert_eq!((status, to.as_deref()), (302, Some("/login?next=/")));
}

/// A failed delivery about her repository: alice asks GitHub to send it
/// again from the delivery log; bob, who may only read, is refused.
async fn a_failed_delivery_can_be_asked_for_again_by_a_writer(t: TestDatabase) {
    use ephemera_application::ports::{DeliveryHeader, WebhookStore};
    let (web, api) = github(&[("Codertocat/Hello-World", true)]).await;
    support::fake_github::hand_out_tokens(&api, None).await;
    let guid = "6a1b2c3d-0000-4000-8000-000000000001";
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": 12345, "guid": guid, "delivered_at": "2030-01-01T00:00:00Z",
            "redelivery": false, "duration": 0.2, "status": "Internal Server Error",
            "status_code": 500, "event": "pull_request", "action": "opened",
            "installation_id": 1, "repository_id": 186853002
        }])))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/12345/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&api)
        .await;
    let (web_url, api_url) = (web.uri(), api.uri());
    let app = TestApp::spawn_with(t, move |s| {
        s.github = Some(ephemera_server::config::GitHubSettings {
            app_id: 42,
            private_key: support::fake_github::KEY.to_owned().into(),
            api_url: api_url.clone(),
        });
        s.dashboard.oauth = Some(("Iv1.test".into(), "test-client-secret".to_owned().into()));
        s.dashboard.web_url = web_url;
        s.dashboard.api_url = api_url;
        s.dashboard.public_url = Some("http://127.0.0.1:8080".into());
    })
    .await;
    // The log has it failed (as when the database was away).
    let store = ephemera_persistence::SqlWebhookStore::new(app.database.db.clone());
    let header = DeliveryHeader {
        delivery_id: ephemera_domain::DeliveryId::parse(guid).unwrap(),
        event: "pull_request".into(),
        action: Some("opened".into()),
        repository: Some("Codertocat/Hello-World".into()),
        installation_id: None,
        body_sha256: None,
    };
    store
        .record_failure(&header, "database unavailable".into(), chrono::Utc::now())
        .await
        .unwrap();

    let mut bob = Browser::new(&app);
    bob.sign_in("bob-code", "/deliveries").await;
    let (_, _, log) = bob.get("/deliveries").await;
    assert!(log.contains(guid) && !log.contains("/redeliver"), "{log}");
    let (status, _, _) = bob.get(&format!("/deliveries/{guid}/redeliver")).await;
    assert_eq!(status, 403);

    let mut alice = Browser::new(&app);
    alice.sign_in("alice-code", "/deliveries").await;
    let (_, _, log) = alice.get("/deliveries").await;
    assert!(
        log.contains(&format!("href=\"/deliveries/{guid}/redeliver\"")),
        "{log}"
    );
    let (_, _, confirm) = alice.get(&format!("/deliveries/{guid}/redeliver")).await;
    assert!(
        confirm.contains("It failed: database unavailable"),
        "{confirm}"
    );
    let (status, to, _) = alice
        .post(
            &format!("/deliveries/{guid}/redeliver"),
            &[("csrf", &csrf(&confirm))],
        )
        .await;
    assert_eq!((status, to.as_deref()), (303, Some("/deliveries")));
    let logged = app.json(&format!("/api/v1/deliveries/{guid}")).await;
    assert!(
        logged["reason"]
            .as_str()
            .unwrap()
            .starts_with("missed; redelivery requested by @alice via the dashboard"),
        "{logged}"
    );
}

backend_tests!(
    a_person_signs_in_sees_their_repositories_and_acts_with_write,
    a_failed_delivery_can_be_asked_for_again_by_a_writer,
);
