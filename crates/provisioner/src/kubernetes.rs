//! The Kubernetes provisioner (kube-rs): one namespace per PR.
//!
//! - The namespace is labelled so it can be traced back, and so that each
//!   ephemera instance (`EPHEMERA_INSTANCE`) adopts and deletes only the
//!   namespaces it made.
//! - Before anything of the PR's, the namespace is fenced in: Pod Security
//!   Admission labels, a ResourceQuota, a LimitRange and a NetworkPolicy
//!   (see [`isolation`]).
//! - The manifests of `EPHEMERA_K8S_MANIFESTS_DIR` are applied into it with
//!   server-side apply (field manager `ephemera`), after `${EPHEMERA_…}`
//!   variables are substituted into their parsed string values (never
//!   into the YAML text, so a branch name cannot add YAML); then it waits
//!   until every Deployment among them is available.
//! - Destroy deletes the namespace, and Kubernetes garbage-collects
//!   everything in it. It is done only once the namespace is gone (a GET
//!   answers 404); a namespace still terminating is reported as under way,
//!   not as a failure.
//! - Stop scales the namespace's Deployments and StatefulSets to zero,
//!   remembering their replicas in an annotation; start scales them back
//!   and waits as provision does (see [`sleep`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ephemera_application::ports::{
    ProvisionFailure, ProvisionRequest, Provisioned, Provisioner, Stopped, Teardown,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind, ObjectMeta};
use kube::{Client, Config};
use serde::Deserialize;

mod isolation;
mod sleep;

use sleep::Direction;

pub use isolation::{
    ContainerLimits, DEFAULT_EGRESS_DENY, DEFAULT_INGRESS_NAMESPACES, DEFAULT_LIMIT_RANGE,
    DEFAULT_RESOURCE_QUOTA, Isolation, NetworkIsolation, PodSecurityLevel, Quantities, parse_cidrs,
    parse_namespaces,
};

const FIELD_MANAGER: &str = "ephemera";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const INSTANCE: &str = "ephemera.dev/instance";

/// `EPHEMERA_INSTANCE`: names this ephemera among others sharing a cluster
/// (staging and production, say). Every namespace it makes carries it as a
/// label, and unless it is the default its namespaces are prefixed with it
/// (`staging-pr-7-web-…`), so instances never touch each other's previews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance(String);

impl Instance {
    pub const DEFAULT: &'static str = "ephemera";

    /// A DNS label of at most 20 characters (it becomes a name prefix).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let sample = ephemera_domain::Namespace::parse("pr-1-x").map_err(|e| e.reason)?;
        sample.prefixed(raw).map_err(|e| e.reason)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    /// The Kubernetes namespace of an environment's namespace.
    fn namespace_for(
        &self,
        namespace: &ephemera_domain::Namespace,
    ) -> Result<ephemera_domain::Namespace, String> {
        if self.is_default() {
            return Ok(namespace.clone());
        }
        namespace.prefixed(&self.0).map_err(|e| e.reason)
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

/// Whose a namespace is, by its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Made by this instance.
    Ours,
    /// Made by ephemera before instances existed: `managed-by=ephemera`
    /// without an instance label. Adopted only by the default instance
    /// (whose names it shares), which adds its label.
    Unlabelled,
    /// Anyone else's, another instance's included: never touched.
    Foreign,
}

fn ownership(namespace: &Namespace, instance: &Instance) -> Ownership {
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    let managed = labels.get(MANAGED_BY).map(String::as_str) == Some("ephemera");
    match labels.get(INSTANCE) {
        Some(i) if managed && i == instance.as_str() => Ownership::Ours,
        None if managed && instance.is_default() => Ownership::Unlabelled,
        _ => Ownership::Foreign,
    }
}

fn foreign(name: &str, instance: &Instance) -> String {
    format!(
        "namespace {name} exists but is not labelled {MANAGED_BY}=ephemera, \
         {INSTANCE}={instance}; ephemera adopts and deletes only namespaces this instance \
         created, so it leaves it alone (rename or remove it, or check EPHEMERA_INSTANCE)",
        instance = instance.as_str()
    )
}

#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// `EPHEMERA_K8S_MANIFESTS_DIR`: `*.yaml`, `*.yml` and `*.json` files,
    /// applied in file-name order; namespaced resources only.
    pub manifests_dir: PathBuf,
    /// `EPHEMERA_K8S_READY_TIMEOUT`: how long Deployments may take to
    /// become available.
    pub ready_timeout: Duration,
    /// How often availability is checked.
    pub poll: Duration,
    /// How soon a terminating namespace is looked at again.
    pub terminating_recheck: Duration,
    /// `EPHEMERA_INSTANCE`.
    pub instance: Instance,
    /// What fences each namespace in.
    pub isolation: Isolation,
}

