//! deny-latest-tag: every container image is pinned, by digest (`@sha256:…`) or
//! by a tag other than `latest`. An image without a tag means `latest`.

use bouncer_sdk::serde_json::Value;
use bouncer_sdk::workload::Workload;
use bouncer_sdk::{
    Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

/// Settings, from the policy's configuration entry.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Registries whose images may float (such as an internal mirror that re-tags on promotion).
    pub exempt_registries: Vec<String>,
    /// Also refuse tags that name no version, such as `stable` or `main` (only digits-and-dots
    /// tags like `1.27` or `v2.3.1` pass).
    pub require_version_tag: bool,
}

/// The policy.
pub struct DenyLatestTag;

impl Policy for DenyLatestTag {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs_workloads()
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        match settings.exempt_registries.iter().find(|r| r.contains('/')) {
            Some(bad) => Err(format!(
                "exemptRegistries: `{bad}` is not a registry host (such as `registry.internal:5000`)"
            )),
            None => Ok(()),
        }
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        // judge() skips deletes and sub-resources, and on UPDATE refuses only
        // problems the update introduces (old ones become warnings).
        judge(request, |object: &Value| {
            let mut findings = Findings::default();
            let what = format!("{} {}", request.kind.kind, request.object_ref());
            for (container, image) in images(object) {
                if let Some(problem) = check(image, settings) {
                    findings.deny(format!("{what}: {container} image `{image}` {problem}"));
                }
            }
            findings
        })
    }
}

/// Every container image of a Pod or a workload's pod template, with where it is.
fn images(object: &Value) -> Vec<(String, &str)> {
    let group = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map_or("", |(group, _)| group);
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some(pod_spec) = Workload::of(group, kind).and_then(|w| w.pod_spec(object)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in pod_spec[list].as_array().into_iter().flatten() {
            if let Some(image) = container["image"].as_str() {
                let name = container["name"].as_str().unwrap_or("?");
                found.push((format!("container `{name}`"), image));
            }
        }
    }
    found
}

/// Why `image` is not pinned, or `None` when it is.
fn check(image: &str, settings: &Settings) -> Option<String> {
    if image.contains("@sha256:") {
        return None;
    }
    let (registry, rest) = match image.split_once('/') {
        // A registry host has a dot or a port, or is localhost; otherwise it is a Docker Hub path.
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
            (Some(host), rest)
        }
        _ => (None, image),
    };
    if registry.is_some_and(|r| settings.exempt_registries.iter().any(|e| e == r)) {
        return None;
    }
    let tag = rest.rsplit_once(':').map(|(_, tag)| tag);
    match tag {
        None => Some("has no tag, which means `latest`; pin a version or a digest".into()),
        Some("latest") => Some("uses `latest`; pin a version or a digest".into()),
        Some(tag) if settings.require_version_tag && !is_version(tag) => Some(format!(
            "uses tag `{tag}`, which names no version (requireVersionTag); use a tag like `1.27` or a digest"
        )),
        Some(_) => None,
    }
}

/// `1.27`, `v2.3.1`, `1.27.3-alpine`: a version, optionally `v`-prefixed, optionally suffixed.
fn is_version(tag: &str) -> bool {
    let core = tag.strip_prefix('v').unwrap_or(tag);
    let core = core.split(['-', '+']).next().unwrap_or_default();
    !core.is_empty()
        && core
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

export_policy!(DenyLatestTag);
