//! The pod's endpoint in the EndpointSlices of the Services that select it,
//! kept as the EndpointSlice controller keeps them.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{named_port, text};
use crate::cluster::Cluster;

/// The EndpointSlices of the Services that select the pod, kept as the
/// EndpointSlice controller keeps them: one endpoint, this pod.
pub(super) struct Slices {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    slices: Vec<Value>,
    published: Mutex<Option<(bool, bool)>>,
}

impl Slices {
    pub(super) fn of(
        cluster: &Cluster,
        namespace: &str,
        template: &Value,
        container: &Value,
        pod: &str,
        ip: &str,
    ) -> Result<Self, String> {
        let output = cluster.kubectl(&["-n", namespace, "get", "services", "-o", "json"], None);
        let services: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("kubectl get services: {e}"))?;
        let labels = &template["metadata"]["labels"];
        let mut slices = Vec::new();
        for service in services["items"].as_array().into_iter().flatten() {
            let Some(selector) = service["spec"]["selector"].as_object() else {
                continue;
            };
            if selector.is_empty() || selector.iter().any(|(k, v)| labels[k] != *v) {
                continue;
            }
            let service_name = text(&service["metadata"]["name"])?;
            let ports: Vec<Value> = service["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let target = if p["targetPort"].is_null() {
                        &p["port"]
                    } else {
                        &p["targetPort"]
                    };
                    Some(json!({
                        "name": p["name"].as_str().unwrap_or(""),
                        "port": named_port(container, target)?,
                        "protocol": p["protocol"].as_str().unwrap_or("TCP"),
                    }))
                })
                .collect();
            slices.push(json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{service_name}-e2e-kubelet"),
                    "namespace": namespace,
                    "labels": {
                        "kubernetes.io/service-name": service_name,
                        "endpointslice.kubernetes.io/managed-by": "e2e-kubelet.bouncer.dev",
                    },
                },
                "addressType": "IPv4",
                "ports": ports,
                "endpoints": [{
                    "addresses": [ip],
                    "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
                }],
            }));
        }
        if slices.is_empty() {
            return Err("no Service selects the pod's labels".into());
        }
        Ok(Self {
            kubectl: cluster.kubectl_path(),
            kubeconfig: cluster.kubeconfig.clone(),
            slices,
            published: Mutex::new(None),
        })
    }

    /// Runs kubectl, from the prober's thread too.
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let output = crate::cluster::run_with(&self.kubectl, &self.kubeconfig, args, stdin);
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Writes every slice with the endpoint `ready` (and `terminating`).
    pub(super) fn publish(&self, ready: bool, terminating: bool) -> Result<(), String> {
        let mut published = self.published.lock().expect("slices");
        if *published == Some((ready, terminating)) {
            return Ok(());
        }
        for slice in &self.slices {
            let mut slice = slice.clone();
            slice["endpoints"][0]["conditions"] = json!({
                "ready": ready,
                "serving": ready || terminating,
                "terminating": terminating,
            });
            self.kubectl(&["apply", "-f", "-"], Some(&slice.to_string()))?;
        }
        *published = Some((ready, terminating));
        Ok(())
    }

    pub(super) fn remove(&self) {
        for slice in &self.slices {
            let (namespace, name) = (
                slice["metadata"]["namespace"].as_str().unwrap_or(""),
                slice["metadata"]["name"].as_str().unwrap_or(""),
            );
            let _ = self.kubectl(
                &[
                    "-n",
                    namespace,
                    "delete",
                    "endpointslice",
                    name,
                    "--ignore-not-found",
                ],
                None,
            );
        }
    }
}
