//! A custom policy shipped through a real OCI registry: the test guest
//! `legacy-0.1.1` (built from source; it refuses whatever it sees) pushed with
//! bouncer's own push, named by digest in the chart's values, pulled by the
//! server at load, and enforced on CronJobs in `shop`.

use std::collections::BTreeMap;

#[path = "../../../host/tests/all/support/registry.rs"]
#[allow(dead_code)]
mod support_registry;

pub(crate) use support_registry::Registry;

/// The running registry and what the configuration needs to name the policy.
pub struct Shipped {
    /// Kept alive (it stops when dropped) while the scenarios run.
    pub _registry: Registry,
    /// The config entry (indented as under `config.policies` in values).
    pub entry: String,
    /// `host:port`, reached over plain HTTP.
    pub host: String,
}

/// Starts a registry and pushes the custom policy; `None` when this machine
/// cannot run a registry (never under `CI=true`, where the support panics).
pub fn ship() -> Option<Shipped> {
    let registry = Registry::start(false, false)?;
    let host = registry.host();
    let component = std::fs::read(bouncer_tests::LEGACY_POLICY).expect("the legacy guest is built");
    let reference =
        bouncer::registry::PolicyRef::parse(&format!("oci://{host}/team/cronjob-rules:1.0"))
            .expect("a valid reference");
    let options = bouncer::registry::RegistryOptions {
        plain_http: vec![host.clone()],
        ..Default::default()
    };
    let push = bouncer::registry::push(&component, &reference, BTreeMap::new(), &options, None);
    let pushed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(push)
        .expect("the registry takes the policy");
    let entry = format!(
        "    - name: team-cronjobs\n      source: {}\n      match:\n        kinds:\n          - {{apiGroups: [batch], kinds: [CronJob]}}\n        operations: [CREATE]\n        namespaces: {{include: [shop]}}\n",
        reference.at(&pushed.digest)
    );
    Some(Shipped {
        _registry: registry,
        entry,
        host,
    })
}
