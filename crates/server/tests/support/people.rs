//! A fake GitHub for "Sign in with GitHub": its sign-in pages and the
//! REST endpoints that say who signed in and what they reach.

use ephemera_github_contract as contract;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// GitHub's sign-in pages (`web`) and REST API (`api`, checked against
/// GitHub's OpenAPI description), knowing alice (who reaches `alices`,
/// each with write permission or not) and bob (read on
/// Codertocat/Hello-World). Its authorize page signs alice in at once.
pub async fn github(alices: &[(&str, bool)]) -> (MockServer, MockServer) {
    let web = MockServer::start().await;
    let api = MockServer::start().await;
    contract::enforce(&api).await;
    for (code, token) in [("alice-code", "gho_alice"), ("bob-code", "gho_bob")] {
        Mock::given(method("POST"))
            .and(path("/login/oauth/access_token"))
            .and(body_string_contains(format!("code={code}")))
            .and(body_string_contains("client_id=Iv1.test"))
            .and(body_string_contains("client_secret=test-client-secret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": token, "token_type": "bearer", "scope": ""
            })))
            .mount(&web)
            .await;
    }
    // The authorize page: alice approves at once.
    Mock::given(method("GET"))
        .and(path("/login/oauth/authorize"))
        .respond_with(|request: &wiremock::Request| {
            let query: std::collections::HashMap<_, _> = request.url.query_pairs().collect();
            let back = format!(
                "{}?code=alice-code&state={}",
                query["redirect_uri"], query["state"]
            );
            ResponseTemplate::new(302).insert_header("location", back.as_str())
        })
        .mount(&web)
        .await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired."
        })))
        .with_priority(10)
        .mount(&web)
        .await;
    let bobs: &[(&str, bool)] = &[("Codertocat/Hello-World", false)];
    for (token, login, id, reach) in [
        ("gho_alice", "alice", 7, alices),
        ("gho_bob", "bob", 8, bobs),
    ] {
        let as_user = |m: wiremock::MockBuilder| {
            m.and(header("authorization", format!("Bearer {token}").as_str()))
        };
        as_user(Mock::given(method("GET")).and(path("/user")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"login": login, "id": id})),
            )
            .mount(&api)
            .await;
        as_user(Mock::given(method("GET")).and(path("/user/installations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_count": 1, "installations": [{"id": 1}]
            })))
            .mount(&api)
            .await;
        as_user(Mock::given(method("GET")).and(path("/user/installations/1/repositories")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_count": reach.len(),
                "repositories": reach.iter().map(|(name, push)| json!({
                    "full_name": name,
                    "permissions": {"admin": false, "maintain": false, "push": push, "pull": true}
                })).collect::<Vec<_>>()
            })))
            .mount(&api)
            .await;
    }
    (web, api)
}