#[derive(Clone)]
pub struct KubernetesProvisioner {
    client: Client,
    config: KubernetesConfig,
}

impl std::fmt::Debug for KubernetesProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvisioner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A manifest as read from the folder, before it is applied.
#[derive(Debug, Clone)]
struct Manifest {
    gvk: GroupVersionKind,
    name: String,
    object: DynamicObject,
}

impl KubernetesProvisioner {
    /// Connects the way kubectl does: in-cluster service account when
    /// running in a pod, otherwise `KUBECONFIG` / `~/.kube/config`.
    pub async fn connect(config: KubernetesConfig) -> Result<Self, String> {
        let client = Client::try_default()
            .await
            .map_err(|e| format!("cannot reach Kubernetes (in-cluster or KUBECONFIG): {e}"))?;
        Ok(Self { client, config })
    }

    /// Talks to the API server at `url` without credentials (tests and
    /// `kubectl proxy`).
    pub fn with_server(url: &str, config: KubernetesConfig) -> Result<Self, String> {
        let uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let client = Client::try_from(Config::new(uri)).map_err(|e| e.to_string())?;
        Ok(Self { client, config })
    }

    fn manifests(
        &self,
        request: &ProvisionRequest,
        namespace: &str,
    ) -> Result<Vec<Manifest>, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.config.manifests_dir)
            .map_err(|e| format!("reading {}: {e}", self.config.manifests_dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .collect();
        files.sort();
        let vars = variables(request, namespace);
        let mut manifests = Vec::new();
        for file in files {
            manifests.extend(read_manifests(&file, &vars)?);
        }
        Ok(manifests)
    }

    /// Creates the namespace, or adopts it when this instance's labels say
    /// it made it (refreshing them); refuses anyone else's.
    async fn ensure_namespace(
        &self,
        request: &ProvisionRequest,
        name: &str,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let labels = self.labels(request);
        let existing = namespaces
            .get_opt(name)
            .await
            .map_err(|e| format!("reading namespace {name}: {e}"))?;
        let Some(existing) = existing else {
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    labels: Some(labels),
                    ..Default::default()
                },
                ..Default::default()
            };
            // A create, not an apply: if someone else made the namespace
            // since the GET, it fails instead of taking it over.
            return match namespaces.create(&PostParams::default(), &namespace).await {
                Ok(_) => {
                    log.push(format!("namespace {name} created"));
                    Ok(())
                }
                Err(e) => Err(format!("creating namespace {name}: {e}")),
            };
        };
        let adopted = match ownership(&existing, &self.config.instance) {
            Ownership::Foreign => return Err(foreign(name, &self.config.instance)),
            Ownership::Unlabelled => format!(
                "namespace {name} (made before EPHEMERA_INSTANCE existed) labelled for instance {}",
                self.config.instance.as_str()
            ),
            Ownership::Ours => format!("namespace {name} already exists"),
        };
        if is_terminating(&existing) {
            return Err(format!(
                "namespace {name} is still being deleted; a later attempt creates it again"
            ));
        }
        // Applied each time, so label changes (a new Pod Security level)
        // reach namespaces made earlier.
        let patch = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        });
        namespaces
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|e| format!("labelling namespace {name}: {e}"))?;
        log.push(adopted);
        Ok(())
    }

    fn labels(&self, request: &ProvisionRequest) -> BTreeMap<String, String> {
        let mut labels = labels(request);
        labels.insert(
            INSTANCE.to_owned(),
            self.config.instance.as_str().to_owned(),
        );
        labels.extend(self.config.isolation.namespace_labels());
        labels
    }

    fn target(&self, request: &ProvisionRequest) -> Result<String, ProvisionFailure> {
        self.config
            .instance
            .namespace_for(&request.namespace)
            .map(|ns| ns.as_str().to_owned())
            .map_err(|e| failure(e, Vec::new()))
    }

    async fn apply(&self, namespace: &str, manifest: &Manifest) -> Result<(), String> {
        let resource = ApiResource::from_gvk(&manifest.gvk);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&manifest.name, &params, &Patch::Apply(&manifest.object))
            .await
            .map_err(|e| format!("applying {} {}: {e}", manifest.gvk.kind, manifest.name))?;
        Ok(())
    }

    /// The Kubernetes name of the PR's namespace for stop and start, and
    /// whether it exists; refused when it is not this instance's or is
    /// being deleted.
    async fn sleeper(
        &self,
        request: &ProvisionRequest,
    ) -> Result<(String, bool), ProvisionFailure> {
        let name = self.target(request)?;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let refused = |message: String| failure(message, Vec::new());
        let existing = namespaces
            .get_opt(&name)
            .await
            .map_err(|e| refused(format!("reading namespace {name}: {e}")))?;
        let Some(namespace) = existing else {
            return Ok((name, false));
        };
        if ownership(&namespace, &self.config.instance) == Ownership::Foreign {
            return Err(refused(foreign(&name, &self.config.instance)));
        }
        if is_terminating(&namespace) {
            return Err(refused(format!("namespace {name} is being deleted")));
        }
        Ok((name, true))
    }

    /// Waits until every named Deployment has all its replicas available.
    async fn wait_available(
        &self,
        namespace: &str,
        names: &[String],
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + self.config.ready_timeout;
        for name in names {
            loop {
                let deployment = api
                    .get(name)
                    .await
                    .map_err(|e| format!("reading Deployment {name}: {e}"))?;
                if is_available(&deployment) {
                    log.push(format!("Deployment {name} available"));
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "Deployment {name} not available after {}s",
                        self.config.ready_timeout.as_secs()
                    ));
                }
                tokio::time::sleep(self.config.poll).await;
            }
        }
        Ok(())
    }
}

