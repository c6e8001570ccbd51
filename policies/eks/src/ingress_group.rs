//! IngressGroups: Ingresses that share one ALB (docs/guide/ingress/annotations.md,
//! "IngressGroup"). The group's load balancer settings are the union of its
//! members' explicit ones; two members that disagree fail the whole group
//! (`buildLoadBalancerScheme` in `pkg/ingress/model_build_load_balancer.go`).

use bouncer_sdk::context;

use crate::ingress_class::{Classes, group_of};
use crate::lb::Ingress;
use crate::names::INGRESS_SCHEME;

/// Another member of a group, and the scheme it states.
#[derive(Debug, Clone)]
pub struct Member {
    /// `namespace/name`.
    pub name: String,
    /// Its explicit scheme and where it is written; `None` when it states none.
    pub scheme: Option<(String, String)>,
}

/// The other Ingresses of `group`, from the cluster's Ingresses (context);
/// `Err` with the reason when they cannot be listed.
pub fn other_members(
    group: &str,
    me: &Ingress,
    namespace: &str,
    classes: &Classes,
    fallback: &[String],
) -> Result<Vec<Member>, String> {
    let all = context::list::<Ingress>("networking.k8s.io/v1", "Ingress", None, None)
        .map_err(|e| e.to_string())?;
    let my_name = me.metadata.name.as_deref().unwrap_or_default();
    Ok(all
        .into_iter()
        .filter(|i| {
            !(i.metadata.namespace.as_deref() == Some(namespace)
                && i.metadata.name.as_deref() == Some(my_name))
        })
        .filter_map(|i| {
            let alb = classes.owner(&i, fallback).alb?;
            (group_of(&i, &alb).as_deref() == Some(group)).then(|| Member {
                name: format!(
                    "{}/{}",
                    i.metadata.namespace.as_deref().unwrap_or_default(),
                    i.metadata.name.as_deref().unwrap_or_default()
                ),
                scheme: alb
                    .pick(&i.metadata, INGRESS_SCHEME, "scheme", |p| {
                        p.scheme.as_deref()
                    })
                    .map(|(s, from)| {
                        let from = from.unwrap_or_else(|| format!("`{INGRESS_SCHEME}`"));
                        (s.to_owned(), from)
                    }),
            })
        })
        .collect())
}
