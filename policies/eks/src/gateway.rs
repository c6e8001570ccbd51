//! Gateways of the AWS Load Balancer Controller (v3): which GatewayClasses it
//! owns, and the `LoadBalancerConfiguration` it builds a Gateway from, merged
//! from the GatewayClass's and the Gateway's as the controller merges them
//! (`pkg/gateway/lb_config_merger.go`; docs/guide/gateway/loadbalancerconfig.md,
//! targetgroupconfig.md).
//!
//! Everything here is looked up through the context interface; what cannot be
//! seen is left unknown, and the caller judges by the Gateway alone.

use std::collections::BTreeMap;

use bouncer_sdk::context;
use serde::Deserialize;

/// The controller names of the AWS Load Balancer Controller's GatewayClasses.
pub const AWS_CONTROLLERS: &[&str] = &["gateway.k8s.aws/alb", "gateway.k8s.aws/nlb"];
/// The group of the controller's configuration kinds.
pub const CONFIG_GROUP: &str = "gateway.k8s.aws";
/// The load balancer's configuration kind.
pub const LB_CONFIG_KIND: &str = "LoadBalancerConfiguration";
/// The target groups' configuration kind.
pub const TG_CONFIG_KIND: &str = "TargetGroupConfiguration";
/// The apiVersions the controller serves its kinds at; looked up in this order,
/// each when declared as context.
pub const CONFIG_API_VERSIONS: &[&str] = &["gateway.k8s.aws/v1", "gateway.k8s.aws/v1beta1"];
/// The apiVersion GatewayClasses are looked up with.
pub const GATEWAY_CLASS_API: &str = "gateway.networking.k8s.io/v1";

/// What of a Gateway's spec says how the controller builds it: its class and
/// its own parameters. Rules embed it with `#[serde(flatten)]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GatewayRefs {
    /// `spec.gatewayClassName`.
    pub gateway_class_name: String,
    /// `spec.infrastructure`.
    pub infrastructure: Option<Infrastructure>,
}

/// `spec.infrastructure` of a Gateway.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Infrastructure {
    /// The Gateway's own configuration.
    pub parameters_ref: Option<ParametersRef>,
}

/// A reference to a configuration object.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ParametersRef {
    /// Its group.
    pub group: String,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace (GatewayClass references only).
    pub namespace: Option<String>,
}

impl ParametersRef {
    fn is_lb_config(&self) -> bool {
        self.group == CONFIG_GROUP && self.kind == LB_CONFIG_KIND
    }
}

/// The apiVersion Gateways and ListenerSets are looked up with.
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";
/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The kind that adds listeners to a Gateway (Gateway API v1.5; LBC v3.2,
/// docs/guide/gateway/listenersets.md).
pub const LISTENER_SET: &str = "ListenerSet";

/// A ListenerSet's `spec.parentRef`: the Gateway it adds listeners to.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ParentGatewayRef {
    /// Its group (the Gateway API's when absent).
    pub group: Option<String>,
    /// Its kind (`Gateway` when absent).
    pub kind: Option<String>,
    /// Its name.
    pub name: String,
    /// Its namespace (the ListenerSet's when absent).
    pub namespace: Option<String>,
}

/// A ListenerSet, with the listener fields `L` a rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound = "L: Deserialize<'de> + Default")]
pub struct ListenerSet<L> {
    /// Its metadata.
    pub metadata: crate::Metadata,
    /// Its spec.
    pub spec: ListenerSetSpec<L>,
}

/// `spec` of a ListenerSet: the parent Gateway and the listeners it adds.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    rename_all = "camelCase",
    bound = "L: Deserialize<'de> + Default"
)]
pub struct ListenerSetSpec<L> {
    /// The Gateway the listeners join.
    pub parent_ref: ParentGatewayRef,
    /// The listeners, as the rule reads them.
    pub listeners: Vec<L>,
}

/// The parts of a parent Gateway a ListenerSet is judged with.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ParentGateway {
    /// Its metadata.
    pub metadata: crate::Metadata,
    /// Its spec.
    pub spec: ParentSpec,
}

