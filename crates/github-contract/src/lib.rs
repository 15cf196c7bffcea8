//! GitHub's REST contract, enforced by the fake GitHubs of ephemera's tests
//! (the github adapter's own, and the server's end-to-end ones).
//!
//! [`enforce`] mounts, ahead of every other mock, one that matches only the
//! requests GitHub's official OpenAPI description (vendored in
//! `openapi/operations.json`, see its README) would not accept, or
//! that lack ephemera's headers. It answers them as GitHub does (422 with
//! the reasons, or 404 for an unknown route) and expects to match nothing,
//! so a single bad request fails the test when the server is dropped, with
//! the reasons printed and listed in the adapter's error.

#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use serde_json::{Value, json};
use wiremock::http::HeaderMap;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// What every request must say about its sender.
pub const USER_AGENT: &str = concat!("ephemera/", env!("CARGO_PKG_VERSION"));
pub const ACCEPT: &str = "application/vnd.github+json";
pub const API_VERSION: &str = "2022-11-28";

const OPERATIONS_JSON: &str = include_str!("../openapi/operations.json");

struct Operation {
    id: String,
    method: String,
    /// The path template split at `/`; `Err(name)` for a `{name}` segment.
    segments: Vec<Result<String, String>>,
    /// The last segment's parameter spans the rest of the path, `/`s and
    /// all (`x-multi-segment`, e.g. the file path of `repos/get-content`).
    multi_segment_tail: bool,
    params: Vec<Param>,
    body: Option<Body>,
}

struct Param {
    name: String,
    location: String,
    required: bool,
    schema: Value,
    validator: jsonschema::Validator,
}

struct Body {
    required: bool,
    validator: jsonschema::Validator,
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("vendored schema does not compile: {e}\n{schema}"))
}

static OPERATIONS: LazyLock<Vec<Operation>> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(OPERATIONS_JSON).unwrap();
    doc["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| Operation {
            id: op["operationId"].as_str().unwrap().to_owned(),
            method: op["method"].as_str().unwrap().to_owned(),
            segments: op["path"]
                .as_str()
                .unwrap()
                .split('/')
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Err(name.to_owned()),
                        None => Ok(s.to_owned()),
                    },
                )
                .collect(),
            multi_segment_tail: op["parameters"].as_array().unwrap().iter().any(|p| {
                p["in"] == "path"
                    && p["multiSegment"] == true
                    && op["path"]
                        .as_str()
                        .unwrap()
                        .ends_with(&format!("{{{}}}", p["name"].as_str().unwrap()))
            }),
            params: op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| Param {
                    name: p["name"].as_str().unwrap().to_owned(),
                    location: p["in"].as_str().unwrap().to_owned(),
                    required: p["required"].as_bool().unwrap(),
                    schema: p["schema"].clone(),
                    validator: compile(&p["schema"]),
                })
                .collect(),
            body: op["requestBody"].as_object().map(|b| Body {
                required: b["required"].as_bool().unwrap(),
                validator: compile(&b["schema"]),
            }),
        })
        .collect()
});

/// The vendored description's package version, for messages.
pub fn source() -> String {
    let doc: Value = serde_json::from_str(OPERATIONS_JSON).unwrap();
    format!(
        "{}@{}",
        doc["source"]["package"].as_str().unwrap(),
        doc["source"]["version"].as_str().unwrap()
    )
}

/// A path or query value typed as its schema says (they arrive as text).
fn typed(schema: &Value, raw: &str) -> Value {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.iter().any(|t| *t == "integer" || *t == "number")
        && let Ok(n) = serde_json::from_str::<serde_json::Number>(raw)
    {
        return Value::Number(n);
    }
    if types.contains(&"boolean") && (raw == "true" || raw == "false") {
        return Value::Bool(raw == "true");
    }
    Value::String(raw.to_owned())
}

fn schema_errors(validator: &jsonschema::Validator, what: &str, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{what}{at}: {e}")
        })
        .collect()
}

fn one_header(headers: &HeaderMap, name: &str, want: &str) -> Option<String> {
    let values: Vec<_> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (values != [want]).then(|| format!("header {name}: want exactly `{want}`, got {values:?}"))
}

