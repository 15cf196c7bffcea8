//! Sleeping previews: every Deployment and StatefulSet of the PR's
//! namespace scaled to zero, the replicas it had kept in an annotation on
//! it, and scaled back from there on waking. The namespace, its volumes,
//! Services and Ingresses stay, so the data and the URL survive.
//!
//! Both directions are merge patches of the object itself (not its scale
//! subresource), so the replicas and the remembered count change together.
//! A second stop finds the workload at zero with its count remembered and
//! leaves it alone; a start leaves a workload that already runs alone.

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::{FIELD_MANAGER, KubernetesProvisioner};

/// Where the replicas a workload had before it was put to sleep are kept.
pub(super) const REPLICAS_BEFORE_SLEEP: &str = "ephemera.dev/replicas-before-sleep";

/// What runs in a namespace and can be scaled (group `apps/v1`).
const WORKLOADS: [&str; 2] = ["Deployment", "StatefulSet"];

/// A workload as listed, with what sleeping needs of it.
struct Workload {
    kind: &'static str,
    name: String,
    /// `spec.replicas` (Kubernetes defaults it to 1).
    replicas: i64,
    /// The annotation's text, if it is there.
    remembered: Option<String>,
}

impl Workload {
    fn from_object(kind: &'static str, object: &DynamicObject) -> Option<Self> {
        Some(Self {
            kind,
            name: object.metadata.name.clone()?,
            replicas: object.data["spec"]["replicas"].as_i64().unwrap_or(1),
            remembered: object
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REPLICAS_BEFORE_SLEEP))
                .cloned(),
        })
    }

    /// The merge patch that puts it to sleep and what to log, or only what
    /// to log when it already sleeps (a second stop must not overwrite the
    /// count with 0).
    fn stop(&self) -> (Option<Value>, String) {
        let Self { kind, name, .. } = self;
        match &self.remembered {
            Some(count) if self.replicas == 0 => (
                None,
                format!(
                    "{kind} {name} already asleep ({} remembered)",
                    replicas(count)
                ),
            ),
            _ => (
                Some(json!({
                    "metadata": {"annotations": {REPLICAS_BEFORE_SLEEP: self.replicas.to_string()}},
                    "spec": {"replicas": 0},
                })),
                format!(
                    "{kind} {name} scaled to 0 ({} remembered)",
                    replicas(self.replicas)
                ),
            ),
        }
    }

    /// The merge patch that wakes it and what to log, or only what to log
    /// when it already runs (then its replicas are newer than anything
    /// remembered).
    fn start(&self) -> (Option<Value>, String) {
        let Self { kind, name, .. } = self;
        if self.replicas > 0 {
            return (
                None,
                format!(
                    "{kind} {name} already running ({})",
                    replicas(self.replicas)
                ),
            );
        }
        let remembered = self
            .remembered
            .as_deref()
            .and_then(|count| count.trim().parse::<u32>().ok());
        let (replicas, note) = match (remembered, &self.remembered) {
            (Some(count), _) => (count, String::new()),
            (None, None) => (1, " (no replicas remembered)".to_owned()),
            (None, Some(text)) => (
                1,
                format!(
                    " ({REPLICAS_BEFORE_SLEEP} `{}` is not a count)",
                    text.escape_debug()
                ),
            ),
        };
        (
            Some(json!({
                // null removes the annotation (RFC 7386).
                "metadata": {"annotations": {REPLICAS_BEFORE_SLEEP: null}},
                "spec": {"replicas": replicas},
            })),
            format!("{kind} {name} scaled back to {replicas}{note}"),
        )
    }
}

/// "1 replica", "2 replicas".
fn replicas(count: impl std::fmt::Display) -> String {
    let count = count.to_string();
    let noun = if count == "1" { "replica" } else { "replicas" };
    format!("{count} {noun}")
}

/// Which way [`KubernetesProvisioner::scale`] goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Direction {
    Stop,
    Start,
}

impl KubernetesProvisioner {
    fn workloads(&self, namespace: &str, kind: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("apps", "v1", kind);
        Api::namespaced_with(self.client.clone(), namespace, &ApiResource::from_gvk(&gvk))
    }

    /// Scales every Deployment and StatefulSet of `namespace` down or back
    /// up; answers the names of its Deployments (to wait for on waking).
    pub(super) async fn scale(
        &self,
        namespace: &str,
        direction: Direction,
        log: &mut Vec<String>,
    ) -> Result<Vec<String>, String> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let mut deployments = Vec::new();
        for kind in WORKLOADS {
            let api = self.workloads(namespace, kind);
            let listed = api
                .list(&ListParams::default())
                .await
                .map_err(|e| format!("listing the {kind}s of namespace {namespace}: {e}"))?;
            for workload in listed
                .items
                .iter()
                .filter_map(|o| Workload::from_object(kind, o))
            {
                let (patch, done) = match direction {
                    Direction::Stop => workload.stop(),
                    Direction::Start => workload.start(),
                };
                if let Some(patch) = patch {
                    api.patch(&workload.name, &params, &Patch::Merge(&patch))
                        .await
                        .map_err(|e| format!("scaling {kind} {}: {e}", workload.name))?;
                }
                log.push(done);
                if kind == "Deployment" {
                    deployments.push(workload.name);
                }
            }
        }
        Ok(deployments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(replicas: i64, remembered: Option<&str>) -> Workload {
        Workload {
            kind: "Deployment",
            name: "web".to_owned(),
            replicas,
            remembered: remembered.map(str::to_owned),
        }
    }

    #[test]
    fn stop_remembers_the_current_replicas_unless_already_asleep() {
        let patch = |w: Workload| w.stop().0;
        let asleep = |count: &str| json!({"metadata": {"annotations": {REPLICAS_BEFORE_SLEEP: count}}, "spec": {"replicas": 0}});
        assert_eq!(patch(workload(2, None)), Some(asleep("2")));
        // Running again since (a push re-applied the manifests): the
        // current count wins over the stale one.
        assert_eq!(patch(workload(3, Some("2"))), Some(asleep("3")));
        // At zero on purpose: woken to zero.
        assert_eq!(patch(workload(0, None)), Some(asleep("0")));
        assert_eq!(patch(workload(0, Some("2"))), None);
    }

    #[test]
    fn start_restores_the_remembered_replicas_or_one() {
        let scaled = |w: Workload| w.start().0.map(|p| p["spec"]["replicas"].clone());
        assert_eq!(scaled(workload(0, Some("2"))), Some(json!(2)));
        assert_eq!(scaled(workload(0, Some("0"))), Some(json!(0)));
        assert_eq!(scaled(workload(0, None)), Some(json!(1)));
        assert_eq!(scaled(workload(0, Some("-2"))), Some(json!(1)));
        assert_eq!(scaled(workload(3, Some("2"))), None);
        assert_eq!(
            workload(0, Some("lots")).start().1,
            "Deployment web scaled back to 1 (ephemera.dev/replicas-before-sleep `lots` is not a count)"
        );
    }
}
