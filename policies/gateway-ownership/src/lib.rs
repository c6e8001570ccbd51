//! `gateway-ownership`: the Gateway API's split of duties, enforced.
//!
//! The Gateway API's point is that the platform team owns the entrances
//! (Gateways: addresses, listeners, certificates) and application teams own
//! their routes. Nothing in Kubernetes stops a team from creating its own
//! Gateway, opening one to every namespace, or attaching a route to someone
//! else's hostname; this rule does.

use bouncer_eks::gateway::{GATEWAY_API, GATEWAY_GROUP, LISTENER_SET};
use bouncer_eks::matches_any;
use bouncer_sdk::{
    Findings, Metadata, Operation, Policy, Request, Result, Verdict, export_policy, judge,
};
use serde::Deserialize;

const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"];
/// Routes without hostnames.
const UNNAMED_ROUTES: &[&str] = &["TCPRoute", "UDPRoute"];

/// Settings of `gateway-ownership`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Namespaces (globs) where Gateways may be created.
    pub platform_namespaces: Vec<String>,
    /// Allow listeners to accept routes (`allowedRoutes.namespaces.from: All`), and Gateways to
    /// accept ListenerSets (`allowedListeners.namespaces.from: All`), from every namespace.
    pub allow_all_namespaces: bool,
    /// Gateways (`namespace/name` globs) routes and ListenerSets may attach to.
    pub allowed_gateways: Vec<String>,
    /// Hostnames routes and ListenerSet listeners may claim; no restriction when empty.
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
                &[GATEWAY_GROUP],
                &[
                    "Gateway",
                    LISTENER_SET,
                    "HTTPRoute",
                    "GRPCRoute",
                    "TLSRoute",
                    "TCPRoute",
                    "UDPRoute",
                ],
            )
            .context(GATEWAY_API, LISTENER_SET)
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
        } else if request.kind.kind == LISTENER_SET {
            judge(request, |set: &ListenerSet| {
                check_listener_set(&object, &namespace, set, settings)
            })
        } else if ROUTE_KINDS.contains(&request.kind.kind.as_str()) {
            // TCPRoutes and UDPRoutes have no hostnames; for the others, none means all.
            let named = !UNNAMED_ROUTES.contains(&request.kind.kind.as_str());
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
#[serde(default, rename_all = "camelCase")]
struct GatewaySpec {
    listeners: Vec<Listener>,
    allowed_listeners: Option<AllowedRoutes>,
}

type ListenerSet = bouncer_eks::gateway::ListenerSet<Listener>;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Listener {
    name: String,
    hostname: Option<String>,
    allowed_routes: Option<AllowedRoutes>,
}

impl Listener {
    fn accepts_all(&self) -> bool {
        self.allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref())
            .and_then(|n| n.from.as_deref())
            == Some("All")
    }
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
        deny_open_listeners(object, &gateway.spec.listeners, &mut findings);
        let from = gateway
            .spec
            .allowed_listeners
            .as_ref()
            .and_then(|a| a.namespaces.as_ref())
            .and_then(|n| n.from.as_deref());
        if from == Some("All") {
            findings.deny(format!(
                "{object} accepts ListenerSets from every namespace (`allowedListeners.namespaces.from: All`): \
                 any team could add listeners, hostnames and certificates to it; use `Selector` with the \
                 namespaces that may attach, or `Same`"
            ));
        }
    }
    findings
}

/// Listeners that accept routes from every namespace.
fn deny_open_listeners(object: &str, listeners: &[Listener], findings: &mut Findings) {
    for listener in listeners.iter().filter(|l| l.accepts_all()) {
        findings.deny(format!(
            "{object} listener `{}` accepts routes from every namespace (`allowedRoutes.namespaces.from: All`); \
             use `Selector` with the namespaces that may attach, or `Same`",
            listener.name
        ));
    }
}

/// A ListenerSet adds listeners to a Gateway: the Gateway must be one teams may
/// attach to, its listeners may not open to every namespace, and their
/// hostnames are claims like a route's.
fn check_listener_set(
    object: &str,
    namespace: &str,
    set: &ListenerSet,
    settings: &Settings,
) -> Findings {
    let mut findings = Findings::new();
    let parent = &set.spec.parent_ref;
    let target = parent.target(namespace);
    if !matches_any(&settings.allowed_gateways, &target) {
        findings.deny(format!(
            "{object} adds listeners to Gateway `{target}`, which is not one of the allowed Gateways {:?}",
            settings.allowed_gateways
        ));
    }
    if !settings.allow_all_namespaces {
        deny_open_listeners(object, &set.spec.listeners, &mut findings);
    }
    if !settings.allowed_hostnames.is_empty() {
        let hostnames: Vec<String> = set
            .spec
            .listeners
            .iter()
            .filter_map(|l| l.hostname.clone())
            .collect();
        if set.spec.listeners.iter().any(|l| l.hostname.is_none()) {
            findings.deny(format!(
                "{object} has a listener without `hostname`, which takes every hostname; give each listener \
                 the hostname it serves (namespace `{namespace}` may claim {:?})",
                allowed_hostnames(settings, namespace)
            ));
        }
        check_hostnames(object, namespace, &hostnames, settings, &mut findings);
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
    let mut gateways = std::collections::BTreeSet::new();
    for parent in &route.spec.parent_refs {
        let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        let target = format!(
            "{}/{}",
            parent.namespace.as_deref().unwrap_or(namespace),
            parent.name
        );
        match (group, kind) {
            (GATEWAY_GROUP, "Gateway") => {
                gateways.insert(target);
            }
            (GATEWAY_GROUP, LISTENER_SET) => {
                let (ns, name) = target.split_once('/').unwrap_or_default();
                match bouncer_sdk::context::get::<ListenerSet>(GATEWAY_API, LISTENER_SET, Some(ns), name) {
                    Ok(Some(set)) => {
                        gateways.insert(set.spec.parent_ref.target(ns));
                    }
                    Ok(None) => findings.warn(format!(
                        "{object} attaches to ListenerSet `{target}`, which bouncer does not see (in the cluster, \
                         or offline among the manifests and `--context`); the Gateway behind it is not judged"
                    )),
                    Err(e) => findings.warn(format!(
                        "{object} attaches to ListenerSet `{target}`, which bouncer cannot look up ({e}); the \
                         Gateway behind it is not judged"
                    )),
                }
            }
            _ => {}
        }
    }
    // A route naming a Gateway twice (two listeners) is told once.
    for target in gateways {
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
    if hostnames.is_empty() {
        findings.deny(format!(
            "{object} lists no `hostnames`, so it takes every hostname of its Gateway; list the hostnames it \
             serves (namespace `{namespace}` may claim {:?})",
            allowed_hostnames(settings, namespace)
        ));
    }
    check_hostnames(object, namespace, hostnames, settings, &mut findings);
    findings
}

/// The hostnames (globs) `namespace` may claim.
fn allowed_hostnames(settings: &Settings, namespace: &str) -> Vec<String> {
    settings
        .allowed_hostnames
        .iter()
        .filter(|r| r.namespaces.is_empty() || matches_any(&r.namespaces, namespace))
        .flat_map(|r| r.hostnames.iter().cloned())
        .collect()
}

/// Denies the hostnames `namespace` may not claim.
fn check_hostnames(
    object: &str,
    namespace: &str,
    hostnames: &[String],
    settings: &Settings,
    findings: &mut Findings,
) {
    let allowed = allowed_hostnames(settings, namespace);
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
}

export_policy!(GatewayOwnership);