/// The operation a request is for, if the description has it.
fn route<'a>(
    method: &str,
    path: &'a str,
) -> Option<(&'static Operation, Vec<(&'static str, &'a str)>)> {
    OPERATIONS.iter().find_map(|op| {
        if op.method != method {
            return None;
        }
        // A multi-segment tail takes whatever is left, `/`s and all.
        let parts = if op.multi_segment_tail {
            op.segments.len()
        } else {
            usize::MAX
        };
        let segments: Vec<&str> = path.splitn(parts, '/').collect();
        if op.segments.len() != segments.len() {
            return None;
        }
        let mut bound = Vec::new();
        for (template, actual) in op.segments.iter().zip(&segments) {
            match template {
                Ok(literal) if literal == actual => {}
                Err(name) if !actual.is_empty() => bound.push((name.as_str(), *actual)),
                _ => return None,
            }
        }
        Some((op, bound))
    })
}

/// Everything GitHub's description, or ephemera's header rules, find wrong
/// with one request; empty when it is fine.
pub fn violations(request: &Request) -> Vec<String> {
    let method = request.method.as_str();
    let path = request.url.path();
    let mut found = Vec::new();
    for (name, want) in [
        ("user-agent", USER_AGENT),
        ("accept", ACCEPT),
        ("x-github-api-version", API_VERSION),
    ] {
        found.extend(one_header(&request.headers, name, want));
    }
    if !request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
    {
        found.push("no `Authorization: Bearer` header".to_owned());
    }
    let Some((op, bound)) = route(method, path) else {
        found.push(format!(
            "{method} {path} is not an operation of the vendored description ({})",
            source()
        ));
        return found;
    };
    let what = |s: &str| format!("{} {s}", op.id);

    for (name, raw) in &bound {
        match op
            .params
            .iter()
            .find(|p| p.location == "path" && p.name == *name)
        {
            Some(p) => found.extend(schema_errors(
                &p.validator,
                &what(name),
                &typed(&p.schema, raw),
            )),
            None => found.push(what(&format!("path parameter {name} is not described"))),
        }
    }
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    for (name, raw) in &query {
        match op
            .params
            .iter()
            .find(|p| p.location == "query" && &p.name == name)
        {
            Some(p) => found.extend(schema_errors(
                &p.validator,
                &what(&format!("?{name}")),
                &typed(&p.schema, raw),
            )),
            None => found.push(what(&format!("unknown query parameter `{name}`"))),
        }
    }
    for p in op
        .params
        .iter()
        .filter(|p| p.location == "query" && p.required)
    {
        if !query.iter().any(|(n, _)| *n == p.name) {
            found.push(what(&format!(
                "required query parameter `{}` missing",
                p.name
            )));
        }
    }

    match (&op.body, request.body.is_empty()) {
        (None, true) => {}
        (None, false) => found.push(what("takes no request body, one was sent")),
        (Some(body), true) => {
            if body.required {
                found.push(what("request body is required, none was sent"));
            }
        }
        (Some(body), false) => {
            found.extend(one_header(
                &request.headers,
                "content-type",
                "application/json",
            ));
            match serde_json::from_slice::<Value>(&request.body) {
                Ok(value) => found.extend(schema_errors(&body.validator, &what("body"), &value)),
                Err(e) => found.push(what(&format!("body is not JSON: {e}"))),
            }
        }
    }
    found
}

/// Matches the requests that break the contract (see the module doc).
struct Breaks;

impl Match for Breaks {
    fn matches(&self, request: &Request) -> bool {
        let found = violations(request);
        if !found.is_empty() {
            eprintln!(
                "contract ({}): {} {} breaks it:\n  {}",
                source(),
                request.method,
                request.url.path(),
                found.join("\n  ")
            );
        }
        !found.is_empty()
    }
}

/// Makes `server` refuse, and the test fail on, any request that breaks
/// GitHub's contract. Mount it before anything else.
pub async fn enforce(server: &MockServer) {
    Mock::given(Breaks)
        .respond_with(|request: &Request| {
            let found = violations(request);
            let unknown = route(request.method.as_str(), request.url.path()).is_none();
            let status = if unknown { 404 } else { 422 };
            ResponseTemplate::new(status).set_body_json(json!({
                "message": if unknown { "Not Found" } else { "Invalid request." },
                "errors": found,
                "documentation_url": "https://docs.github.com/rest",
                "status": status.to_string(),
            }))
        })
        .with_priority(1)
        .named("GitHub's REST contract (see the contract lines printed above)")
        .expect(0)
        .mount(server)
        .await;
}

