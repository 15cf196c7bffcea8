//! The Kubernetes provisioner against a fake API server that checks every
//! request: namespace create (or adoption of one this instance labelled,
//! and refusal of any other), server-side apply of the substituted
//! manifests, waiting for availability, delete and waiting until a GET
//! answers 404; sleeping (scale to zero, remembering replicas) and waking.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_application::ports::{
    ProvisionFailure, ProvisionRequest, Provisioned, Provisioner, Teardown,
};
use ephemera_provisioner::{Instance, Isolation, KubernetesConfig, KubernetesProvisioner};
use serde_json::{Value, json};
use support::request;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ghcr.io/octo/web:${EPHEMERA_COMMIT_SHA}
          env:
            - {name: PUBLIC_HOST, value: "${EPHEMERA_HOST}"}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: somewhere-else
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

fn config(dir: &tempfile::TempDir, timeout: Duration) -> KubernetesConfig {
    KubernetesConfig {
        manifests_dir: dir.path().to_owned(),
        ready_timeout: timeout,
        poll: Duration::from_millis(20),
        terminating_recheck: Duration::from_secs(5),
        instance: Instance::default(),
        isolation: Isolation::default(),
    }
}

fn provisioner(
    server: &MockServer,
    dir: &tempfile::TempDir,
    timeout: Duration,
) -> KubernetesProvisioner {
    provisioner_with(server, config(dir, timeout))
}

/// The provisioner talking to `server` with `config`.
fn provisioner_with(server: &MockServer, config: KubernetesConfig) -> KubernetesProvisioner {
    KubernetesProvisioner::with_server(&server.uri(), config).unwrap()
}

/// The namespace as the API server would answer a GET for it.
fn namespace_object(ns: &str, labels: Value, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": labels},
        "status": {"phase": phase}
    })
}

/// A GET (or DELETE) of namespace `ns` answered with it in `phase`.
fn namespace_found(ns: &str, labels: Value, phase: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(namespace_object(ns, labels, phase))
}

fn ours(instance: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "ephemera", "ephemera.dev/instance": instance})
}

async fn mock_namespace(server: &MockServer, ns: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/namespaces/{ns}")))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn manifests_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), MANIFESTS).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
    dir
}

fn deployment(available: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
        "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": available}
    })
}

/// Answers a request with `code` and the body it was sent, as the API
/// server does for an accepted object.
fn echo(code: u16) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    move |req: &Request| {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        ResponseTemplate::new(code).set_body_json(body)
    }
}

/// The GET of Deployment `web` in `ns`, answered with `available` of its
/// two replicas available; mount it, after any limits.
fn deployment_get(ns: &str, available: i32) -> Mock {
    Mock::given(method("GET"))
        .and(path(format!(
            "/apis/apps/v1/namespaces/{ns}/deployments/web"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(deployment(available)))
}

/// Deployment `web` in `ns` not available at the first `looks` GETs, then
/// available.
async fn available_after(server: &MockServer, ns: &str, looks: u64) {
    deployment_get(ns, 0)
        .up_to_n_times(looks)
        .with_priority(1)
        .mount(server)
        .await;
    deployment_get(ns, 2).with_priority(2).mount(server).await;
}

fn status(code: u16, reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": reason, "reason": reason, "code": code
    }))
}

/// Ephemera's own objects in the namespace: accepted as sent.
async fn mock_isolation(server: &MockServer, ns: &str) {
    for resource in [
        "api/v1/namespaces/{ns}/resourcequotas/ephemera-quota",
        "api/v1/namespaces/{ns}/limitranges/ephemera-limits",
        "apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/ephemera-isolation",
    ] {
        Mock::given(method("PATCH"))
            .and(path(format!("/{}", resource.replace("{ns}", ns))))
            .and(query_param("fieldManager", "ephemera"))
            .respond_with(echo(200))
            .mount(server)
            .await;
    }
}

