//! Rolling a rule out against the real API server: a second `bouncer serve`,
//! the webhook of the `rollout` and `platform-exceptions` namespaces, runs an
//! enforced require-irsa with a stricter shadow candidate, two hostile
//! candidates (one loops, one hoards memory), and honours PolicyExceptions
//! (the CRD the chart installed) written in `platform-exceptions`.

use std::time::{Duration, Instant, SystemTime};

use bouncer_tests::metric;
use bouncer_tests::server::TestServer;

use super::cluster::Cluster;
use super::scenarios::{Steps, contains, refused, succeeded, webhook_of};
use crate::say;

/// Answers kubectl may wait for; a review that waited for a looping candidate
/// (stopped by the wall clock after 8 × 500 ms) would pass it twice over.
const GENEROUS: Duration = Duration::from_secs(2);

fn config() -> String {
    let hostile = bouncer_tests::HOSTILE_POLICY;
    let deployments = "      kinds: [{apiGroups: [apps], kinds: [Deployment]}]\n      namespaces: {include: [rollout]}\n";
    format!(
        "exceptions:
  namespaces: [platform-exceptions]
  maxDuration: 30d
  hint: \"#platform-help takes PolicyException requests\"
policies:
  - name: require-irsa
    source: builtin:require-irsa
    match:
{deployments}    settings: {{requireServiceAccountIn: []}}
    shadow:
      settings: {{requireServiceAccountIn: [rollout]}}
  - name: looper
    source: {hostile}
    settings: {{behaviour: allow}}
    match:
{deployments}    shadow:
      settings: {{behaviour: loop}}
      timeout: 500ms
  - name: hoarder
    source: {hostile}
    settings: {{behaviour: allow}}
    match:
{deployments}    shadow:
      settings: {{behaviour: alloc}}
      memory: 32Mi
"
    )
}

fn webhook(server: &TestServer) -> String {
    webhook_of(
        server,
        "bouncer-rollout",
        "{matchLabels: {bouncer-rollout: \"on\"}}",
        &[
            "{apiGroups: [apps], apiVersions: [\"*\"], resources: [deployments], operations: [CREATE, UPDATE]}",
            "{apiGroups: [bouncer.dev], apiVersions: [\"*\"], resources: [policyexceptions], operations: [CREATE, UPDATE]}",
        ],
    )
}

/// A Deployment in `rollout`; `env` adds container environment lines.
fn deployment(name: &str, env: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: rollout}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: nginx
{env}"
    )
}

const STATIC_KEYS: &str =
    "          env:\n            - {name: AWS_ACCESS_KEY_ID, value: AKIAIOSFODNN7EXAMPLE}\n";

fn exception(namespace: &str, name: &str, reason: Option<&str>, expires: SystemTime) -> String {
    let reason = reason.map_or_else(String::new, |r| format!("  reason: {r:?}\n"));
    format!(
        "apiVersion: bouncer.dev/v1alpha1
kind: PolicyException
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  policies: [require-irsa]
  match:
    kinds: [{{apiGroups: [apps], kinds: [Deployment]}}]
    namespaces: {{include: [rollout]}}
    names: [legacy-keys]
{reason}  ticket: PLAT-7
  expires: {}
",
        humantime::format_rfc3339_seconds(expires)
    )
}

