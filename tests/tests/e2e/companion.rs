//! The companion against the real API server: two `bouncer serve
//! --companion` replicas with the default-deny rule on `auto-*` namespaces
//! (their own webhook), one Lease between them.

use std::time::{Duration, Instant};

use bouncer_tests::metric;
use bouncer_tests::server::TestServer;

use super::cluster::Cluster;
use super::scenarios::{Steps, admitted_within, contains, refused, succeeded, webhook_of};
use crate::say;

const LEASE: Duration = Duration::from_secs(4);
const NAMESPACES: [&str; 5] = ["auto-probe", "auto-a", "auto-opt", "auto-r", "auto-c"];

fn config() -> &'static str {
    "companion:
  namespaces: {include: [\"auto-*\"]}
policies:
  - name: default-deny-networkpolicy
    source: builtin:default-deny-networkpolicy
    context:
      - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy}
    match:
      kinds: [{apiGroups: [apps], kinds: [Deployment]}]
      namespaces: {include: [\"auto-*\"]}
"
}

async fn replica(cluster: &Cluster, identity: &str) -> TestServer {
    let kubeconfig = cluster.kubeconfig.clone();
    let identity = identity.to_owned();
    bouncer_tests::server::start(Some(config()), |o| {
        o.kube = bouncer::server::KubeAccess::Kubeconfig(kubeconfig);
        o.companion = Some(bouncer::companion::CompanionOptions {
            namespace: "bouncer-system".into(),
            identity,
            lease_duration: LEASE,
        });
    })
    .await
}

fn webhook(server: &TestServer) -> String {
    let names = NAMESPACES.map(|n| format!("\"{n}\"")).join(", ");
    webhook_of(
        server,
        "bouncer-companion",
        &format!(
            "{{matchExpressions: [{{key: kubernetes.io/metadata.name, operator: In, values: [{names}]}}]}}"
        ),
        &[
            "{apiGroups: [apps], apiVersions: [\"*\"], resources: [deployments], operations: [CREATE]}",
        ],
    )
}

fn deployment(namespace: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: app, image: nginx}}]
"
    )
}