async fn mock_apply(server: &MockServer, ns: &str) {
    mock_isolation(server, ns).await;
    Mock::given(method("PATCH"))
        .and(path(format!(
            "/apis/apps/v1/namespaces/{ns}/deployments/web"
        )))
        .and(query_param("fieldManager", "ephemera"))
        .and(query_param("force", "true"))
        .and(header("content-type", "application/apply-patch+yaml"))
        .and(body_partial_json(
            json!({"spec": {"template": {"spec": {"containers": [{
                "image": format!("ghcr.io/octo/web:{}", "ab".repeat(20)),
                "env": [{"name": "PUBLIC_HOST", "value": "pr-7.preview.example.com"}]
            }]}}}}),
        ))
        .respond_with(echo(200))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v1/namespaces/{ns}/services/web")))
        .and(query_param("fieldManager", "ephemera"))
        .respond_with(echo(200))
        .expect(1)
        .mount(server)
        .await;
}

/// The API server creates the namespace, once, from a POST whose metadata
/// holds `metadata`, and answers with what it was sent.
async fn expect_namespace_created(server: &MockServer, metadata: Value) {
    Mock::given(method("POST"))
        .and(path("/api/v1/namespaces"))
        .and(body_partial_json(json!({ "metadata": metadata })))
        .respond_with(echo(201))
        .expect(1)
        .mount(server)
        .await;
}

/// Provisions `req` into `ns` with the test manifests, `adjust` changing the
/// usual configuration: every manifest accepted, the Deployment available
/// at once.
async fn provision_available(
    server: &MockServer,
    req: &ProvisionRequest,
    ns: &str,
    adjust: impl FnOnce(KubernetesConfig) -> KubernetesConfig,
) -> Provisioned {
    mock_apply(server, ns).await;
    deployment_get(ns, 2).mount(server).await;
    let dir = manifests_dir();
    provisioner_with(server, adjust(config(&dir, Duration::from_secs(10))))
        .provision(req)
        .await
        .unwrap()
}

/// A fake API server on which the PR's namespace does not exist yet, the
/// request for that PR, and the namespace's name.
async fn server_without_namespace() -> (MockServer, ProvisionRequest, String) {
    let server = MockServer::start().await;
    let req = request();
    let ns = req.namespace.to_string();
    mock_namespace(&server, &ns, status(404, "NotFound")).await;
    (server, req, ns)
}

/// How provisioning `req` with the test manifests fails within `timeout`.
async fn provision_failing(
    server: &MockServer,
    req: &ProvisionRequest,
    timeout: Duration,
) -> ProvisionFailure {
    let dir = manifests_dir();
    provisioner(server, &dir, timeout)
        .provision(req)
        .await
        .unwrap_err()
}

/// The API server creates the namespace when asked.
async fn accept_new_namespace(server: &MockServer, ns: &str) {
    Mock::given(method("POST"))
        .and(path("/api/v1/namespaces"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"metadata": {"name": ns}})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn provision_creates_the_namespace_applies_and_waits_for_availability() {
    let (server, req, ns) = server_without_namespace().await;
    expect_namespace_created(
        &server,
        json!({"name": ns, "labels": {
            "app.kubernetes.io/managed-by": "ephemera",
            "ephemera.dev/instance": "ephemera",
            "ephemera.dev/repository": "octo.web",
            "ephemera.dev/pr": "7",
            "ephemera.dev/installation": "42",
        }}),
    )
    .await;
    mock_apply(&server, &ns).await;
    available_after(&server, &ns, 2).await;

    let dir = manifests_dir();
    let done = provisioner(&server, &dir, Duration::from_secs(10))
        .provision(&req)
        .await
        .unwrap();
    assert_eq!(done.url, "https://pr-7.preview.example.com");
    assert_eq!(
        done.logs,
        format!(
            "namespace {ns} created\n\
             applied ResourceQuota ephemera-quota\n\
             applied LimitRange ephemera-limits\n\
             applied NetworkPolicy ephemera-isolation\n\
             applied Deployment web\n\
             applied Service web\n\
             Deployment web available"
        )
    );
    // Service went to the PR's namespace, not the one in the file.
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().contains("somewhere-else"))
    );
}

