//! IngressGroups: Ingresses that share one ALB (docs/guide/ingress/annotations.md,
//! "IngressGroup"). The group's load balancer settings are the union of its
//! members' explicit ones; two members that disagree fail the whole group
//! (`buildLoadBalancerScheme` in `pkg/ingress/model_build_load_balancer.go`).

use bouncer_sdk::context::{self, Query};

use crate::ingress_class::{Classes, group_of};
use crate::lb::Ingress;
use crate::names::{INGRESS_GROUP_NAME, INGRESS_SCHEME};

/// Another member of a group, and the scheme it states.
#[derive(Debug, Clone)]
pub struct Member {
    /// `namespace/name`.
    pub name: String,
    /// Its explicit scheme and where it is written; `None` when it states none.
    pub scheme: Option<(String, String)>,
}

/// The other Ingresses of `group`, from the cluster's Ingresses (context);
/// `Err` with the reason when they cannot be looked up.
///
/// Only the group's candidates are looked up, selected by the host: the
/// Ingresses naming the group in their annotation, and those of each class
/// whose IngressClassParams put it in the group. Copying every Ingress of the
/// cluster into each grouped review would let any tenant with 300 Ingresses
/// of large annotations push every grouped review past its memory.
pub fn other_members(
    group: &str,
    me: &Ingress,
    namespace: &str,
    classes: &Classes,
    fallback: &[String],
) -> Result<Vec<Member>, String> {
    let find = |query: Query| {
        context::find::<Ingress>(INGRESS_API, INGRESS, None, &query).map_err(|e| e.to_string())
    };
    let mut candidates = find(Query::new().annotation(INGRESS_GROUP_NAME, group))?;
    let (classes_in_group, default_in_group) = classes.grouped_by_params(group);
    for class in &classes_in_group {
        candidates.extend(find(Query::new().field("spec.ingressClassName", class))?);
    }
    if default_in_group {
        // Ingresses of the default class name none: no index selects them.
        candidates.extend(
            context::list::<Ingress>(INGRESS_API, INGRESS, None, None)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|i| i.spec.ingress_class_name.is_none()),
        );
    }
    let my_name = me.metadata.name.as_deref().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    Ok(candidates
        .into_iter()
        .filter(|i| {
            !(i.metadata.namespace.as_deref() == Some(namespace)
                && i.metadata.name.as_deref() == Some(my_name))
        })
        .filter(|i| {
            seen.insert((
                i.metadata.namespace.clone().unwrap_or_default(),
                i.metadata.name.clone().unwrap_or_default(),
            ))
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

/// The apiVersion and kind of the Ingresses looked up.
const INGRESS_API: &str = "networking.k8s.io/v1";
const INGRESS: &str = "Ingress";
