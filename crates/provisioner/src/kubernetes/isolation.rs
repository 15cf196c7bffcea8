//! What ephemera puts into every PR namespace before the operator's
//! manifests, to contain the PR's code: Pod Security Admission labels, a
//! ResourceQuota, a LimitRange and a NetworkPolicy. Each is on by default
//! and can be tuned or turned off (docs/configuration.md).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

/// Names of the objects ephemera applies into each namespace.
pub const QUOTA_NAME: &str = "ephemera-quota";
pub const LIMITS_NAME: &str = "ephemera-limits";
pub const NETWORK_POLICY_NAME: &str = "ephemera-isolation";

pub const DEFAULT_RESOURCE_QUOTA: &str = "requests.cpu=2,requests.memory=4Gi,limits.cpu=4,\
     limits.memory=8Gi,pods=20,services.loadbalancers=0,services.nodeports=0";
pub const DEFAULT_LIMIT_RANGE: &str =
    "default.cpu=500m,default.memory=512Mi,defaultRequest.cpu=100m,defaultRequest.memory=128Mi";
pub const DEFAULT_INGRESS_NAMESPACES: &str = "ingress-nginx";
/// Private, shared and link-local ranges: other namespaces' pods and
/// services, nodes, and the cloud metadata address (169.254.169.254,
/// fd00:ec2::254) all live here.
pub const DEFAULT_EGRESS_DENY: &str = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,\
     169.254.0.0/16,fc00::/7,fe80::/10";

/// How each PR namespace is fenced in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// `EPHEMERA_K8S_POD_SECURITY`; `None` (`off`) sets no labels.
    pub pod_security: Option<PodSecurityLevel>,
    /// `EPHEMERA_K8S_RESOURCE_QUOTA`: the ResourceQuota's `spec.hard`.
    pub resource_quota: Option<Quantities>,
    /// `EPHEMERA_K8S_LIMIT_RANGE`: per-container defaults and bounds.
    pub limit_range: Option<ContainerLimits>,
    /// `EPHEMERA_K8S_NETWORK_POLICY` and its two lists.
    pub network_policy: Option<NetworkIsolation>,
}

impl Default for Isolation {
    /// Everything on, with the documented defaults.
    fn default() -> Self {
        Self {
            pod_security: Some(PodSecurityLevel::Restricted),
            resource_quota: Some(Quantities::parse(DEFAULT_RESOURCE_QUOTA).unwrap_or_default()),
            limit_range: Some(ContainerLimits::parse(DEFAULT_LIMIT_RANGE).unwrap_or_default()),
            network_policy: Some(NetworkIsolation {
                ingress_namespaces: split(DEFAULT_INGRESS_NAMESPACES),
                egress_deny: parse_cidrs(DEFAULT_EGRESS_DENY).unwrap_or_default(),
            }),
        }
    }
}

impl Isolation {
    /// Nothing besides the operator's manifests.
    pub fn off() -> Self {
        Self {
            pod_security: None,
            resource_quota: None,
            limit_range: None,
            network_policy: None,
        }
    }

    /// Labels the namespace carries for Pod Security Admission.
    pub fn namespace_labels(&self) -> BTreeMap<String, String> {
        let Some(level) = self.pod_security else {
            return BTreeMap::new();
        };
        let mut labels = BTreeMap::new();
        for mode in ["enforce", "audit", "warn"] {
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                level.as_str().to_owned(),
            );
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}-version"),
                "latest".to_owned(),
            );
        }
        labels
    }

    /// The objects to apply into the namespace, in order.
    pub fn objects(&self) -> Vec<Value> {
        let metadata = |name: &str| json!({"name": name, "labels": {"app.kubernetes.io/managed-by": "ephemera"}});
        let mut objects = Vec::new();
        if let Some(hard) = &self.resource_quota {
            objects.push(json!({
                "apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": metadata(QUOTA_NAME),
                "spec": {"hard": hard.0},
            }));
        }
        if let Some(limits) = &self.limit_range {
            let mut item = serde_json::Map::new();
            item.insert("type".to_owned(), json!("Container"));
            for (field, values) in &limits.0 {
                item.insert(field.clone(), json!(values));
            }
            objects.push(json!({
                "apiVersion": "v1", "kind": "LimitRange",
                "metadata": metadata(LIMITS_NAME),
                "spec": {"limits": [item]},
            }));
        }
        if let Some(network) = &self.network_policy {
            objects.push(network.policy(metadata(NETWORK_POLICY_NAME)));
        }
        objects
    }
}

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSecurityLevel {
    Privileged,
    Baseline,
    Restricted,
}