#[tokio::test]
async fn an_existing_namespace_of_this_instance_is_adopted_and_relabelled() {
    let server = MockServer::start().await;
    let req = request();
    let ns = req.namespace.to_string();
    mock_namespace(
        &server,
        &ns,
        namespace_found(&ns, ours("ephemera"), "Active"),
    )
    .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v1/namespaces/{ns}")))
        .and(query_param("fieldManager", "ephemera"))
        .and(body_partial_json(json!({"metadata": {"labels": {
            "ephemera.dev/instance": "ephemera", "ephemera.dev/pr": "7"
        }}})))
        .respond_with(echo(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(status(409, "AlreadyExists"))
        .expect(0)
        .mount(&server)
        .await;
    let done = provision_available(&server, &req, &ns, |config| config).await;
    assert!(
        done.logs
            .starts_with(&format!("namespace {ns} already exists")),
        "{}",
        done.logs
    );
}

#[tokio::test]
async fn deployments_that_never_become_available_fail_the_attempt() {
    let (server, req, ns) = server_without_namespace().await;
    accept_new_namespace(&server, &ns).await;
    mock_apply(&server, &ns).await;
    deployment_get(&ns, 1).mount(&server).await;

    let failure = provision_failing(&server, &req, Duration::from_millis(200)).await;
    assert_eq!(failure.message, "Deployment web not available after 0s");
    assert!(
        failure.logs.contains("applied Service web"),
        "{}",
        failure.logs
    );
}

#[tokio::test]
async fn a_rejected_manifest_fails_with_the_api_servers_reason() {
    let (server, req, ns) = server_without_namespace().await;
    accept_new_namespace(&server, &ns).await;
    mock_isolation(&server, &ns).await;
    Mock::given(method("PATCH"))
        .respond_with(status(422, "Invalid"))
        .mount(&server)
        .await;

    let failure = provision_failing(&server, &req, Duration::from_secs(1)).await;
    assert!(
        failure.message.starts_with("applying Deployment web:"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("Invalid"), "{}", failure.message);
}

#[tokio::test]
async fn destroy_is_done_only_when_the_namespace_is_gone() {
    let server = MockServer::start().await;
    let req = request();
    let ns = req.namespace.to_string();
    let namespace = format!("/api/v1/namespaces/{ns}");
    // Active, then terminating (twice), then gone.
    Mock::given(method("GET"))
        .and(path(&namespace))
        .respond_with(namespace_found(&ns, ours("ephemera"), "Active"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&namespace))
        .respond_with(namespace_found(&ns, ours("ephemera"), "Terminating"))
        .up_to_n_times(2)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&namespace))
        .respond_with(status(404, "NotFound"))
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(&namespace))
        .respond_with(namespace_found(&ns, ours("ephemera"), "Terminating"))
        .expect(1)
        .mount(&server)
        .await;

    let dir = manifests_dir();
    let p = provisioner(&server, &dir, Duration::from_secs(1));
    let recheck = Duration::from_secs(5);
    assert_eq!(
        p.destroy(&req).await.unwrap(),
        Teardown::InProgress {
            logs: format!("namespace {ns} deletion requested"),
            recheck
        }
    );
    for _ in 0..2 {
        assert_eq!(
            p.destroy(&req).await.unwrap(),
            Teardown::InProgress {
                logs: format!("namespace {ns} is still terminating"),
                recheck
            },
            "no second DELETE while it terminates"
        );
    }
    assert_eq!(
        p.destroy(&req).await.unwrap(),
        Teardown::Gone {
            logs: format!("namespace {ns} is gone")
        }
    );
}