#[cfg(test)]
mod checker {
    //! The checker itself: it must catch what GitHub would refuse.

    use super::*;
    use wiremock::http::{HeaderValue, Method, Url};

    fn request(method: &str, path: &str, body: Value) -> Request {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("user-agent", USER_AGENT),
            ("accept", ACCEPT),
            ("x-github-api-version", API_VERSION),
            ("authorization", "Bearer ghs_x"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        Request {
            url: Url::parse(&format!("http://127.0.0.1{path}")).unwrap(),
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            headers,
            body: if body.is_null() {
                Vec::new()
            } else {
                serde_json::to_vec(&body).unwrap()
            },
        }
    }

    const STATUSES: &str = "/repos/o/r/deployments/9/statuses";

    #[test]
    fn a_valid_deployment_status_passes() {
        let r = request(
            "POST",
            STATUSES,
            json!({"state": "success", "environment_url": "https://x"}),
        );
        assert_eq!(violations(&r), Vec::<String>::new());
    }

    #[test]
    fn null_where_a_string_is_required_fails() {
        let r = request(
            "POST",
            STATUSES,
            json!({"state": "success", "environment_url": null}),
        );
        let found = violations(&r);
        assert!(
            found.len() == 1 && found[0].contains("/environment_url"),
            "{found:?}"
        );
    }

    #[test]
    fn null_where_the_description_says_nullable_passes() {
        let r = request(
            "POST",
            "/repos/o/r/statuses/ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            json!({"state": "pending", "target_url": null}),
        );
        assert_eq!(violations(&r), Vec::<String>::new());
    }

    #[test]
    fn unknown_enum_values_routes_and_parameters_fail() {
        let bad_state = request("POST", STATUSES, json!({"state": "ready"}));
        assert!(!violations(&bad_state).is_empty());
        assert!(!violations(&request("DELETE", STATUSES, Value::Null)).is_empty());
        assert!(!violations(&request("GET", "/repos/o/r/pulls/x", Value::Null)).is_empty());
        let unknown_query = request(
            "GET",
            "/repos/o/r/issues/2/comments?per_page=100&sort=x",
            Value::Null,
        );
        assert_eq!(violations(&unknown_query).len(), 1);
        let not_a_number = request("GET", "/repos/o/r/issues/2/comments?page=x", Value::Null);
        assert_eq!(violations(&not_a_number).len(), 1);
    }

    #[test]
    fn a_file_path_spans_segments_where_the_description_says_so() {
        let nested = request(
            "GET",
            "/repos/o/r/contents/.github/ephemera.yml?ref=main",
            Value::Null,
        );
        assert_eq!(violations(&nested), Vec::<String>::new());
        let no_file = request("GET", "/repos/o/r/contents/", Value::Null);
        assert!(!violations(&no_file).is_empty());
        // Only a parameter marked multi-segment spans `/`s.
        let nested_pr = request("GET", "/repos/o/r/pulls/2/files/x", Value::Null);
        assert!(!violations(&nested_pr).is_empty());
    }

    #[test]
    fn a_check_run_completed_without_a_conclusion_fails_on_update() {
        let run = "/repos/o/r/check-runs/4";
        let done = json!({"status": "completed", "conclusion": "success"});
        assert_eq!(
            violations(&request("PATCH", run, done)),
            Vec::<String>::new()
        );
        let found = violations(&request("PATCH", run, json!({"status": "completed"})));
        assert_eq!(found.len(), 1, "{found:?}");
        // Only the update's schema says so (the create's says it in prose).
        let create = request(
            "POST",
            "/repos/o/r/check-runs",
            json!({"name": "n", "head_sha": "s", "status": "completed"}),
        );
        assert_eq!(violations(&create), Vec::<String>::new());
    }

    #[test]
    fn a_reaction_outside_githubs_list_fails() {
        let path = "/repos/o/r/issues/comments/7/reactions";
        assert!(violations(&request("POST", path, json!({"content": "eyes"}))).is_empty());
        assert_eq!(
            violations(&request("POST", path, json!({"content": "thumbsup"}))).len(),
            1
        );
    }

    #[test]
    fn missing_or_doubled_headers_fail() {
        let mut r = request("GET", "/repos/o/r/pulls/2", Value::Null);
        r.headers.remove("accept");
        r.headers
            .append("user-agent", HeaderValue::from_static("octocrab"));
        let found = violations(&r);
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