/// The parent's spec: its class and configuration.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ParentSpec {
    /// Class and parameters.
    #[serde(flatten)]
    pub refs: GatewayRefs,
}

/// A ListenerSet's parent Gateway as bouncer can see it.
#[derive(Debug)]
pub enum Parent {
    /// Found: `namespace/name` and the Gateway.
    Found(String, String, Box<ParentGateway>),
    /// Not seen; why, for a warning.
    Unseen(String),
    /// The parent is not a Gateway: nothing this rule knows.
    NotGateway,
}

impl ParentGatewayRef {
    /// `namespace/name` of the parent, from a ListenerSet in `namespace`.
    pub fn target(&self, namespace: &str) -> String {
        format!(
            "{}/{}",
            self.namespace.as_deref().unwrap_or(namespace),
            self.name
        )
    }

    /// Looks the parent Gateway up (context `gateway.networking.k8s.io/v1 Gateway`).
    pub fn look_up(&self, namespace: &str) -> Parent {
        let is_gateway = self.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            && self.kind.as_deref().unwrap_or("Gateway") == "Gateway";
        if !is_gateway {
            return Parent::NotGateway;
        }
        let ns = self.namespace.as_deref().unwrap_or(namespace);
        match context::get::<ParentGateway>(GATEWAY_API, "Gateway", Some(ns), &self.name) {
            Ok(Some(gateway)) => Parent::Found(ns.to_owned(), self.name.clone(), Box::new(gateway)),
            Ok(None) => Parent::Unseen(format!(
                "bouncer sees no parent Gateway `{ns}/{}` (in the cluster, or offline among the manifests and \
                 `--context`)",
                self.name
            )),
            Err(e) => Parent::Unseen(format!(
                "bouncer cannot look up its parent Gateway `{ns}/{}` ({e})",
                self.name
            )),
        }
    }
}