fn is_terminating(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

/// Ready when the controller saw the newest spec and every wanted replica
/// is updated and available.
fn is_available(deployment: &Deployment) -> bool {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return false;
    };
    let observed =
        status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
    observed
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.available_replicas.unwrap_or(0) >= wanted
}

fn label_value(raw: &str) -> String {
    let mut v: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '.'
            }
        })
        .take(63)
        .collect();
    while v.ends_with(['-', '_', '.']) {
        v.pop();
    }
    v
}

fn labels(request: &ProvisionRequest) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_owned(), "ephemera".to_owned()),
        (
            "ephemera.dev/repository".to_owned(),
            label_value(request.repository.as_str()),
        ),
        ("ephemera.dev/pr".to_owned(), request.pr_number.to_string()),
        (
            "ephemera.dev/environment-id".to_owned(),
            request.environment_id.to_string(),
        ),
    ]);
    if let Some(id) = request.installation_id {
        labels.insert("ephemera.dev/installation".to_owned(), id.to_string());
    }
    labels
}

/// What `${NAME}` in a manifest stands for: the repository's variables
/// (`env` in .github/ephemera.yml), then ephemera's own, which win.
fn variables(request: &ProvisionRequest, namespace: &str) -> Vec<(String, String)> {
    let own: Vec<(&str, String)> = vec![
        ("EPHEMERA_NAMESPACE", namespace.to_owned()),
        ("EPHEMERA_REPOSITORY", request.repository.to_string()),
        ("EPHEMERA_PR_NUMBER", request.pr_number.to_string()),
        ("EPHEMERA_COMMIT_SHA", request.commit_sha.to_string()),
        ("EPHEMERA_SHORT_SHA", request.commit_sha.short().to_owned()),
        ("EPHEMERA_BRANCH", request.branch.clone()),
        ("EPHEMERA_ENVIRONMENT_URL", request.preview_url.clone()),
        (
            "EPHEMERA_HOST",
            request
                .preview_url
                .split("://")
                .nth(1)
                .unwrap_or_default()
                .split(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
    ];
    request
        .variables
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .chain(
            own.into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        )
        .collect()
}

/// Every string value of `value` (not the keys), substituted. A value stays
/// one string whatever the variables hold.
fn substitute_values<N: AsRef<str>>(value: &mut serde_yaml_ng::Value, vars: &[(N, String)]) {
    match value {
        serde_yaml_ng::Value::String(text) => *text = substitute(text, vars),
        serde_yaml_ng::Value::Sequence(items) => {
            for item in items {
                substitute_values(item, vars);
            }
        }
        serde_yaml_ng::Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                substitute_values(item, vars);
            }
        }
        serde_yaml_ng::Value::Tagged(tagged) => substitute_values(&mut tagged.value, vars),
        serde_yaml_ng::Value::Null
        | serde_yaml_ng::Value::Bool(_)
        | serde_yaml_ng::Value::Number(_) => {}
    }
}