#[tokio::test]
async fn a_namespace_in_the_manifests_is_refused() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ns.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mine\n",
    )
    .unwrap();
    let failure = provisioner(&server, &dir, Duration::from_secs(1))
        .provision(&request())
        .await
        .unwrap_err();
    assert!(
        failure
            .message
            .contains("ephemera creates the PR's namespace itself"),
        "{}",
        failure.message
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing sent"
    );
}

#[tokio::test]
async fn a_namespace_without_this_instances_labels_is_never_touched() {
    let req = request();
    for (instance, labels) in [
        ("ephemera", json!({})),
        ("ephemera", json!({"app.kubernetes.io/managed-by": "helm"})),
        ("ephemera", ours("staging")),
        // Unlabelled namespaces of older versions belong to the default
        // instance only.
        (
            "staging",
            json!({"app.kubernetes.io/managed-by": "ephemera"}),
        ),
        ("staging", ours("production")),
    ] {
        let server = MockServer::start().await;
        let ns = if instance == "ephemera" {
            req.namespace.to_string()
        } else {
            format!("{instance}-{}", req.namespace)
        };
        mock_namespace(&server, &ns, namespace_found(&ns, labels.clone(), "Active")).await;
        let dir = manifests_dir();
        let p = provisioner_with(
            &server,
            KubernetesConfig {
                instance: Instance::parse(instance).unwrap(),
                ..config(&dir, Duration::from_secs(1))
            },
        );

        let refused = format!(
            "namespace {ns} exists but is not labelled app.kubernetes.io/managed-by=ephemera, \
             ephemera.dev/instance={instance}"
        );
        let failure = p.provision(&req).await.unwrap_err();
        assert!(
            failure.message.starts_with(&refused),
            "{labels}: {}",
            failure.message
        );
        let failures = [
            p.destroy(&req).await.unwrap_err(),
            p.stop(&req).await.unwrap_err(),
            p.start(&req).await.unwrap_err(),
        ];
        for failure in failures {
            assert!(
                failure.message.starts_with(&refused),
                "{labels}: {}",
                failure.message
            );
        }
        let sent = server.received_requests().await.unwrap();
        assert!(
            sent.iter().all(|r| r.method.as_str() == "GET"),
            "{labels}: only looked, never wrote: {:?}",
            sent.iter()
                .map(|r| (r.method.as_str(), r.url.path()))
                .collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_namespace_made_before_instances_is_labelled_by_the_default_instance() {
    let server = MockServer::start().await;
    let req = request();
    let ns = req.namespace.to_string();
    mock_namespace(
        &server,
        &ns,
        namespace_found(
            &ns,
            json!({"app.kubernetes.io/managed-by": "ephemera"}),
            "Active",
        ),
    )
    .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v1/namespaces/{ns}")))
        .and(body_partial_json(
            json!({"metadata": {"labels": {"ephemera.dev/instance": "ephemera"}}}),
        ))
        .respond_with(echo(200))
        .expect(1)
        .mount(&server)
        .await;
    let done = provision_available(&server, &req, &ns, |config| config).await;
    assert!(
        done.logs.starts_with(&format!(
            "namespace {ns} (made before EPHEMERA_INSTANCE existed) labelled for instance ephemera"
        )),
        "{}",
        done.logs
    );
}

#[tokio::test]
async fn another_instance_prefixes_and_labels_its_namespaces() {
    let server = MockServer::start().await;
    let req = request();
    let ns = format!("staging-{}", req.namespace);
    mock_namespace(&server, &ns, status(404, "NotFound")).await;
    expect_namespace_created(
        &server,
        json!({"name": ns, "labels": {
            "app.kubernetes.io/managed-by": "ephemera",
            "ephemera.dev/instance": "staging",
        }}),
    )
    .await;
    let done = provision_available(&server, &req, &ns, |config| KubernetesConfig {
        instance: Instance::parse("staging").unwrap(),
        ..config
    })
    .await;
    assert!(
        done.logs.starts_with(&format!("namespace {ns} created")),
        "{}",
        done.logs
    );
    assert!(Instance::parse("Staging").is_err());
    assert!(Instance::parse(&"a".repeat(21)).is_err());
}

/// The body of the one request made to `path`.
async fn body_sent_to(server: &MockServer, method: &str, path: &str) -> Value {
    let sent: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.url.path() == path)
        .collect();
    assert_eq!(sent.len(), 1, "{method} {path}");
    serde_json::from_slice(&sent[0].body).unwrap()
}

async fn provision_fresh(isolation: Isolation) -> (MockServer, String) {
    let (server, req, ns) = server_without_namespace().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/namespaces"))
        .respond_with(echo(200))
        .mount(&server)
        .await;
    provision_available(&server, &req, &ns, |config| KubernetesConfig {
        isolation,
        ..config
    })
    .await;
    (server, ns)
}

#[tokio::test]
async fn each_namespace_is_fenced_in_before_the_manifests_are_applied() {
    let (server, ns) = provision_fresh(Isolation::default()).await;

    let namespace = body_sent_to(&server, "POST", "/api/v1/namespaces").await;
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(
        labels["pod-security.kubernetes.io/enforce-version"],
        "latest"
    );

    let quota = body_sent_to(
        &server,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/resourcequotas/ephemera-quota"),
    )
    .await;
    assert_eq!(quota["spec"]["hard"]["limits.memory"], "8Gi");
    assert_eq!(quota["spec"]["hard"]["services.loadbalancers"], "0");
    let limits = body_sent_to(
        &server,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/limitranges/ephemera-limits"),
    )
    .await;
    assert_eq!(
        limits["spec"]["limits"][0],
        json!({"type": "Container",
               "default": {"cpu": "500m", "memory": "512Mi"},
               "defaultRequest": {"cpu": "100m", "memory": "128Mi"}})
    );
    let policy = body_sent_to(
        &server,
        "PATCH",
        &format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/ephemera-isolation"),
    )
    .await;
    assert_eq!(policy["spec"]["podSelector"], json!({}));
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let internet = &policy["spec"]["egress"][2]["to"][0]["ipBlock"];
    assert_eq!(internet["cidr"], "0.0.0.0/0");
    assert!(
        internet["except"]
            .as_array()
            .unwrap()
            .contains(&json!("169.254.0.0/16")),
        "{internet}"
    );

    // Every fence before the first manifest.
    let order: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| r.url.path().rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        [
            "ephemera-quota",
            "ephemera-limits",
            "ephemera-isolation",
            "web",
            "web"
        ]
    );
}

#[tokio::test]
async fn the_fences_can_be_turned_off() {
    let (server, _) = provision_fresh(Isolation::off()).await;
    let namespace = body_sent_to(&server, "POST", "/api/v1/namespaces").await;
    assert!(
        !namespace.to_string().contains("pod-security"),
        "{namespace}"
    );
    let sent = server.received_requests().await.unwrap();
    assert!(
        sent.iter().all(|r| !r.url.path().contains("ephemera-")),
        "no quota, limits or policy"
    );
}

#[tokio::test]
async fn placeholders_fill_string_values_and_cannot_add_yaml() {
    let (server, mut req, ns) = server_without_namespace().await;
    // Legal git branch names that would change the YAML's structure if
    // pasted into its text.
    req.branch = "feat,extra\"{#".into();
    Mock::given(method("POST"))
        .and(path("/api/v1/namespaces"))
        .respond_with(echo(200))
        .mount(&server)
        .await;
    mock_isolation(&server, &ns).await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v1/namespaces/{ns}/configmaps/info")))
        .respond_with(echo(200))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("info.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: info}\ndata:\n  \
         plain: ${EPHEMERA_BRANCH}\n  \
         quoted: \"${EPHEMERA_BRANCH}\"\n  \
         both: \"${EPHEMERA_PR_NUMBER}/${EPHEMERA_BRANCH}\"\n  \
         other: ${HOME}\n",
    )
    .unwrap();

    provisioner(&server, &dir, Duration::from_secs(1))
        .provision(&req)
        .await
        .unwrap();
    let applied = body_sent_to(
        &server,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/configmaps/info"),
    )
    .await;
    assert_eq!(
        applied["data"],
        json!({
            "plain": "feat,extra\"{#",
            "quoted": "feat,extra\"{#",
            "both": "7/feat,extra\"{#",
            "other": "${HOME}",
        })
    );
}

const REMEMBERED: &str = "ephemera.dev/replicas-before-sleep";

/// A Deployment or StatefulSet as listed, with `replicas` and, when given,
/// the replicas remembered before it was put to sleep.
fn workload(kind: &str, name: &str, replicas: i32, remembered: Option<&str>) -> Value {
    let annotations = match remembered {
        Some(count) => json!({ REMEMBERED: count }),
        None => json!({}),
    };
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": replicas},
    })
}

