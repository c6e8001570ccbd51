//! `gateway-ownership`: the Gateway API's split of duties, enforced.
//!
//! The Gateway API's point is that the platform team owns the entrances
//! (Gateways: addresses, listeners, certificates) and application teams own
//! their routes. Nothing in Kubernetes stops a team from creating its own
//! Gateway, opening one to every namespace, or attaching a route to someone
//! else's hostname; this rule does.

use bouncer_eks::matches_any;
use bouncer_sdk::{
    Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"];

/// Settings of `gateway-ownership`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Namespaces (globs) where Gateways may be created.
    pub platform_namespaces: Vec<String>,
    /// Allow listeners to accept routes from every namespace (`allowedRoutes.namespaces.from: All`).
    pub allow_all_namespaces: bool,
    /// Gateways (`namespace/name` globs) routes may attach to.
    pub allowed_gateways: Vec<String>,
    /// Hostnames routes may claim; no restriction when empty.
    pub allowed_hostnames: Vec<HostnameRule>,
}

/// Hostnames (globs) routes in some namespaces may claim.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HostnameRule {
    /// Namespaces (globs) the rule applies to; all when empty.
    pub namespaces: Vec<String>,
    /// Hostnames (globs) routes there may claim.
    pub hostnames: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            platform_namespaces: vec!["gateway-system".into()],
            allow_all_namespaces: false,
            allowed_gateways: vec!["gateway-system/*".into()],
            allowed_hostnames: Vec::new(),
        }
    }
}

/// The policy.
pub struct GatewayOwnership;

impl Policy for GatewayOwnership {
    type Settings = Settings;

    fn metadata() -> Metadata {
        Metadata::new()
            .governs(
                &["gateway.networking.k8s.io"],
                &["Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"],
            )
            .operations(&[Operation::Create, Operation::Update])
    }

    fn validate_settings(settings: &Settings) -> std::result::Result<(), String> {
        bouncer_eks::check_globs("platformNamespaces", &settings.platform_namespaces)?;
        bouncer_eks::check_globs("allowedGateways", &settings.allowed_gateways)?;
        if let Some(bad) = settings.allowed_gateways.iter().find(|g| !g.contains('/')) {
            return Err(format!("allowedGateways: `{bad}` is not `namespace/name`"));
        }
        for rule in &settings.allowed_hostnames {
            bouncer_eks::check_globs("allowedHostnames[].namespaces", &rule.namespaces)?;
            bouncer_eks::check_globs("allowedHostnames[].hostnames", &rule.hostnames)?;
        }
        Ok(())
    }

    fn validate(request: &Request, settings: &Settings) -> Result<Verdict> {
        if request.kind.group != GATEWAY_GROUP {
            return Ok(Verdict::allow());
        }
        let namespace = request.namespace.clone().unwrap_or_default();
        let object = format!("{} {}", request.kind.kind, request.object_ref());
        if request.kind.kind == "Gateway" {
            judge(request, |g: &Gateway| {
                check_gateway(&object, &namespace, g, settings)
            })
        } else if ROUTE_KINDS.contains(&request.kind.kind.as_str()) {
            // TCPRoutes have no hostnames; for the others, none means all.
            let named = request.kind.kind != "TCPRoute";
            judge(request, |r: &Route| {
                check_route(&object, &namespace, r, named, settings)
            })
        } else {
            Ok(Verdict::allow())
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Gateway {
    spec: GatewaySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatewaySpec {
    listeners: Vec<Listener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Listener {
    name: String,
    allowed_routes: Option<AllowedRoutes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AllowedRoutes {
    namespaces: Option<RouteNamespaces>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RouteNamespaces {
    from: Option<String>,
}

fn check_gateway(
    object: &str,
    namespace: &str,
    gateway: &Gateway,
    settings: &Settings,
) -> Findings {
    let mut findings = Findings::new();
    if !matches_any(&settings.platform_namespaces, namespace) {
        findings.deny(format!(
            "{object}: Gateways belong to the platform team, in namespaces {:?}, not in `{namespace}`; \
             ask for a listener on a shared Gateway and attach an HTTPRoute to it",
            settings.platform_namespaces
        ));
    }
    if !settings.allow_all_namespaces {
        for listener in &gateway.spec.listeners {
            let from = listener
                .allowed_routes
                .as_ref()
                .and_then(|a| a.namespaces.as_ref())
                .and_then(|n| n.from.as_deref());
            if from == Some("All") {
                findings.deny(format!(
                    "{object} listener `{}` accepts routes from every namespace (`allowedRoutes.namespaces.from: All`); \
                     use `Selector` with the namespaces that may attach, or `Same`",
                    listener.name
                ));
            }
        }
    }
    findings
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Route {
    spec: RouteSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RouteSpec {
    parent_refs: Vec<ParentRef>,
    hostnames: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ParentRef {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
}

fn check_route(
    object: &str,
    namespace: &str,
    route: &Route,
    named: bool,
    settings: &Settings,
) -> Findings {
    let mut findings = Findings::new();
    for parent in &route.spec.parent_refs {
        let is_gateway = parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            && parent.kind.as_deref().unwrap_or("Gateway") == "Gateway";
        if !is_gateway {
            continue;
        }
        let target = format!(
            "{}/{}",
            parent.namespace.as_deref().unwrap_or(namespace),
            parent.name
        );
        if !matches_any(&settings.allowed_gateways, &target) {
            findings.deny(format!(
                "{object} attaches to Gateway `{target}`, which is not one of the allowed Gateways {:?}",
                settings.allowed_gateways
            ));
        }
    }
    if settings.allowed_hostnames.is_empty() || !named {
        return findings;
    }
    let hostnames = &route.spec.hostnames;
    let allowed: Vec<String> = settings
        .allowed_hostnames
        .iter()
        .filter(|r| r.namespaces.is_empty() || matches_any(&r.namespaces, namespace))
        .flat_map(|r| r.hostnames.iter().cloned())
        .collect();
    if hostnames.is_empty() {
        findings.deny(format!(
            "{object} lists no `hostnames`, so it takes every hostname of its Gateway; list the hostnames it \
             serves (namespace `{namespace}` may claim {allowed:?})"
        ));
    }
    let refused: Vec<&String> = hostnames
        .iter()
        .filter(|h| !matches_any(&allowed, h))
        .collect();
    if !refused.is_empty() {
        findings.deny(format!(
            "{object} claims {}, which namespace `{namespace}` may not serve (allowed: {allowed:?})",
            refused.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    findings
}

export_policy!(GatewayOwnership);
