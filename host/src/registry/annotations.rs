//! A policy's metadata as manifest annotations: written by `bouncer push`,
//! read by `bouncer inspect oci://…` (and any registry listing) without
//! pulling or running the component.

use std::collections::BTreeMap;

/// Prefix of the annotations that carry a policy's metadata.
const PREFIX: &str = "dev.bouncer.policy.";
const TITLE: &str = "org.opencontainers.image.title";
const VERSION: &str = "org.opencontainers.image.version";
const DESCRIPTION: &str = "org.opencontainers.image.description";

/// What a policy's manifest says about it: OCI's own keys for name, version
/// and description, and bouncer's for what it governs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyAnnotations {
    /// `org.opencontainers.image.title`: the policy's name.
    pub title: Option<String>,
    /// `org.opencontainers.image.version`.
    pub version: Option<String>,
    /// `org.opencontainers.image.description`.
    pub description: Option<String>,
    /// What it governs; `None` when the manifest was not written by `bouncer push`.
    pub governs: Option<Governs>,
    /// Its settings' JSON Schema, as JSON text.
    pub settings_schema: Option<String>,
}

/// What a pushed policy governs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Governs {
    /// `group/version/Kind` or `Kind`; empty means any kind.
    pub kinds: Vec<String>,
    /// Operations; empty means all.
    pub operations: Vec<String>,
    /// Whether it may mutate.
    pub mutating: bool,
    /// Whether it imports WASI.
    pub imports_wasi: bool,
}

impl PolicyAnnotations {
    /// The manifest annotations. No creation time: the same policy pushed
    /// twice keeps its digest.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |key: String, value: Option<&String>| {
            if let Some(value) = value {
                out.insert(key, value.clone());
            }
        };
        put(TITLE.to_owned(), self.title.as_ref());
        put(VERSION.to_owned(), self.version.as_ref());
        put(DESCRIPTION.to_owned(), self.description.as_ref());
        if let Some(g) = &self.governs {
            put(ours("kinds"), Some(&g.kinds.join(",")));
            put(ours("operations"), Some(&g.operations.join(",")));
            put(ours("mutating"), Some(&g.mutating.to_string()));
            put(ours("imports-wasi"), Some(&g.imports_wasi.to_string()));
        }
        put(ours("settings-schema"), self.settings_schema.as_ref());
        out
    }

    /// Reads what `annotations` say; unknown keys are ignored.
    pub fn from_map(annotations: &BTreeMap<String, String>) -> Self {
        let get = |key: &str| annotations.get(key).cloned();
        let list = |key: &str| -> Vec<String> {
            annotations
                .get(&ours(key))
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let flag = |key: &str| annotations.get(&ours(key)).is_some_and(|v| v == "true");
        Self {
            title: get(TITLE),
            version: get(VERSION),
            description: get(DESCRIPTION),
            governs: annotations.contains_key(&ours("kinds")).then(|| Governs {
                kinds: list("kinds"),
                operations: list("operations"),
                mutating: flag("mutating"),
                imports_wasi: flag("imports-wasi"),
            }),
            settings_schema: get(&ours("settings-schema")),
        }
    }
}

fn ours(key: &str) -> String {
    format!("{PREFIX}{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_push_writes_inspect_reads_back() {
        let written = PolicyAnnotations {
            title: Some("max-replicas".into()),
            version: Some("1.2.0".into()),
            description: Some("Caps replicas".into()),
            governs: Some(Governs {
                kinds: vec!["apps/v1/Deployment".into(), "Pod".into()],
                operations: vec!["CREATE".into()],
                mutating: true,
                imports_wasi: false,
            }),
            settings_schema: Some(r#"{"type":"object"}"#.into()),
        };
        let map = written.to_map();
        assert_eq!(map["dev.bouncer.policy.kinds"], "apps/v1/Deployment,Pod");
        assert_eq!(PolicyAnnotations::from_map(&map), written);
    }

    #[test]
    fn a_manifest_not_pushed_by_bouncer_governs_nothing_known() {
        let map = BTreeMap::from([(TITLE.to_owned(), "x".to_owned())]);
        let read = PolicyAnnotations::from_map(&map);
        assert_eq!(read.title.as_deref(), Some("x"));
        assert_eq!(read.governs, None);
    }
}