/// The names of the NetworkPolicies in `namespace`.
fn policies(cluster: &Cluster, namespace: &str) -> String {
    let output = cluster.kubectl(
        &[
            "-n",
            namespace,
            "get",
            "networkpolicies",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        None,
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits up to `within` for `done`; the time it took.
fn within(within: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if done() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn leader(runtime: &tokio::runtime::Runtime, server: &TestServer) -> u64 {
    let metrics = runtime.block_on(server.get_text("/metrics"));
    metric(&metrics, "bouncer_companion_leader ")
}

pub(super) fn scenarios(cluster: &Cluster, runtime: &tokio::runtime::Runtime, steps: &mut Steps) {
    steps.check(
        "the chart's companion identity may write only its own NetworkPolicies and its Lease",
        (|| {
            let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/bouncer");
            let (rendered, _) = succeeded(
                "helm template",
                cluster.helm(&[
                    "template",
                    "comp",
                    chart.to_str().unwrap(),
                    "--namespace",
                    "bouncer-system",
                    "--set",
                    "companion.enabled=true",
                ]),
            )?;
            let access: Vec<&str> = rendered
                .split("\n---")
                .filter(|doc| {
                    doc.contains("comp-bouncer-companion") || doc.contains("kind: ServiceAccount")
                })
                .collect();
            succeeded(
                "apply RBAC",
                cluster.kubectl(
                    &["apply", "-n", "bouncer-system", "-f", "-"],
                    Some(&access.join("\n---\n")),
                ),
            )?;
            let can = |verb: &str, resource: &str, namespace: &str| {
                let output = cluster.kubectl(
                    &[
                        "auth",
                        "can-i",
                        verb,
                        resource,
                        "-n",
                        namespace,
                        "--as",
                        "system:serviceaccount:bouncer-system:comp-bouncer",
                    ],
                    None,
                );
                String::from_utf8_lossy(&output.stdout).trim() == "yes"
            };
            let allowed = [
                ("list", "namespaces", "default"),
                ("create", "networkpolicies", "team-x"),
                ("patch", "networkpolicies/bouncer-default-deny", "team-x"),
                ("delete", "networkpolicies/bouncer-allow-dns", "team-x"),
                ("update", "leases/bouncer-companion", "bouncer-system"),
            ];
            let refused = [
                ("delete", "networkpolicies/default-deny", "team-x"),
                ("patch", "networkpolicies/someone-elses", "team-x"),
                ("update", "leases/other", "bouncer-system"),
                ("get", "leases/bouncer-companion", "default"),
                ("delete", "namespaces", "default"),
            ];
            for (verb, resource, ns) in allowed {
                if !can(verb, resource, ns) {
                    return Err(format!("may not {verb} {resource} in {ns}"));
                }
            }
            for (verb, resource, ns) in refused {
                if can(verb, resource, ns) {
                    return Err(format!("may {verb} {resource} in {ns}"));
                }
            }
            Ok(())
        })(),
    );

    let first = runtime.block_on(replica(cluster, "companion-a"));
    steps.check(
        "the companion's webhook refuses a Deployment in an opted-out namespace without a default-deny policy",
        (|| {
            // Labelled as it is created: the companion would otherwise write there first.
            let probe = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: auto-probe\n  labels: {bouncer.dev/companion: \"off\"}\n";
            succeeded("create namespace", cluster.kubectl(&["apply", "-f", "-"], Some(probe)))?;
            succeeded("apply webhook", cluster.kubectl(&["apply", "-f", "-"], Some(&webhook(&first))))?;
            // In place once the API server sends it reviews and its NetworkPolicy cache has synced.
            let dry_run = || {
                cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&deployment("auto-probe")))
            };
            let denied = within(Duration::from_secs(20), || {
                String::from_utf8_lossy(&dry_run().stderr).contains("has no default-deny NetworkPolicy")
            });
            if denied.is_none() {
                return Err(format!("never refused for want of a policy: {}", refused("dry-run apply", dry_run())?));
            }
            // Opted out: the companion wrote nothing there.
            let written = policies(cluster, "auto-probe");
            if written.is_empty() { Ok(()) } else { Err(format!("auto-probe holds {written}")) }
        })(),
    );

    steps.check(
        "a Deployment created right after its namespace is admitted once the companion wrote the policies",
        (|| {
            let started = Instant::now();
            succeeded("create namespace", cluster.kubectl(&["create", "namespace", "auto-a"], None))?;
            admitted_within(cluster, &deployment("auto-a"), Duration::from_secs(20))?;
            say!("e2e: a Deployment in a new namespace was admitted {:?} after the namespace was created", started.elapsed());
            let written = policies(cluster, "auto-a");
            contains(&written, "bouncer-default-deny")?;
            contains(&written, "bouncer-allow-dns")?;
            let (events, _) = succeeded(
                "get events",
                cluster.kubectl(&["get", "events", "-A", "--field-selector", "involvedObject.kind=Namespace,involvedObject.name=auto-a", "-o", "jsonpath={.items[*].message}"], None),
            )?;
            contains(&events, "created NetworkPolicy bouncer-default-deny")
        })(),
    );

    steps.check(
        "a deleted or weakened owned policy is restored; its Deployment's namespace stays default-deny",
        (|| {
            succeeded(
                "delete",
                cluster.kubectl(&["-n", "auto-a", "delete", "networkpolicy", "bouncer-default-deny"], None),
            )?;
            within(Duration::from_secs(15), || policies(cluster, "auto-a").contains("bouncer-default-deny"))
                .ok_or("the deleted policy was not restored")?;
            succeeded(
                "weaken",
                cluster.kubectl(
                    &["-n", "auto-a", "patch", "networkpolicy", "bouncer-default-deny", "--type=merge",
                      "-p", r#"{"spec":{"ingress":[{}]}}"#],
                    None,
                ),
            )?;
            within(Duration::from_secs(15), || {
                let output = cluster.kubectl(
                    &["-n", "auto-a", "get", "networkpolicy", "bouncer-default-deny", "-o", "jsonpath={.spec.ingress}"],
                    None,
                );
                output.status.success() && output.stdout.is_empty()
            })
            .ok_or("the weakened policy was not restored")?;
            // Exactly the two restorations: a replacement that the API server
            // then reported back as different would restore again and again.
            std::thread::sleep(Duration::from_secs(2));
            let metrics = runtime.block_on(first.get_text("/metrics"));
            let restored = metric(&metrics, r#"bouncer_companion_policies_total{action="restored"}"#);
            if restored != 2 {
                return Err(format!("{restored} restorations counted, not 2:\n{metrics}"));
            }
            Ok(())
        })(),
    );

    steps.check(
        "a namespace with the opt-out label gets nothing",
        (|| {
            let manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: auto-opt\n  labels: {bouncer.dev/companion: \"off\"}\n";
            succeeded("create", cluster.kubectl(&["apply", "-f", "-"], Some(manifest)))?;
            std::thread::sleep(Duration::from_secs(3));
            let written = policies(cluster, "auto-opt");
            if written.is_empty() { Ok(()) } else { Err(format!("auto-opt holds {written}")) }
        })(),
    );

    steps.check(
        "a NetworkPolicy of the companion's name that it does not own is left as it is",
        (|| {
            let manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: auto-own\n  labels: {bouncer.dev/companion: \"off\"}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bouncer-default-deny, namespace: auto-own}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: [{}]\n";
            succeeded("create", cluster.kubectl(&["apply", "-f", "-"], Some(manifest)))?;
            succeeded(
                "opt in",
                cluster.kubectl(&["label", "namespace", "auto-own", "bouncer.dev/companion-"], None),
            )?;
            within(Duration::from_secs(15), || policies(cluster, "auto-own").contains("bouncer-allow-dns"))
                .ok_or("the companion did not reconcile auto-own")?;
            let (theirs, _) = succeeded(
                "get",
                cluster.kubectl(
                    &["-n", "auto-own", "get", "networkpolicy", "bouncer-default-deny", "-o", "json"],
                    None,
                ),
            )?;
            let theirs: serde_json::Value = serde_json::from_str(&theirs).map_err(|e| e.to_string())?;
            if theirs["spec"]["ingress"] != serde_json::json!([{}]) || !theirs["metadata"]["labels"].is_null() {
                return Err(format!("the companion changed a policy it does not own: {theirs:#}"));
            }
            let (events, _) = succeeded(
                "get events",
                cluster.kubectl(&["get", "events", "-A", "--field-selector", "involvedObject.kind=Namespace,involvedObject.name=auto-own", "-o", "jsonpath={.items[*].message}"], None),
            )?;
            contains(&events, "bouncer leaves it alone")
        })(),
    );

    steps.check(
        "after a kube-apiserver restart the companion resumes: a new namespace gets its policies",
        (|| {
            cluster.restart_apiserver();
            succeeded(
                "create namespace",
                cluster.kubectl(&["create", "namespace", "auto-r"], None),
            )?;
            within(Duration::from_secs(30), || {
                policies(cluster, "auto-r").contains("bouncer-default-deny")
            })
            .map(drop)
            .ok_or_else(|| "no policies in auto-r after the restart".to_owned())
        })(),
    );

    let second = runtime.block_on(replica(cluster, "companion-b"));
    steps.check(
        "two companions: one holds the Lease and writes; when it stops, the other takes over",
        (|| {
            std::thread::sleep(LEASE);
            let (a, b) = (leader(runtime, &first), leader(runtime, &second));
            if (a, b) != (1, 0) {
                return Err(format!("leaders: companion-a {a}, companion-b {b}"));
            }
            runtime.block_on(async {
                let _ = first.stop().await;
            });
            let took = within(Duration::from_secs(20), || leader(runtime, &second) == 1)
                .ok_or("companion-b never took the Lease over")?;
            say!("e2e: companion-b took the Lease over {took:?} after companion-a stopped");
            let (holder, _) = succeeded(
                "get lease",
                cluster.kubectl(
                    &[
                        "-n",
                        "bouncer-system",
                        "get",
                        "lease",
                        "bouncer-companion",
                        "-o",
                        "jsonpath={.spec.holderIdentity}",
                    ],
                    None,
                ),
            )?;
            if holder != "companion-b" {
                return Err(format!("the Lease is held by {holder:?}"));
            }
            succeeded(
                "create namespace",
                cluster.kubectl(&["create", "namespace", "auto-c"], None),
            )?;
            within(Duration::from_secs(20), || {
                policies(cluster, "auto-c").contains("bouncer-allow-dns")
            })
            .map(drop)
            .ok_or_else(|| "companion-b wrote nothing in auto-c".to_owned())
        })(),
    );

    let _ = cluster.kubectl(
        &[
            "delete",
            "validatingwebhookconfiguration",
            "bouncer-companion",
        ],
        None,
    );
    runtime.block_on(async {
        let _ = second.stop().await;
    });
}