/// A file with require-irsa (`requireServiceAccountIn` as given) over the
/// `rollout` namespace, honouring exceptions as the server does.
fn cli_config(require_service_account_in: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "bouncer-e2e-rollout-{}-{}.yaml",
        std::process::id(),
        require_service_account_in.len()
    ));
    let text = format!(
        "exceptions:\n  namespaces: [platform-exceptions]\n  maxDuration: 30d\npolicies:\n  - name: require-irsa\n    source: builtin:require-irsa\n    match:\n      namespaces: {{include: [rollout]}}\n    settings: {{requireServiceAccountIn: {require_service_account_in}}}\n"
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// `bouncer audit` of the `rollout` namespace, comparing with `candidate` when given.
fn audit(
    cluster: &Cluster,
    config: &std::path::Path,
    candidate: Option<&std::path::Path>,
) -> std::process::Output {
    let mut command = std::process::Command::new(bouncer_tests::bouncer_binary());
    command
        .arg("audit")
        .arg("--config")
        .arg(config)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args([
            "--color",
            "never",
            "-q",
            "-n",
            "rollout",
            "--context-timeout",
            "20",
        ]);
    if let Some(candidate) = candidate {
        command.arg("--compare").arg(candidate);
    }
    command.output().expect("bouncer audit runs")
}

fn apply(cluster: &Cluster, manifest: &str) -> std::process::Output {
    cluster.kubectl(&["apply", "-f", "-"], Some(manifest))
}

pub(super) fn scenarios(cluster: &Cluster, runtime: &tokio::runtime::Runtime, steps: &mut Steps) {
    let kubeconfig = cluster.kubeconfig.clone();
    let server = runtime.block_on(bouncer_tests::server::start(Some(&config()), |o| {
        o.kube = bouncer::server::KubeAccess::Kubeconfig(kubeconfig);
    }));
    steps.check(
        "a second bouncer with shadows and exceptions is the webhook of two labelled namespaces",
        (|| {
            for ns in ["rollout", "platform-exceptions"] {
                succeeded(
                    "create namespace",
                    cluster.kubectl(&["create", "namespace", ns], None),
                )?;
                succeeded(
                    "label namespace",
                    cluster.kubectl(&["label", "namespace", ns, "bouncer-rollout=on"], None),
                )?;
            }
            succeeded("apply webhook", apply(cluster, &webhook(&server)))?;
            // In place once the API server sends it what it refuses (a second or two).
            let probe = deployment("probe", STATIC_KEYS);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let output =
                    cluster.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&probe));
                if !output.status.success() {
                    return refused("dry-run apply", output)
                        .and_then(|err| contains(&err, "require-irsa"));
                }
                if Instant::now() > deadline {
                    return Err("the API server never sent the rollout webhook a review".into());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })(),
    );

    steps.check(
        "with a shadow that denies more and hostile candidates, kubectl writes succeed as before, promptly",
        (|| {
            for i in 1..=3 {
                let name = format!("plain-{i}");
                let (out, err) = succeeded("kubectl apply", apply(cluster, &deployment(&name, "")))?;
                contains(&out, &format!("deployment.apps/{name} created"))?;
                if err.contains("Warning") {
                    return Err(format!("a candidate spoke in the answer: {err}"));
                }
            }
            // Timed once the webhook is known to be in place.
            for i in 4..=6 {
                let started = Instant::now();
                succeeded("kubectl apply", apply(cluster, &deployment(&format!("plain-{i}"), "")))?;
                let took = started.elapsed();
                say!("e2e: kubectl apply with three shadowed policies took {took:?}");
                if took > GENEROUS {
                    return Err(format!("kubectl apply took {took:?}, more than {GENEROUS:?}"));
                }
            }
            Ok(())
        })(),
    );

    steps.check(
        "the disagreement metric, /readyz and the bouncer-shadow report name the objects the candidate would deny",
        (|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            let newly_denied = r#"bouncer_shadow_disagreements_total{policy="require-irsa",kind="Deployment",change="newly-denied"}"#;
            let not_run = |metrics: &str| {
                ["busy", "starved"]
                    .iter()
                    .map(|r| metric(metrics, &format!(r#"bouncer_shadow_evaluations_total{{policy="require-irsa",result="{r}"}}"#)))
                    .sum::<u64>()
            };
            // Each of the six reviews is judged by the candidate, or counted as not run.
            let metrics = loop {
                let metrics = runtime.block_on(server.get_text("/metrics"));
                if metric(&metrics, newly_denied) + not_run(&metrics) >= 6 || Instant::now() > deadline {
                    break metrics;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let judged = metric(&metrics, newly_denied);
            say!("e2e: the candidate judged {judged} of the 6 Deployments; {} reviews were not shadowed", not_run(&metrics));
            if judged < 3 {
                return Err(format!("fewer than 3 newly-denied disagreements:\n{metrics}"));
            }
            for policy in ["looper", "hoarder"] {
                let failed = metric(&metrics, &format!(
                    r#"bouncer_shadow_disagreements_total{{policy="{policy}",kind="Deployment",change="failure"}}"#
                ));
                if failed == 0 {
                    return Err(format!("no failure of {policy}'s candidate counted:\n{metrics}"));
                }
            }
            let ready = runtime.block_on(server.get_text("/readyz"));
            contains(&ready, "policy `require-irsa` is shadowed by builtin:require-irsa: ")?;
            contains(&ready, &format!("disagreed ({judged} newly-denied)"))?;
            // Every disagreement counted is in the report, once it is written (each second here).
            let in_report = |report: &serde_json::Value| -> Vec<String> {
                report["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| {
                        r["policy"] == "require-irsa"
                            && r["result"] == "fail"
                            && r["properties"]["change"] == "newly-denied"
                    })
                    .filter_map(|r| r["resources"][0]["name"].as_str().map(str::to_owned))
                    .filter(|n| n.starts_with("plain-"))
                    .collect()
            };
            let report = loop {
                let output = cluster.kubectl(
                    &["-n", "rollout", "get", "reports.openreports.io", "bouncer-shadow", "-o", "json"],
                    None,
                );
                let report: serde_json::Value =
                    serde_json::from_slice(&output.stdout).unwrap_or_default();
                if in_report(&report).len() as u64 >= judged || Instant::now() > deadline {
                    break report;
                }
                std::thread::sleep(Duration::from_millis(500));
            };
            if report["source"] != "bouncer-shadow" {
                return Err(format!("report source: {}", report["source"]));
            }
            let named = in_report(&report);
            if named.len() as u64 != judged {
                return Err(format!("{judged} disagreements counted, {} in the report:\n{report:#}", named.len()));
            }
            let results = report["results"].as_array().cloned().unwrap_or_default();
            say!("e2e: the bouncer-shadow report holds {} results", results.len());
            Ok(())
        })(),
    );

    steps.check(
        "bouncer audit --compare lists what the candidate would refuse in the cluster, and exits 1",
        (|| {
            let output = audit(cluster, &cli_config("[]"), Some(&cli_config("[rollout]")));
            let out = String::from_utf8_lossy(&output.stdout).into_owned();
            say!("bouncer audit --compare printed:\n{out}");
            if output.status.code() != Some(1) {
                return Err(format!(
                    "exit {:?}:\n{out}{}",
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            let mut settings = insta::Settings::clone_current();
            settings.set_prepend_module_to_snapshot(false);
            settings.set_snapshot_path("snapshots");
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                settings.bind(|| insta::assert_snapshot!("audit-compare", out));
            }))
            .map_err(|_| {
                "the output differs from tests/tests/e2e/snapshots/audit-compare.snap".to_owned()
            })
        })(),
    );

    let expires = SystemTime::now() + Duration::from_secs(40);
    steps.check(
        "a denied Deployment is admitted with a warning once an exception covers it",
        (|| {
            let manifest = deployment("legacy-keys", STATIC_KEYS);
            let err = refused("kubectl apply", apply(cluster, &manifest))?;
            contains(&err, "require-irsa: Deployment rollout/legacy-keys")?;
            contains(&err, "(to ask for an exception: #platform-help takes PolicyException requests)")?;
            succeeded(
                "create exception",
                apply(cluster, &exception("platform-exceptions", "legacy-keys", Some("moves to IRSA next sprint"), expires)),
            )?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let (out, err) = loop {
                let output = apply(cluster, &manifest);
                if output.status.success() || Instant::now() > deadline {
                    break succeeded("kubectl apply", output)?;
                }
                std::thread::sleep(Duration::from_millis(300));
            };
            say!("kubectl said: {}", err.trim());
            contains(&out, "deployment.apps/legacy-keys created")?;
            contains(&err, "Warning: require-irsa: allowed by PolicyException platform-exceptions/legacy-keys (expires ")?;
            contains(&err, "ticket PLAT-7): Deployment rollout/legacy-keys")?;
            let metrics = runtime.block_on(server.get_text("/metrics"));
            contains(&metrics, r#"bouncer_exceptions_active{policy="require-irsa"} 1"#)?;
            // An audit reports the excepted object as such.
            let output = audit(cluster, &cli_config("[]"), None);
            let out = String::from_utf8_lossy(&output.stdout);
            contains(&out, "SKIP  Deployment/rollout/legacy-keys require-irsa: excepted by PolicyException platform-exceptions/legacy-keys (expires ")?;
            contains(&metrics, r#"bouncer_exceptions_expiring_soon{policy="require-irsa"} 1"#)
        })(),
    );

    steps.check(
        "exceptions outside platform-exceptions, without a reason or lasting too long are refused",
        (|| {
            let soon = SystemTime::now() + Duration::from_secs(3600);
            let err = refused(
                "create",
                apply(
                    cluster,
                    &exception("rollout", "self-service", Some("we said so"), soon),
                ),
            )?;
            contains(
                &err,
                "exceptions are honoured only in `platform-exceptions`",
            )?;
            let err = refused(
                "create",
                apply(
                    cluster,
                    &exception("platform-exceptions", "no-reason", None, soon),
                ),
            )?;
            contains(&err, "reason")?;
            let err = refused(
                "create",
                apply(
                    cluster,
                    &exception("platform-exceptions", "empty-reason", Some(""), soon),
                ),
            )?;
            contains(&err, "reason")?;
            let year = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
            let err = refused(
                "create",
                apply(
                    cluster,
                    &exception("platform-exceptions", "forever", Some("r"), year),
                ),
            )?;
            contains(&err, "is more than 30 days from now")
        })(),
    );

    steps.check(
        "an expired exception no longer applies, and the denial says so",
        (|| {
            let wait = expires
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                + Duration::from_secs(1);
            say!("e2e: waiting {wait:?} for the exception to expire");
            std::thread::sleep(wait);
            // Created anew: require-irsa lets an update keep what was already there.
            succeeded(
                "delete",
                cluster.kubectl(
                    &["-n", "rollout", "delete", "deployment", "legacy-keys"],
                    None,
                ),
            )?;
            let err = refused(
                "kubectl apply",
                apply(cluster, &deployment("legacy-keys", STATIC_KEYS)),
            )?;
            contains(
                &err,
                "PolicyException platform-exceptions/legacy-keys (expires ",
            )?;
            contains(&err, "has expired and no longer applies")
        })(),
    );

    let _ = cluster.kubectl(
        &[
            "delete",
            "validatingwebhookconfiguration",
            "bouncer-rollout",
        ],
        None,
    );
    runtime.block_on(async {
        let _ = server.stop().await;
    });
}