impl PodSecurityLevel {
    /// `restricted`, `baseline`, `privileged`, or `off` (`None`).
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        match raw.trim() {
            "restricted" => Ok(Some(Self::Restricted)),
            "baseline" => Ok(Some(Self::Baseline)),
            "privileged" => Ok(Some(Self::Privileged)),
            "off" => Ok(None),
            other => Err(format!(
                "`{other}` is not one of restricted, baseline, privileged, off"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// `name=quantity` pairs, e.g. `requests.cpu=2,pods=20`. Quantities are
/// checked by the API server, which names a bad one in the deployment log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quantities(BTreeMap<String, String>);

impl Quantities {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut pairs = BTreeMap::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!("`{item}` is not name=quantity"));
            };
            let (name, value) = (name.trim(), value.trim());
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/' | '_'));
            let value_ok =
                !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
            if !name_ok || !value_ok {
                return Err(format!("`{item}` is not name=quantity"));
            }
            pairs.insert(name.to_owned(), value.to_owned());
        }
        if pairs.is_empty() {
            return Err("no name=quantity pairs (use `off` to turn it off)".to_owned());
        }
        Ok(Self(pairs))
    }
}

/// A LimitRange's Container item: `<field>.<resource>=<quantity>` with
/// field one of `default`, `defaultRequest`, `max`, `min`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLimits(BTreeMap<String, BTreeMap<String, String>>);

impl ContainerLimits {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut fields: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (key, value) in Quantities::parse(raw)?.0 {
            let Some((field, resource)) = key.split_once('.') else {
                return Err(format!(
                    "`{key}` is not <field>.<resource>, e.g. default.cpu"
                ));
            };
            if !matches!(field, "default" | "defaultRequest" | "max" | "min") {
                return Err(format!(
                    "`{key}`: `{field}` is not one of default, defaultRequest, max, min"
                ));
            }
            fields
                .entry(field.to_owned())
                .or_default()
                .insert(resource.to_owned(), value);
        }
        Ok(Self(fields))
    }
}

/// The NetworkPolicy: pods take traffic only from their own namespace and
/// the ingress controller's; they reach their own namespace, DNS in
/// `kube-system`, and addresses outside `egress_deny` (the internet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkIsolation {
    /// `EPHEMERA_K8S_INGRESS_NAMESPACES`.
    pub ingress_namespaces: Vec<String>,
    /// `EPHEMERA_K8S_EGRESS_DENY`.
    pub egress_deny: Vec<Cidr>,
}

impl NetworkIsolation {
    fn policy(&self, metadata: Value) -> Value {
        let mut ingress = vec![json!({"from": [{"podSelector": {}}]})];
        if !self.ingress_namespaces.is_empty() {
            ingress.push(
                json!({"from": [{"namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": self.ingress_namespaces,
                }]}}]}),
            );
        }
        let mut egress = vec![
            json!({"to": [{"podSelector": {}}]}),
            json!({
                "to": [{"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": "kube-system"
                }}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }),
        ];
        for (all, v4) in [("0.0.0.0/0", true), ("::/0", false)] {
            let except: Vec<&str> = self
                .egress_deny
                .iter()
                .filter(|c| c.is_v4 == v4)
                .map(|c| c.text.as_str())
                .collect();
            let mut block = json!({"cidr": all});
            if !except.is_empty() {
                block["except"] = json!(except);
            }
            egress.push(json!({"to": [{"ipBlock": block}]}));
        }
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata,
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": ingress,
                "egress": egress,
            },
        })
    }
}

