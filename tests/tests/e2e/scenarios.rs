//! What a platform team does with bouncer, against the real API server, in order.

use crate::say;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::cluster::Cluster;

/// Collects each scenario's outcome, printing it as it happens.
pub(super) struct Steps {
    failures: Vec<String>,
}

impl Steps {
    pub(super) fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => say!("e2e ok:   {name}"),
            Err(error) => {
                say!("e2e FAIL: {name}\n{error}");
                self.failures.push(format!("{name}:\n{error}"));
            }
        }
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Ok when the command succeeded, with its stdout and stderr.
pub(super) fn succeeded(what: &str, output: Output) -> Result<(String, String), String> {
    let (out, err) = text(&output);
    if output.status.success() {
        Ok((out, err))
    } else {
        Err(format!("`{what}` failed ({}):\n{out}{err}", output.status))
    }
}

/// Ok with stderr when the command failed, as a refused request does.
pub(super) fn refused(what: &str, output: Output) -> Result<String, String> {
    let (out, err) = text(&output);
    if output.status.success() {
        Err(format!(
            "`{what}` was expected to be refused but succeeded:\n{out}{err}"
        ))
    } else {
        Ok(err)
    }
}

pub(super) fn contains(haystack: &str, needle: &str) -> Result<(), String> {
    if haystack.contains(needle) {
        Ok(())
    } else {
        Err(format!("expected to find {needle:?} in:\n{haystack}"))
    }
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/bouncer")
}

pub(super) fn e2e_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e").join(name)
}

pub(super) fn ingress(namespace: &str, name: &str, annotations: &[(&str, &str)]) -> String {
    ingress_of_class(namespace, name, "alb", annotations)
}

/// An Ingress of `class` with `annotations`, routing one host.
pub(super) fn ingress_of_class(
    namespace: &str,
    name: &str,
    class: &str,
    annotations: &[(&str, &str)],
) -> String {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: '{v}'\n"))
        .collect();
    format!(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
{annotations}spec:
  ingressClassName: {class}
  rules:
    - host: app.yourdomain.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: webapp-service
                port:
                  number: 8080
"
    )
}

pub(super) const HTTPS: &[(&str, &str)] = &[
    ("alb.ingress.kubernetes.io/scheme", "internet-facing"),
    (
        "alb.ingress.kubernetes.io/listen-ports",
        r#"[{"HTTPS":443}]"#,
    ),
    (
        "alb.ingress.kubernetes.io/certificate-arn",
        "arn:aws:acm:us-east-1:123456789012:certificate/your-cert-id",
    ),
];

fn with_target_type() -> Vec<(&'static str, &'static str)> {
    let mut annotations = HTTPS.to_vec();
    annotations.insert(1, ("alb.ingress.kubernetes.io/target-type", "ip"));
    annotations
}