/// `patch` merged into `target` as RFC 7386 says (null removes a key).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().unwrap();
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The namespace, this instance's, listing `deployments` and
/// `statefulsets`; a merge patch of one of them is answered with the
/// workload as patched, as the API server does.
async fn server_with_workloads(
    deployments: Vec<Value>,
    statefulsets: Vec<Value>,
) -> (MockServer, ProvisionRequest, String) {
    let server = MockServer::start().await;
    let req = request();
    let ns = req.namespace.to_string();
    mock_namespace(
        &server,
        &ns,
        namespace_found(&ns, ours("ephemera"), "Active"),
    )
    .await;
    for (plural, items) in [("deployments", deployments), ("statefulsets", statefulsets)] {
        Mock::given(method("GET"))
            .and(path(format!("/apis/apps/v1/namespaces/{ns}/{plural}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "apiVersion": "apps/v1", "kind": "List", "metadata": {}, "items": items
            })))
            .mount(&server)
            .await;
        for item in items {
            let name = item["metadata"]["name"].as_str().unwrap().to_owned();
            Mock::given(method("PATCH"))
                .and(path(format!(
                    "/apis/apps/v1/namespaces/{ns}/{plural}/{name}"
                )))
                .and(query_param("fieldManager", "ephemera"))
                .and(header("content-type", "application/merge-patch+json"))
                .respond_with(move |req: &Request| {
                    let mut patched = item.clone();
                    merge(&mut patched, &serde_json::from_slice(&req.body).unwrap());
                    ResponseTemplate::new(200).set_body_json(patched)
                })
                .mount(&server)
                .await;
        }
    }
    (server, req, ns)
}

