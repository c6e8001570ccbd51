//! Kinds that run pods, and where each keeps its pod spec: the vocabulary every
//! rule about containers, ServiceAccounts or images needs, written once.
//!
//! ```
//! use bouncer_sdk::workload::Workload;
//! use bouncer_sdk::serde_json::json;
//!
//! let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
//! let workload = Workload::of("batch", "CronJob").unwrap();
//! assert!(workload.pod_spec(&cron).is_some());
//! ```

use serde_json::Value;

use crate::{Metadata, Request};

/// A kind that runs pods, by where its pod spec lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A Pod: `spec`.
    Pod,
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job: `spec.template.spec`.
    Templated,
    /// CronJob: `spec.jobTemplate.spec.template.spec`.
    CronJob,
}

/// Every built-in kind that runs pods, as (API group, kind).
pub const KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
];

impl Workload {
    /// The workload `kind` in `group` is, or `None` when it runs no pods.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        match (group, kind) {
            ("", "Pod") => Some(Self::Pod),
            ("batch", "CronJob") => Some(Self::CronJob),
            _ if KINDS.contains(&(group, kind)) => Some(Self::Templated),
            _ => None,
        }
    }

    /// The workload the request's object is, or `None`.
    pub fn of_request(request: &Request) -> Option<Self> {
        Self::of(&request.kind.group, &request.kind.kind)
    }

    /// The JSON pointer to the pod spec in an object of this kind.
    pub fn pod_spec_pointer(self) -> &'static str {
        match self {
            Self::Pod => "/spec",
            Self::Templated => "/spec/template/spec",
            Self::CronJob => "/spec/jobTemplate/spec/template/spec",
        }
    }

    /// The pod spec inside `object`, or `None` when it has none.
    pub fn pod_spec(self, object: &Value) -> Option<&Value> {
        object.pointer(self.pod_spec_pointer())
    }
}

impl Metadata {
    /// Declares that the policy governs every kind in [`KINDS`].
    pub fn governs_workloads(self) -> Self {
        self.governs(&[""], &["Pod"])
            .governs(
                &["apps"],
                &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
            )
            .governs(&["batch"], &["Job", "CronJob"])
    }
}

impl Request {
    /// Whether one of Kubernetes' own controllers made this object (a Pod of a
    /// ReplicaSet, a ReplicaSet of a Deployment, a Job of a CronJob): a
    /// `kube-system` ServiceAccount wrote it and it has a controller owner. Its
    /// owner was judged already; judging it again would refuse the pods of an
    /// owner whose UPDATE was allowed because its problem was already there,
    /// stalling a rollout halfway.
    pub fn made_by_builtin_controller(&self) -> crate::Result<bool> {
        let builtin = self
            .user_info
            .username
            .starts_with("system:serviceaccount:kube-system:");
        Ok(builtin && self.has_controller_owner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_kind_has_its_pod_spec_where_kubernetes_keeps_it() {
        assert_eq!(Workload::of("", "Pod"), Some(Workload::Pod));
        assert_eq!(
            Workload::of("apps", "StatefulSet"),
            Some(Workload::Templated)
        );
        assert_eq!(Workload::of("batch", "Job"), Some(Workload::Templated));
        assert_eq!(Workload::of("batch", "CronJob"), Some(Workload::CronJob));
        assert_eq!(Workload::of("", "Service"), None);
        assert_eq!(Workload::of("extensions", "Deployment"), None);
        let deployment = serde_json::json!({"spec": {"template": {"spec": {"containers": [1]}}}});
        assert_eq!(
            Workload::Templated.pod_spec(&deployment),
            Some(&serde_json::json!({"containers": [1]}))
        );
        assert_eq!(Workload::Pod.pod_spec(&serde_json::json!({})), None);
    }
}