/// Runs every scenario; returns the failures.
pub fn run_all(cluster: &Cluster) -> Vec<String> {
    let mut steps = Steps {
        failures: Vec::new(),
    };
    let chart = chart();
    let chart = chart.to_str().expect("utf-8 path");

    steps.check(
        "helm lint",
        succeeded("helm lint", cluster.helm(&["lint", chart])).map(drop),
    );
    steps.check(
        "namespaces and stand-in CRDs are created",
        (|| {
            for ns in ["bouncer-system", "shop", "fixit"] {
                succeeded(
                    "create namespace",
                    cluster.kubectl(&["create", "namespace", ns], None),
                )?;
            }
            let crds = e2e_file("crds.yaml");
            succeeded(
                "apply CRDs",
                cluster.kubectl(&["apply", "-f", crds.to_str().unwrap()], None),
            )?;
            succeeded(
                "wait for CRDs",
                cluster.kubectl(
                    &[
                        "wait",
                        "--for=condition=Established",
                        "crd",
                        "--all",
                        "--timeout=30s",
                    ],
                    None,
                ),
            )
            .map(drop)
        })(),
    );
    super::audit::seed(cluster, &mut steps);
    steps.check(
        "the chart refuses a config that would make bouncer a webhook for ConfigMaps",
        (|| {
            let err = refused(
                "helm template",
                cluster.helm(&[
                    "template",
                    "bouncer",
                    chart,
                    "--set",
                    "config.policies[0].name=x",
                    "--set",
                    "config.policies[0].source=builtin:alb-target-type-ip",
                    "--set",
                    "config.policies[0].match.kinds[0].apiGroups[0]=",
                    "--set",
                    "config.policies[0].match.kinds[0].kinds[0]=ConfigMap",
                ]),
            )?;
            contains(&err, "bouncer must never be a webhook for configmaps")
        })(),
    );
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode("not used by a dry run");
    let modes: [(&str, Vec<String>); 3] = [
        ("generated", vec![]),
        (
            "certManager",
            vec![
                "tls.mode=certManager".into(),
                "serviceMonitor.enabled=true".into(),
                "prometheusRule.enabled=true".into(),
                "grafana.dashboard.enabled=true".into(),
            ],
        ),
        (
            "existingSecret",
            vec![
                "tls.mode=existingSecret".into(),
                "tls.existingSecret.name=my-tls".into(),
                format!("tls.caBundle={ca_b64}"),
            ],
        ),
    ];
    for (mode, sets) in modes {
        steps.check(
            &format!("helm template (tls {mode}) renders objects the API server accepts"),
            (|| {
                let mut args = vec![
                    "template",
                    "bouncer",
                    chart,
                    "--namespace",
                    "bouncer-system",
                ];
                for set in &sets {
                    args.extend(["--set", set]);
                }
                let (rendered, _) = succeeded("helm template", cluster.helm(&args))?;
                let (out, _) = succeeded(
                    "kubectl apply --dry-run=server",
                    cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&rendered)),
                )?;
                for kind in [
                    "deployment.apps",
                    "validatingwebhookconfiguration",
                    "poddisruptionbudget",
                ] {
                    contains(&out, kind)?;
                }
                if mode == "certManager" {
                    contains(
                        &out,
                        "certificate.cert-manager.io/bouncer created (server dry run)",
                    )?;
                    contains(
                        &out,
                        "prometheusrule.monitoring.coreos.com/bouncer created (server dry run)",
                    )?;
                    contains(&out, "configmap/bouncer-dashboard created (server dry run)")?;
                }
                Ok(())
            })(),
        );
    }

    steps.check(
        "the pod probes a plain health port, sleeps in preStop, sizes instance memory from its limit, and mounts a client CA",
        (|| {
            let args = [
                "template", "bouncer", chart, "--namespace", "bouncer-system",
                "--set", "server.clientCASecret=apiserver-client-ca",
            ];
            let (rendered, _) = succeeded("helm template", cluster.helm(&args))?;
            succeeded(
                "kubectl apply --dry-run=server",
                cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&rendered)),
            )?;
            let deployment = rendered
                .split("\n---")
                .filter_map(|doc| serde_yaml::from_str::<serde_json::Value>(doc).ok())
                .find(|doc| doc["kind"] == "Deployment")
                .ok_or("no Deployment rendered")?;
            let pod = &deployment["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            let expect = |what: &str, got: &serde_json::Value, want: serde_json::Value| {
                if *got == want { Ok(()) } else { Err(format!("{what}: got {got}, want {want}")) }
            };
            expect("liveness port", &container["livenessProbe"]["httpGet"]["port"], "health".into())?;
            expect("readiness scheme", &container["readinessProbe"]["httpGet"]["scheme"], "HTTP".into())?;
            expect("preStop sleep", &container["lifecycle"]["preStop"]["sleep"]["seconds"], 5.into())?;
            expect("grace period", &pod["terminationGracePeriodSeconds"], 30.into())?;
            let memory_limit = container["env"]
                .as_array()
                .and_then(|env| env.iter().find(|e| e["name"] == "BOUNCER_MEMORY_LIMIT"))
                .ok_or("no BOUNCER_MEMORY_LIMIT")?;
            expect(
                "memory limit source",
                &memory_limit["valueFrom"]["resourceFieldRef"]["resource"],
                "limits.memory".into(),
            )?;
            let args = container["args"].to_string();
            contains(&args, "--health-addr=0.0.0.0:8080")?;
            contains(&args, "--client-ca=/etc/bouncer/client-ca/ca.crt")?;
            Ok(())
        })(),
    );

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut values = std::fs::read_to_string(e2e_file("values-e2e.yaml")).expect("values");
    // A custom policy from a real registry joins the chart's policies.
    let shipped = super::custom_policy::ship();
    match &shipped {
        Some(shipped) => values.push_str(&shipped.entry),
        None => say!(
            "e2e skip: no OCI registry on this machine; the custom-policy scenario does not run"
        ),
    }
    // The server runs the same policies the chart registers for.
    let policies = values.replacen("config:\n", "", 1).replace("\n  ", "\n");
    let policies = match &shipped {
        Some(shipped) => format!("registry:\n  plainHttp: [\"{}\"]\n{policies}", shipped.host),
        None => policies,
    };
    let kubeconfig = cluster.kubeconfig.clone();
    let server = runtime.block_on(bouncer_tests::server::start(Some(&policies), |o| {
        o.addr = "127.0.0.1:0".parse().expect("address");
        o.kube = bouncer::server::KubeAccess::Kubeconfig(kubeconfig);
    }));
    let url = format!("https://{}", server.addr);
    let ca = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
    let values_dir = tempfile::tempdir().expect("a temporary directory");
    let values_file = values_dir.path().join("values.yaml");
    std::fs::write(&values_file, &values).expect("values written");
    let plain_http = shipped.as_ref().map_or_else(
        || "registry.plainHttp=null".to_owned(),
        |s| format!("registry.plainHttp={{{}}}", s.host),
    );
    steps.check(
        "helm install registers bouncer (webhook.url) and stores every object",
        (|| {
            succeeded(
                "helm install",
                cluster.helm(&[
                    "install",
                    "bouncer",
                    chart,
                    "--namespace",
                    "bouncer-system",
                    "-f",
                    values_file.to_str().unwrap(),
                    "--set",
                    &format!("webhook.url={url}"),
                    "--set",
                    &format!("tls.caBundle={ca}"),
                    "--set",
                    &plain_http,
                    "--set",
                    "audit.enabled=true",
                ]),
            )?;
            let out = bouncer_webhook(cluster)?;
            contains(&out, "\"ingresses\"")?;
            contains(&out, &format!("{url}/validate"))?;
            if out.contains("\"configmaps\"") || out.contains("\"leases\"") {
                return Err(format!("the webhook governs kinds it must not:\n{out}"));
            }
            succeeded(
                "get deployment",
                cluster.kubectl(
                    &["-n", "bouncer-system", "get", "deployment", "bouncer"],
                    None,
                ),
            )
            .map(drop)
        })(),
    );

    steps.check(
        "an ALB Ingress without target-type is refused with bouncer's message",
        (|| {
            let manifest = ingress("shop", "storefront", HTTPS);
            // The API server picks up new webhook configurations within a second or two.
            let deadline = Instant::now() + Duration::from_secs(20);
            let err = loop {
                let output = cluster.kubectl(&["apply", "-f", "-"], Some(&manifest));
                if !output.status.success() || Instant::now() > deadline {
                    break refused("kubectl apply", output)?;
                }
                let _ = cluster.kubectl(&["-n", "shop", "delete", "ingress", "storefront"], None);
                std::thread::sleep(Duration::from_millis(500));
            };
            say!("kubectl said: {}", err.trim());
            contains(&err, "denied the request: alb-target-type-ip: Ingress shop/storefront is handled by the AWS Load Balancer Controller")?;
            contains(&err, "set the annotation `alb.ingress.kubernetes.io/target-type: ip`")?;
            refused("get", cluster.kubectl(&["-n", "shop", "get", "ingress", "storefront"], None)).map(drop)
        })(),
    );

    steps.check(
        "the guide's ALB Ingress is admitted and stored",
        (|| {
            let manifest = ingress("shop", "webapp-ingress", &with_target_type());
            let (out, _) = succeeded(
                "kubectl apply",
                cluster.kubectl(&["apply", "-f", "-"], Some(&manifest)),
            )?;
            contains(&out, "ingress.networking.k8s.io/webapp-ingress created")?;
            succeeded(
                "get",
                cluster.kubectl(&["-n", "shop", "get", "ingress", "webapp-ingress"], None),
            )
            .map(drop)
        })(),
    );

    steps.check(
        "in mutate mode the stored Ingress carries target-type: ip",
        (|| {
            let manifest = ingress("fixit", "patched", &[]);
            let (_, err) = succeeded(
                "kubectl apply",
                cluster.kubectl(&["apply", "-f", "-"], Some(&manifest)),
            )?;
            contains(
                &err,
                "Warning: alb-fix: Ingress fixit/patched: bouncer added",
            )?;
            let (stored, _) = succeeded(
                "get",
                cluster.kubectl(
                    &["-n", "fixit", "get", "ingress", "patched", "-o",
                      r"jsonpath={.metadata.annotations.alb\.ingress\.kubernetes\.io/target-type}"],
                    None,
                ),
            )?;
            if stored == "ip" {
                Ok(())
            } else {
                Err(format!("stored target-type is {stored:?}"))
            }
        })(),
    );

    if shipped.is_some() {
        steps.check(
            "a custom policy pulled from a registry by digest refuses a CronJob",
            (|| {
                let (config, _) = succeeded(
                    "get configmap",
                    cluster.kubectl(
                        &[
                            "-n",
                            "bouncer-system",
                            "get",
                            "configmap",
                            "bouncer",
                            "-o",
                            r"jsonpath={.data.policies\.yaml}",
                        ],
                        None,
                    ),
                )?;
                contains(&config, "/team/cronjob-rules@sha256:")?;
                contains(&config, "plainHttp")?;
                let err = refused(
                    "kubectl create cronjob",
                    cluster.kubectl(
                        &[
                            "-n",
                            "shop",
                            "create",
                            "cronjob",
                            "nightly",
                            "--image=busybox",
                            "--schedule=0 0 * * *",
                        ],
                        None,
                    ),
                )?;
                say!("kubectl said: {}", err.trim());
                contains(
                    &err,
                    "denied the request: team-cronjobs: legacy 0.1.1 policy refuses nightly",
                )
            })(),
        );
    }

    steps.check(
        "a monitor-mode violation is admitted and kubectl prints the warning",
        (|| {
            let service = "apiVersion: v1\nkind: Service\nmetadata: {name: legacy-lb, namespace: shop}\nspec:\n  type: LoadBalancer\n  selector: {app: legacy}\n  ports: [{port: 80}]\n";
            let (out, err) = succeeded("kubectl apply", cluster.kubectl(&["apply", "-f", "-"], Some(service)))?;
            contains(&out, "service/legacy-lb created")?;
            contains(&err, "Warning: aws-lb-controller-only: Service shop/legacy-lb is a LoadBalancer for the legacy in-tree AWS provider")
        })(),
    );

    steps.check(
        "--dry-run=server is judged the same and stores nothing",
        (|| {
            let bad = ingress("shop", "dry-bad", HTTPS);
            let err = refused(
                "dry-run apply",
                cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&bad)),
            )?;
            contains(&err, "alb-target-type-ip: Ingress shop/dry-bad")?;
            let good = ingress("shop", "dry-good", &with_target_type());
            let (out, _) = succeeded(
                "dry-run apply",
                cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&good)),
            )?;
            contains(
                &out,
                "ingress.networking.k8s.io/dry-good created (server dry run)",
            )?;
            refused(
                "get",
                cluster.kubectl(&["-n", "shop", "get", "ingress", "dry-good"], None),
            )
            .map(drop)
        })(),
    );

    namespace_scenarios(cluster, &mut steps);
    super::ingress_classes::scenarios(cluster, &runtime, &server, &mut steps);
    super::audit::scenarios(cluster, &mut steps);
    super::ingress_groups::scenarios(cluster, &mut steps);
    super::gateway_versions::scenarios(cluster, &mut steps);
    super::rollout::scenarios(cluster, &runtime, &mut steps);
    super::companion::scenarios(cluster, &runtime, &mut steps);
    steps.check(
        "/readyz and /metrics report the NetworkPolicy cache synced and fresh",
        (|| {
            let ready = runtime.block_on(server.get_text("/readyz"));
            contains(
                &ready,
                &format!(
                    "ready: {} policies loaded",
                    if shipped.is_some() { 7 } else { 6 }
                ),
            )?;
            let metrics = runtime.block_on(server.get_text("/metrics"));
            contains(
                &metrics,
                r#"bouncer_context_cache_synced{kind="networking.k8s.io/v1 NetworkPolicy"} 1"#,
            )?;
            contains(
                &metrics,
                r#"bouncer_context_cache_stale{kind="networking.k8s.io/v1 NetworkPolicy"} 0"#,
            )
        })(),
    );

    runtime.block_on(async {
        let _ = server.stop().await;
    });
    steps.check(
        "with bouncer down and failurePolicy Fail, governed creates are refused and kube-system still works",
        (|| {
            let manifest = ingress("shop", "while-down", &with_target_type());
            let err = refused("kubectl apply", cluster.kubectl(&["apply", "-f", "-"], Some(&manifest)))?;
            contains(&err, "failed calling webhook")?;
            let exempt = ingress("kube-system", "while-down", &[]);
            let (out, _) = succeeded("kube-system apply", cluster.kubectl(&["apply", "-f", "-"], Some(&exempt)))?;
            contains(&out, "created")
        })(),
    );

    steps.check(
        "helm upgrade keeps the generated certificate; with failurePolicy Ignore and bouncer down, governed creates are admitted",
        (|| {
            let secret = || {
                succeeded(
                    "get secret",
                    cluster.kubectl(
                        &["-n", "bouncer-system", "get", "secret", "bouncer-tls", "-o",
                          r"jsonpath={.data.tls\.crt}"],
                        None,
                    ),
                )
                .map(|(out, _)| out)
            };
            let before = secret()?;
            succeeded(
                "helm upgrade",
                cluster.helm(&[
                    "upgrade",
                    "bouncer",
                    chart,
                    "--namespace",
                    "bouncer-system",
                    "--reuse-values",
                    "--set",
                    "webhook.failurePolicy=Ignore",
                ]),
            )?;
            let (out, _) = succeeded(
                "get webhook",
                cluster.kubectl(
                    &[
                        "get",
                        "validatingwebhookconfiguration",
                        "bouncer",
                        "-o",
                        "jsonpath={.webhooks[0].failurePolicy}",
                    ],
                    None,
                ),
            )?;
            if out != "Ignore" {
                return Err(format!("failurePolicy is {out:?} after the upgrade"));
            }
            if before.is_empty() || secret()? != before {
                return Err("helm upgrade replaced the generated serving certificate".into());
            }
            let manifest = ingress("shop", "while-down", &with_target_type());
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let output = cluster.kubectl(&["apply", "-f", "-"], Some(&manifest));
                if output.status.success() || Instant::now() > deadline {
                    let (out, _) = succeeded("kubectl apply", output)?;
                    return contains(&out, "created");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })(),
    );
    super::chart_pod::scenarios(cluster, &mut steps);
    drop(shipped);
    steps.failures
}