/// Every request the server received, as `METHOD path`, and the bodies of
/// the PATCHes in order.
async fn requests_and_patches(server: &MockServer) -> (Vec<String>, Vec<Value>) {
    let received = server.received_requests().await.unwrap();
    let requests = received
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    let patches = received
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    (requests, patches)
}

/// The requests of a stop or start that patches Deployment `web` and then
/// StatefulSet `db` of `ns`, in order.
fn scaling_web_then_db(ns: &str) -> Vec<String> {
    let apps = format!("/apis/apps/v1/namespaces/{ns}");
    vec![
        format!("GET /api/v1/namespaces/{ns}"),
        format!("GET {apps}/deployments"),
        format!("PATCH {apps}/deployments/web"),
        format!("GET {apps}/statefulsets"),
        format!("PATCH {apps}/statefulsets/db"),
    ]
}

/// The merge patch setting the remembered count to `remembered` (null
/// removes it) and the replicas to `replicas`.
fn scaling(remembered: Value, replicas: i32) -> Value {
    json!({"metadata": {"annotations": {REMEMBERED: remembered}}, "spec": {"replicas": replicas}})
}

#[tokio::test]
async fn stop_scales_deployments_and_statefulsets_to_zero_remembering_their_replicas() {
    let (server, req, ns) = server_with_workloads(
        vec![
            workload("Deployment", "web", 2, None),
            // Stopped before: a second stop keeps what it remembered.
            workload("Deployment", "worker", 0, Some("3")),
        ],
        vec![workload("StatefulSet", "db", 1, None)],
    )
    .await;
    let dir = manifests_dir();

    let stopped = provisioner(&server, &dir, Duration::from_secs(1))
        .stop(&req)
        .await
        .unwrap();
    assert_eq!(
        stopped.logs,
        "Deployment web scaled to 0 (2 replicas remembered)\n\
         Deployment worker already asleep (3 replicas remembered)\n\
         StatefulSet db scaled to 0 (1 replica remembered)"
    );
    let (requests, patches) = requests_and_patches(&server).await;
    assert_eq!(requests, scaling_web_then_db(&ns));
    assert_eq!(patches, [scaling(json!("2"), 0), scaling(json!("1"), 0)]);
}