/// Annotations of Ingresses and Services the Gateway controller does not
/// read, found on a Gateway (or ListenerSet): each with a hint.
pub fn ingress_annotations(meta: &crate::Metadata, object: &str) -> Vec<String> {
    meta.annotations
        .keys()
        .filter(|k| {
            k.starts_with("alb.ingress.kubernetes.io/")
                || k.starts_with("service.beta.kubernetes.io/aws-load-balancer-")
        })
        .map(|k| {
            format!(
                "{object} has the annotation `{k}`, which only Ingresses and Services use: the Gateway \
                 controller does not read it; configure the load balancer in the Gateway's \
                 LoadBalancerConfiguration (`spec.infrastructure.parametersRef`) instead"
            )
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatewayClass {
    spec: GatewayClassSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GatewayClassSpec {
    controller_name: String,
    parameters_ref: Option<ParametersRef>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct LbConfig {
    spec: LbConfigSpec,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LbConfigSpec {
    merging_mode: Option<String>,
    scheme: Option<String>,
    listener_configurations: Vec<ListenerConfiguration>,
    default_target_group_configuration: Option<NameRef>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ListenerConfiguration {
    protocol_port: String,
    default_certificate: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct NameRef {
    name: String,
}

/// A TargetGroupConfiguration, as alb-target-type-ip reads it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TargetGroupConfiguration {
    /// Its spec.
    pub spec: TgConfigSpec,
}

/// `spec` of a TargetGroupConfiguration.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TgConfigSpec {
    /// The Service (or Gateway) it configures; `None` for a Gateway default.
    pub target_reference: Option<serde_json::Value>,
    /// Its default target group properties.
    pub default_configuration: TgProps,
    /// Properties per route.
    pub route_configurations: Vec<RouteConfiguration>,
}

/// Target group properties.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TgProps {
    /// `ip` or `instance` (the controller's default).
    pub target_type: Option<String>,
}

/// Properties for one route.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteConfiguration {
    /// The route, as written.
    pub route_identifier: serde_json::Value,
    /// Its properties.
    pub target_group_props: TgProps,
}

/// A configuration object that was found, and where.
#[derive(Debug, Clone)]
struct Found<T> {
    /// "LoadBalancerConfiguration `ns/name` of GatewayClass `x`", for messages.
    what: String,
    namespace: String,
    value: T,
}

/// What the cluster says of one Gateway.
#[derive(Debug, Default)]
pub struct AwsGateway {
    /// The GatewayClass's `controllerName`, when it could be looked up.
    pub controller: Option<String>,
    /// LoadBalancerConfigurations, highest priority first.
    configs: Vec<Found<LbConfig>>,
    /// References that could not be followed, for warnings.
    pub unseen: Vec<String>,
    /// Why the GatewayClass could not be seen, when it could not.
    pub class_unseen: Option<String>,
}

/// Gets an object of the controller's kinds at the first declared version
/// that has it; `Err` only when no version could be looked up.
fn get_config<T: serde::de::DeserializeOwned>(
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<T>, String> {
    let mut looked = Err(String::new());
    for api in CONFIG_API_VERSIONS {
        match context::get::<T>(api, kind, Some(namespace), name) {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => looked = Ok(None),
            Err(e) if looked.is_err() => looked = Err(e.to_string()),
            Err(_) => {}
        }
    }
    looked
}

impl AwsGateway {
    /// Looks up a Gateway's class and the LoadBalancerConfigurations of both.
    pub fn look_up(refs: &GatewayRefs, namespace: &str) -> Self {
        let class_name = refs.gateway_class_name.as_str();
        let infra = refs.infrastructure.as_ref();
        let class = match context::get::<GatewayClass>(
            GATEWAY_CLASS_API,
            "GatewayClass",
            None,
            class_name,
        ) {
            Ok(Some(class)) => class,
            Ok(None) => {
                return Self {
                    class_unseen: Some(format!(
                        "bouncer sees no GatewayClass `{class_name}` (in the cluster, or offline among the \
                         manifests and `--context`)"
                    )),
                    ..Self::default()
                };
            }
            Err(e) => {
                return Self {
                    class_unseen: Some(format!("bouncer cannot look up GatewayClasses ({e})")),
                    ..Self::default()
                };
            }
        };
        let mut seen = Self {
            controller: Some(class.spec.controller_name.clone()),
            ..Self::default()
        };
        if !seen.is_aws() {
            return seen;
        }
        let of_class = class
            .spec
            .parameters_ref
            .as_ref()
            .filter(|r| r.is_lb_config())
            .and_then(|r| {
                let ns = r.namespace.clone().unwrap_or_default();
                seen.follow(&ns, &r.name, &format!("GatewayClass `{class_name}`"))
            });
        let of_gateway = infra
            .and_then(|i| i.parameters_ref.as_ref())
            .filter(|r| r.is_lb_config())
            .and_then(|r| seen.follow(namespace, &r.name, "the Gateway"));
        let prefer_gateway = of_class
            .as_ref()
            .and_then(|c| c.value.spec.merging_mode.as_deref())
            == Some("prefer-gateway");
        seen.configs = match (of_class, of_gateway) {
            (Some(c), Some(g)) if prefer_gateway => vec![g, c],
            (c, g) => c.into_iter().chain(g).collect(),
        };
        seen
    }

    /// What the cluster says of a ListenerSet's parent Gateway; when the
    /// parent cannot be seen, `class_unseen` says why.
    pub fn of_parent(parent: &ParentGatewayRef, namespace: &str) -> Self {
        match parent.look_up(namespace) {
            Parent::Found(parent_namespace, _, gateway) => {
                Self::look_up(&gateway.spec.refs, &parent_namespace)
            }
            Parent::Unseen(why) => Self {
                class_unseen: Some(why),
                ..Self::default()
            },
            Parent::NotGateway => Self::default(),
        }
    }

    fn follow(&mut self, namespace: &str, name: &str, owner: &str) -> Option<Found<LbConfig>> {
        let what = format!("LoadBalancerConfiguration `{namespace}/{name}` of {owner}");
        match get_config::<LbConfig>(LB_CONFIG_KIND, namespace, name) {
            Ok(Some(value)) => Some(Found {
                what,
                namespace: namespace.to_owned(),
                value,
            }),
            Ok(None) => {
                self.unseen.push(format!("{what} does not exist"));
                None
            }
            Err(e) => {
                self.unseen
                    .push(format!("bouncer cannot read {what} ({e})"));
                None
            }
        }
    }

    /// Whether the AWS Load Balancer Controller owns the Gateway.
    pub fn is_aws(&self) -> bool {
        self.controller
            .as_deref()
            .is_some_and(|c| AWS_CONTROLLERS.contains(&c))
    }

    /// The type of load balancer its controller builds.
    pub fn lb_type(&self) -> Option<crate::model::LbType> {
        match self.controller.as_deref()? {
            "gateway.k8s.aws/alb" => Some(crate::model::LbType::Alb),
            "gateway.k8s.aws/nlb" => Some(crate::model::LbType::Nlb),
            _ => None,
        }
    }

    /// The guess warning for a Gateway judged without its class, when the
    /// judgement denied.
    pub fn guess_warning(&self, object: &str, denied: bool) -> Option<String> {
        let why = self.class_unseen.as_ref().filter(|_| denied)?;
        Some(format!(
            "{object}: {why}; judged as a Gateway of another controller, though if the AWS Load Balancer \
             Controller owns it, its load balancer comes from a LoadBalancerConfiguration"
        ))
    }

    /// The merged scheme and the configuration that sets it.
    pub fn scheme(&self) -> Option<(&str, &str)> {
        self.configs
            .iter()
            .find_map(|c| c.value.spec.scheme.as_deref().map(|s| (s, c.what.as_str())))
    }

    /// The certificate the merged configuration gives `PROTOCOL:PORT`: the
    /// highest-priority listener configuration for it wins, as in the controller.
    pub fn certificate(&self, protocol_port: &str) -> Option<&str> {
        self.configs
            .iter()
            .find_map(|c| {
                c.value
                    .spec
                    .listener_configurations
                    .iter()
                    .find(|l| l.protocol_port == protocol_port)
            })?
            .default_certificate
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    }

    /// The target type of the merged default TargetGroupConfiguration, and
    /// where it comes from; `None` when no default sets one (the controller then
    /// uses `instance`). Unreadable references are added to `unseen`.
    pub fn default_target_type(&mut self) -> Option<(String, String)> {
        let refs: Vec<(String, String)> = self
            .configs
            .iter()
            .filter_map(|c| {
                let name = c.value.spec.default_target_group_configuration.as_ref()?;
                Some((c.namespace.clone(), name.name.clone()))
            })
            .collect();
        for (namespace, name) in refs {
            let what = format!("TargetGroupConfiguration `{namespace}/{name}`");
            match get_config::<TargetGroupConfiguration>(TG_CONFIG_KIND, &namespace, &name) {
                Ok(Some(tgc)) => {
                    if let Some(t) = tgc.spec.default_configuration.target_type {
                        return Some((t, what));
                    }
                }
                Ok(None) => self.unseen.push(format!("{what} does not exist")),
                Err(e) => self
                    .unseen
                    .push(format!("bouncer cannot read {what} ({e})")),
            }
        }
        None
    }
}

/// Target types a TargetGroupConfiguration sets, by where (`defaultConfiguration`,
/// `routeConfigurations[0]`), for rules that judge the object itself.
pub fn target_types(tgc: &TargetGroupConfiguration) -> BTreeMap<String, Option<&str>> {
    let mut found = BTreeMap::new();
    found.insert(
        "defaultConfiguration".to_owned(),
        tgc.spec.default_configuration.target_type.as_deref(),
    );
    for (i, route) in tgc.spec.route_configurations.iter().enumerate() {
        found.insert(
            format!("routeConfigurations[{i}]"),
            route.target_group_props.target_type.as_deref(),
        );
    }
    found
}