fn deployment(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: nginx}}]
"
    )
}

fn default_deny(namespace: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny, namespace: {namespace}}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress, Egress]
"
    )
}

/// A ValidatingWebhookConfiguration `name` sending `server` the reviews that
/// `rules` (YAML flow maps, one per line) select in the namespaces
/// `namespace_selector` (a YAML flow map) selects.
/// The release's ValidatingWebhookConfiguration, as JSON.
pub(super) fn bouncer_webhook(cluster: &Cluster) -> Result<String, String> {
    let what = "kubectl get validatingwebhookconfiguration bouncer";
    let args = [
        "get",
        "validatingwebhookconfiguration",
        "bouncer",
        "-o",
        "json",
    ];
    succeeded(what, cluster.kubectl(&args, None)).map(|(out, _)| out)
}

pub(super) fn webhook_of(
    server: &bouncer_tests::server::TestServer,
    name: &str,
    namespace_selector: &str,
    rules: &[&str],
) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
    let rules: String = rules.iter().map(|r| format!("      - {r}\n")).collect();
    format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {name}}}
webhooks:
  - name: {name}.bouncer.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig:
      url: https://{}/validate
      caBundle: {ca}
    namespaceSelector: {namespace_selector}
    rules:
{rules}",
        server.addr
    )
}