#[tokio::test]
async fn start_scales_back_to_the_remembered_replicas_then_waits_for_availability() {
    let (server, req, ns) = server_with_workloads(
        vec![workload("Deployment", "web", 0, Some("2"))],
        vec![
            // Nothing remembered: one replica.
            workload("StatefulSet", "db", 0, None),
            // Already running: left as it is.
            workload("StatefulSet", "cache", 2, None),
        ],
    )
    .await;
    available_after(&server, &ns, 1).await;
    let dir = manifests_dir();

    let started = provisioner(&server, &dir, Duration::from_secs(10))
        .start(&req)
        .await
        .unwrap();
    assert_eq!(started.url, "https://pr-7.preview.example.com");
    assert_eq!(
        started.logs,
        "Deployment web scaled back to 2\n\
         StatefulSet db scaled back to 1 (no replicas remembered)\n\
         StatefulSet cache already running (2 replicas)\n\
         Deployment web available"
    );
    let (requests, patches) = requests_and_patches(&server).await;
    // Every workload patched before the wait; unavailable, then available.
    let web = format!("GET /apis/apps/v1/namespaces/{ns}/deployments/web");
    let mut expected = scaling_web_then_db(&ns);
    expected.extend([web.clone(), web]);
    assert_eq!(requests, expected);
    assert_eq!(patches, [scaling(Value::Null, 2), scaling(Value::Null, 1)]);
}

#[tokio::test]
async fn a_woken_deployment_that_never_becomes_available_fails_the_start() {
    let (server, req, ns) =
        server_with_workloads(vec![workload("Deployment", "web", 0, Some("2"))], vec![]).await;
    deployment_get(&ns, 1).mount(&server).await;
    let dir = manifests_dir();

    let failure = provisioner(&server, &dir, Duration::from_millis(100))
        .start(&req)
        .await
        .unwrap_err();
    assert_eq!(failure.message, "Deployment web not available after 0s");
    assert_eq!(failure.logs, "Deployment web scaled back to 2");
}

#[tokio::test]
async fn a_missing_namespace_has_nothing_to_stop_and_cannot_be_woken() {
    let (server, req, ns) = server_without_namespace().await;
    let dir = manifests_dir();
    let p = provisioner(&server, &dir, Duration::from_secs(1));

    let stopped = p.stop(&req).await.unwrap();
    assert_eq!(
        stopped.logs,
        format!("namespace {ns} does not exist; nothing to stop")
    );
    let failure = p.start(&req).await.unwrap_err();
    assert_eq!(
        failure.message,
        format!(
            "namespace {ns} does not exist, so there is nothing to wake; \
             provisioning the preview again creates it"
        )
    );
    let (requests, _) = requests_and_patches(&server).await;
    assert_eq!(
        requests,
        [
            format!("GET /api/v1/namespaces/{ns}"),
            format!("GET /api/v1/namespaces/{ns}")
        ]
    );
}