/// An IPv4 or IPv6 block such as `169.254.0.0/16`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    text: String,
    is_v4: bool,
}

/// A comma-separated list of CIDR blocks.
pub fn parse_cidrs(raw: &str) -> Result<Vec<Cidr>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            let bad = || format!("`{c}` is not a CIDR block like 169.254.0.0/16");
            let (address, bits) = c.split_once('/').ok_or_else(bad)?;
            let address: IpAddr = address.parse().map_err(|_| bad())?;
            let bits: u8 = bits.parse().map_err(|_| bad())?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(bad());
            }
            Ok(Cidr {
                text: c.to_owned(),
                is_v4: address.is_ipv4(),
            })
        })
        .collect()
}

/// Namespace names, comma-separated; `none` for none.
pub fn parse_namespaces(raw: &str) -> Result<Vec<String>, String> {
    if raw.trim() == "none" {
        return Ok(Vec::new());
    }
    let names = split(raw);
    for name in &names {
        ephemera_domain::Namespace::parse(name).map_err(|e| e.reason)?;
    }
    Ok(names)
}

fn split(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_parse() {
        let on = Isolation::default();
        assert_eq!(on.resource_quota.as_ref().map(|q| q.0.len()), Some(7));
        assert_eq!(on.limit_range.as_ref().map(|l| l.0.len()), Some(2));
        let network = on.network_policy.as_ref().unwrap();
        assert_eq!(network.ingress_namespaces, ["ingress-nginx"]);
        assert_eq!(network.egress_deny.len(), 7);
        assert_eq!(on.objects().len(), 3);
        assert!(Isolation::off().objects().is_empty());
        assert!(Isolation::off().namespace_labels().is_empty());
    }

    #[test]
    fn pod_security_labels() {
        let labels = Isolation::default().namespace_labels();
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
        assert_eq!(
            labels["pod-security.kubernetes.io/enforce-version"],
            "latest"
        );
        assert_eq!(
            PodSecurityLevel::parse("baseline"),
            Ok(Some(PodSecurityLevel::Baseline))
        );
        assert_eq!(PodSecurityLevel::parse("off"), Ok(None));
        assert!(PodSecurityLevel::parse("strict").is_err());
    }

    #[test]
    fn the_network_policy_fences_the_metadata_address_and_other_namespaces() {
        let policy = Isolation::default().objects().pop().unwrap();
        assert_eq!(policy["kind"], "NetworkPolicy");
        let egress = policy["spec"]["egress"].as_array().unwrap();
        assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "0.0.0.0/0");
        let except = egress[2]["to"][0]["ipBlock"]["except"].as_array().unwrap();
        assert!(except.contains(&json!("169.254.0.0/16")));
        assert!(except.contains(&json!("10.0.0.0/8")));
        assert_eq!(egress[3]["to"][0]["ipBlock"]["cidr"], "::/0");
        assert!(
            egress[3]["to"][0]["ipBlock"]["except"]
                .as_array()
                .unwrap()
                .contains(&json!("fc00::/7"))
        );
        let ingress = policy["spec"]["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 2);
        assert_eq!(
            ingress[1]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(["ingress-nginx"])
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Quantities::parse("pods").is_err());
        assert!(Quantities::parse("pods=2 0").is_err());
        assert!(Quantities::parse("").is_err());
        assert!(ContainerLimits::parse("limit.cpu=1").is_err());
        assert!(ContainerLimits::parse("cpu=1").is_err());
        assert!(parse_cidrs("169.254.169.254").is_err());
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("fd00:ec2::254/128").is_ok());
        assert!(parse_namespaces("Ingress_Nginx").is_err());
        assert_eq!(parse_namespaces("none"), Ok(Vec::new()));
    }
}