/// `${NAME}` replaced for every known variable; unknown ones stay as they
/// are (they may be meant for something else).
fn substitute<N: AsRef<str>>(text: &str, vars: &[(N, String)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{}}}", name.as_ref()), value);
    }
    out
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<HeadMeta>,
}

#[derive(Deserialize)]
struct HeadMeta {
    name: Option<String>,
}

fn read_manifests(file: &Path, vars: &[(String, String)]) -> Result<Vec<Manifest>, String> {
    let where_ = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("reading {where_}: {e}"))?;
    let mut manifests = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let mut value =
            serde_yaml_ng::Value::deserialize(document).map_err(|e| format!("{where_}: {e}"))?;
        if value.is_null() {
            continue;
        }
        substitute_values(&mut value, vars);
        let json = serde_json::to_value(&value).map_err(|e| format!("{where_}: {e}"))?;
        manifests.push(to_manifest(json).map_err(|e| format!("{where_}: {e}"))?);
    }
    Ok(manifests)
}

fn to_manifest(json: serde_json::Value) -> Result<Manifest, String> {
    let head: Head = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
    let (Some(api_version), Some(kind), Some(name)) = (
        head.api_version,
        head.kind,
        head.metadata.and_then(|m| m.name),
    ) else {
        return Err("every manifest needs apiVersion, kind and metadata.name".to_owned());
    };
    if kind == "Namespace" {
        return Err(format!(
            "{name} is a Namespace; ephemera creates the PR's namespace itself"
        ));
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let mut object: DynamicObject = serde_json::from_value(json).map_err(|e| e.to_string())?;
    // Everything lands in the PR's namespace, whatever the file says.
    object.metadata.namespace = None;
    Ok(Manifest { gvk, name, object })
}

fn failure(message: String, log: Vec<String>) -> ProvisionFailure {
    ProvisionFailure {
        message,
        logs: log.join("\n"),
    }
}

#[async_trait]
impl Provisioner for KubernetesProvisioner {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn provision(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        let mut log = Vec::new();
        let target = self.target(request)?;
        let namespace = target.as_str();
        let manifests = self
            .manifests(request, namespace)
            .map_err(|e| failure(e, log.clone()))?;
        if let Err(e) = self.ensure_namespace(request, namespace, &mut log).await {
            return Err(failure(e, log));
        }
        // The fence goes up before anything of the PR's runs.
        for object in self.config.isolation.objects() {
            let applied = match to_manifest(object) {
                Ok(fence) => self.apply(namespace, &fence).await.map(|()| fence),
                Err(e) => Err(e),
            };
            match applied {
                Ok(fence) => log.push(format!("applied {} {}", fence.gvk.kind, fence.name)),
                Err(e) => return Err(failure(e, log)),
            }
        }
        let mut deployments = Vec::new();
        for manifest in &manifests {
            if let Err(e) = self.apply(namespace, manifest).await {
                return Err(failure(e, log));
            }
            log.push(format!("applied {} {}", manifest.gvk.kind, manifest.name));
            if manifest.gvk.group == "apps" && manifest.gvk.kind == "Deployment" {
                deployments.push(manifest.name.clone());
            }
        }
        if let Err(e) = self.wait_available(namespace, &deployments, &mut log).await {
            return Err(failure(e, log));
        }
        Ok(Provisioned {
            url: request.preview_url.clone(),
            logs: log.join("\n"),
        })
    }

    async fn stop(&self, request: &ProvisionRequest) -> Result<Stopped, ProvisionFailure> {
        let (namespace, exists) = self.sleeper(request).await?;
        if !exists {
            // Nothing runs, so nothing to stop; a start says it is gone.
            return Ok(Stopped {
                logs: format!("namespace {namespace} does not exist; nothing to stop"),
            });
        }
        let mut log = Vec::new();
        if let Err(e) = self.scale(&namespace, Direction::Stop, &mut log).await {
            return Err(failure(e, log));
        }
        Ok(Stopped {
            logs: log.join("\n"),
        })
    }

    async fn start(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure> {
        let (namespace, exists) = self.sleeper(request).await?;
        if !exists {
            return Err(failure(
                format!(
                    "namespace {namespace} does not exist, so there is nothing to wake; \
                     provisioning the preview again creates it"
                ),
                Vec::new(),
            ));
        }
        let mut log = Vec::new();
        let woken = self.scale(&namespace, Direction::Start, &mut log).await;
        let waited = match woken {
            Ok(deployments) => {
                self.wait_available(&namespace, &deployments, &mut log)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = waited {
            return Err(failure(e, log));
        }
        Ok(Provisioned {
            url: request.preview_url.clone(),
            logs: log.join("\n"),
        })
    }

    async fn destroy(&self, request: &ProvisionRequest) -> Result<Teardown, ProvisionFailure> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let target = self.target(request)?;
        let name = target.as_str();
        let in_progress = |logs: String| Teardown::InProgress {
            logs,
            recheck: self.config.terminating_recheck,
        };
        let existing = namespaces
            .get_opt(name)
            .await
            .map_err(|e| failure(format!("reading namespace {name}: {e}"), Vec::new()))?;
        let Some(existing) = existing else {
            return Ok(Teardown::Gone {
                logs: format!("namespace {name} is gone"),
            });
        };
        if ownership(&existing, &self.config.instance) == Ownership::Foreign {
            return Err(failure(foreign(name, &self.config.instance), Vec::new()));
        }
        if is_terminating(&existing) {
            return Ok(in_progress(format!(
                "namespace {name} is still terminating"
            )));
        }
        match namespaces.delete(name, &DeleteParams::background()).await {
            // Deletion has started; it is done when a GET answers 404.
            Ok(_) => Ok(in_progress(format!("namespace {name} deletion requested"))),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(Teardown::Gone {
                logs: format!("namespace {name} is gone"),
            }),
            Err(e) => Err(failure(
                format!("deleting namespace {name}: {e}"),
                Vec::new(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted_and_unknown_ones_left() {
        let vars = vec![("EPHEMERA_NAMESPACE", "pr-1-web-abc".to_owned())];
        assert_eq!(
            substitute("ns: ${EPHEMERA_NAMESPACE} other: ${HOME}", &vars),
            "ns: pr-1-web-abc other: ${HOME}"
        );
    }

    #[test]
    fn only_string_values_are_substituted() {
        let vars = vec![("EPHEMERA_BRANCH", "a: b\n- c".to_owned())];
        let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "k: ${EPHEMERA_BRANCH}\nn: 3\nl: [x, '${EPHEMERA_BRANCH}']\n${EPHEMERA_BRANCH}: key",
        )
        .unwrap();
        substitute_values(&mut value, &vars);
        let expected: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "k: \"a: b\\n- c\"\nn: 3\nl: [x, \"a: b\\n- c\"]\n${EPHEMERA_BRANCH}: key",
        )
        .unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("Octo/Hello-World"), "Octo.Hello-World");
        assert_eq!(label_value("a/b-"), "a.b");
    }
}