/// Applies `manifest` until it is admitted or `within` passes; the elapsed time.
pub(super) fn admitted_within(
    cluster: &Cluster,
    manifest: &str,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let output = cluster.kubectl(&["apply", "-f", "-"], Some(manifest));
        if output.status.success() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            let (_, err) = text(&output);
            return Err(format!("still refused after {within:?}: {err}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Context lookups from bouncer's watch caches: the default-deny rule.
fn namespace_scenarios(cluster: &Cluster, steps: &mut Steps) {
    steps.check(
        "RBAC grants get/list/watch on exactly the declared context kinds",
        (|| {
            let (out, _) = succeeded(
                "get clusterrole",
                cluster.kubectl(
                    &[
                        "get",
                        "clusterrole",
                        "bouncer-context",
                        "-o",
                        "jsonpath={.rules}",
                    ],
                    None,
                ),
            )?;
            contains(&out, r#""resources":["networkpolicies"]"#)?;
            // A custom kind whose plural is its own name.
            contains(&out, r#""resources":["ingressclassparams"]"#)?;
            contains(&out, r#""verbs":["get","list","watch"]"#)
        })(),
    );
    steps.check(
        "a Deployment in a namespace without a default-deny NetworkPolicy is refused, then admitted once one exists",
        (|| {
            succeeded("create namespace", cluster.kubectl(&["create", "namespace", "team-a"], None))?;
            let app = deployment("team-a", "web");
            // The first lookups may wait for the cache to sync after install.
            let deadline = Instant::now() + Duration::from_secs(20);
            let err = loop {
                let err = refused("apply deployment", cluster.kubectl(&["apply", "-f", "-"], Some(&app)))?;
                if err.contains("has no default-deny NetworkPolicy") || Instant::now() > deadline {
                    break err;
                }
                std::thread::sleep(Duration::from_millis(250));
            };
            say!("kubectl said: {}", err.trim());
            contains(&err, "denied the request: default-deny-networkpolicy: Deployment team-a/web cannot be created: namespace `team-a` has no default-deny NetworkPolicy")?;
            contains(&err, "create one first: {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy")?;
            succeeded("apply NetworkPolicy", cluster.kubectl(&["apply", "-f", "-"], Some(&default_deny("team-a"))))?;
            let took = admitted_within(cluster, &app, Duration::from_secs(5))?;
            say!("the Deployment was admitted {took:?} after the NetworkPolicy was created");
            Ok(())
        })(),
    );
    steps.check(
        "deleting the namespace's last default-deny NetworkPolicy is refused",
        (|| {
            let err = refused(
                "delete NetworkPolicy",
                cluster.kubectl(&["-n", "team-a", "delete", "networkpolicy", "default-deny"], None),
            )?;
            contains(&err, "NetworkPolicy team-a/default-deny cannot be deleted: it is the last default-deny NetworkPolicy of namespace `team-a`")?;
            succeeded("get", cluster.kubectl(&["-n", "team-a", "get", "networkpolicy", "default-deny"], None)).map(drop)
        })(),
    );
    steps.check(
        "after a kube-apiserver restart, lookups keep working and the caches resume",
        (|| {
            cluster.restart_apiserver();
            // The cache still knows team-a's policy: its deletion stays refused.
            let err = refused(
                "delete NetworkPolicy",
                cluster.kubectl(
                    &["-n", "team-a", "delete", "networkpolicy", "default-deny"],
                    None,
                ),
            )?;
            contains(&err, "is the last default-deny NetworkPolicy")?;
            // And it sees what changes after the restart.
            succeeded(
                "create namespace",
                cluster.kubectl(&["create", "namespace", "team-b"], None),
            )?;
            let app = deployment("team-b", "api");
            let err = refused(
                "apply deployment",
                cluster.kubectl(&["apply", "-f", "-"], Some(&app)),
            )?;
            contains(&err, "namespace `team-b` has no default-deny NetworkPolicy")?;
            succeeded(
                "apply NetworkPolicy",
                cluster.kubectl(&["apply", "-f", "-"], Some(&default_deny("team-b"))),
            )?;
            let took = admitted_within(cluster, &app, Duration::from_secs(15))?;
            say!("after the restart, the new NetworkPolicy was seen in {took:?}");
            Ok(())
        })(),
    );
}
