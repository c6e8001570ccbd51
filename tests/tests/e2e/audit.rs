//! `bouncer audit` against the real API server: objects stored before the
//! webhook existed are found, in text and JSON, page by page; reports are
//! written, follow a fix and a namespace deletion; a kind the cluster does not
//! serve, an object a policy cannot read and a kind the audit may not list are
//! each reported while the rest is audited.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::cluster::Cluster;
use super::scenarios::{Steps, contains, e2e_file, succeeded};
use crate::say;

const NAMESPACES: [&str; 6] = ["-n", "audit-a", "-n", "audit-b", "-n", "audit-gone"];

/// Stores the objects to audit; runs before bouncer is the webhook.
pub fn seed(cluster: &Cluster, steps: &mut Steps) {
    let seed = e2e_file("audit-seed.yaml");
    steps.check(
        "objects to audit are stored before bouncer is the webhook",
        succeeded(
            "apply",
            cluster.kubectl(&["apply", "-f", seed.to_str().unwrap()], None),
        )
        .map(drop),
    );
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn exit_code(output: &Output, want: i32) -> Result<(), String> {
    let (out, err) = text(output);
    if output.status.code() == Some(want) {
        Ok(())
    } else {
        Err(format!(
            "exit code {:?}, want {want}:\n{out}\n{err}",
            output.status.code()
        ))
    }
}

struct Audit {
    bin: PathBuf,
    config: PathBuf,
}

impl Audit {
    fn run(&self, kubeconfig: &Path, extra: &[&str]) -> Output {
        std::process::Command::new(&self.bin)
            .arg("audit")
            .arg("--config")
            .arg(&self.config)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--color",
                "never",
                "--page-size",
                "2",
                "--context-timeout",
                "20",
            ])
            .args(extra)
            .output()
            .expect("bouncer audit runs")
    }
}

fn report(cluster: &Cluster, namespace: &str) -> Result<serde_json::Value, String> {
    let (out, _) = succeeded(
        "get report",
        cluster.kubectl(
            &[
                "-n",
                namespace,
                "get",
                "reports.openreports.io",
                "bouncer-audit",
                "-o",
                "json",
            ],
            None,
        ),
    )?;
    serde_json::from_str(&out).map_err(|e| format!("report is not JSON: {e}\n{out}"))
}

fn names_in(report: &serde_json::Value) -> Vec<String> {
    report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} {} {}",
                r["resources"][0]["name"].as_str().unwrap_or(""),
                r["policy"].as_str().unwrap_or(""),
                r["result"].as_str().unwrap_or("")
            )
        })
        .collect()
}

pub fn scenarios(cluster: &Cluster, steps: &mut Steps) {
    let audit = Audit {
        bin: bouncer_tests::bouncer_binary(),
        config: e2e_file("audit-policies.yaml"),
    };
    let admin = cluster.kubeconfig.clone();

    steps.check(
        "bouncer audit finds what was stored before the webhook, page by page, and exits 1",
        (|| {
            let output = audit.run(&admin, &NAMESPACES);
            let (out, err) = text(&output);
            say!("bouncer audit printed:\n{out}");
            exit_code(&output, 1)?;
            contains(&out, "DENY  Ingress/audit-a/bad alb-target-type-ip: Ingress audit-a/bad is handled by the AWS Load Balancer Controller")?;
            contains(&out, "DENY  Service/audit-b/nlb-instance alb-target-type-ip: Service audit-b/nlb-instance is handled by the AWS Load Balancer Controller")?;
            contains(&out, "DENY  Ingress/audit-gone/doomed alb-target-type-ip:")?;
            contains(&out, "WARN  Ingress/audit-a/plain ingress-tls: Ingress audit-a/plain serves no HTTPS")?;
            contains(&out, "ERROR SecurityGroupPolicy/audit-a/unreadable security-group-policy:")?;
            contains(&out, "SKIP  Gateway.gateway.networking.k8s.io: the cluster does not serve this kind, which alb-target-type-ip, ingress-tls, gateway-ownership govern (is its CRD installed?); skipped")?;
            contains(&out, "14 objects of 3 kinds audited against 4 policies: 3 denied, 1 with warnings, 9 clean, 1 not judged (policy errors)")?;
            if out.contains("Ingress/audit-a/good") || out.contains("Service/audit-b/svc-") {
                return Err(format!("compliant objects are listed:\n{out}"));
            }
            // Eight Services in pages of two: the progress counts up to the total.
            contains(&err, "audit: Service in audit-b: 2/8")?;
            contains(&err, "audit: Service in audit-b: 8/8")?;
            contains(&err, "audit metrics: objects=14")?;
            contains(&err, "violations_by_policy=alb-target-type-ip=3,ingress-tls=2")
        })(),
    );

    steps.check(
        "bouncer audit -o json gives every finding with its object, result and the run's metrics",
        (|| {
            let output = audit.run(&admin, &[&NAMESPACES[..], &["-o", "json", "-q"]].concat());
            exit_code(&output, 1)?;
            let (out, _) = text(&output);
            let json: serde_json::Value =
                serde_json::from_str(&out).map_err(|e| format!("not JSON: {e}\n{out}"))?;
            let results = json["results"].as_array().ok_or("no results")?;
            let find = |name: &str, policy: &str| {
                results
                    .iter()
                    .find(|r| r["name"] == name && r["policy"] == policy)
                    .cloned()
            };
            let bad = find("bad", "alb-target-type-ip").ok_or("no result for audit-a/bad")?;
            if bad["result"] != "fail"
                || bad["kind"] != "Ingress"
                || bad["namespace"] != "audit-a"
                || bad["uid"].as_str().is_none()
            {
                return Err(format!("unexpected result for bad: {bad}"));
            }
            let plain = find("plain", "ingress-tls").ok_or("no result for plain")?;
            if plain["result"] != "warn" || plain["mode"] != "monitor" {
                return Err(format!("unexpected result for plain: {plain}"));
            }
            let unreadable =
                find("unreadable", "security-group-policy").ok_or("no result for unreadable")?;
            if unreadable["result"] != "error" {
                return Err(format!("unexpected result for unreadable: {unreadable}"));
            }
            let summary = &json["summary"];
            if summary["objects"] != 14
                || summary["denied"] != 3
                || summary["warned"] != 1
                || summary["failed"] != 1
            {
                return Err(format!("summary: {summary}"));
            }
            let metrics = &json["metrics"];
            if metrics["objectsByKind"]["Service"] != 8
                || metrics["pages"].as_u64().unwrap_or(0) < 8
            {
                return Err(format!("metrics: {metrics}"));
            }
            Ok(())
        })(),
    );

    steps.check(
        "bouncer audit --write-reports writes one Report per namespace, failures with their objects",
        (|| {
            let output = audit.run(&admin, &[&NAMESPACES[..], &["--write-reports", "-q"]].concat());
            exit_code(&output, 1)?;
            let (_, err) = text(&output);
            contains(&err, "reports: 3 written, 0 stale deleted")?;
            let a = report(cluster, "audit-a")?;
            let results = names_in(&a);
            for want in ["bad alb-target-type-ip fail", "plain ingress-tls warn", "unreadable security-group-policy error"] {
                if !results.iter().any(|r| r == want) {
                    return Err(format!("audit-a's report lacks `{want}`: {results:?}"));
                }
            }
            if a["summary"]["fail"] != 1 || a["summary"]["pass"].as_u64().unwrap_or(0) < 3 || a["source"] != "bouncer" {
                return Err(format!("audit-a's report: {}", a["summary"]));
            }
            let b = report(cluster, "audit-b")?;
            if names_in(&b) != ["nlb-instance alb-target-type-ip fail"] {
                return Err(format!("audit-b's report: {:?}", names_in(&b)));
            }
            Ok(())
        })(),
    );

    steps.check(
        "a kind the audit may not list is reported, and the other kinds are audited",
        (|| {
            let kubeconfig = limited_kubeconfig(cluster)?;
            let output = audit.run(&kubeconfig, &NAMESPACES);
            let (out, _) = text(&output);
            exit_code(&output, 2)?;
            contains(&out, "ERROR SecurityGroupPolicy.vpcresources.k8s.aws in audit-a: forbidden: bouncer may not list securitygrouppolicies")?;
            contains(&out, "DENY  Ingress/audit-a/bad alb-target-type-ip:")?;
            contains(&out, "DENY  Service/audit-b/nlb-instance alb-target-type-ip:")
        })(),
    );

    steps.check(
        "a fixed object's result is gone from the next run's Report",
        (|| {
            succeeded(
                "annotate",
                cluster.kubectl(
                    &[
                        "-n",
                        "audit-a",
                        "annotate",
                        "ingress",
                        "bad",
                        "alb.ingress.kubernetes.io/target-type=ip",
                    ],
                    None,
                ),
            )?;
            let output = audit.run(
                &admin,
                &[&NAMESPACES[..], &["--write-reports", "-q"]].concat(),
            );
            exit_code(&output, 1)?;
            let a = report(cluster, "audit-a")?;
            let results = names_in(&a);
            if results.iter().any(|r| r.starts_with("bad ")) || a["summary"]["fail"] != 0 {
                return Err(format!(
                    "the fixed Ingress is still reported: {results:?} {}",
                    a["summary"]
                ));
            }
            Ok(())
        })(),
    );

    steps.check(
        "a deleted namespace's Report goes with the next run",
        (|| {
            report(cluster, "audit-gone")?;
            succeeded(
                "delete namespace",
                cluster.kubectl(&["delete", "namespace", "audit-gone", "--wait=false"], None),
            )?;
            let output = audit.run(
                &admin,
                &[&NAMESPACES[..], &["--write-reports", "-q"]].concat(),
            );
            let (_, err) = text(&output);
            contains(&err, "1 stale deleted")?;
            let (out, err) = succeeded(
                "get reports",
                cluster.kubectl(&["-n", "audit-gone", "get", "reports.openreports.io"], None),
            )?;
            contains(&format!("{out}{err}"), "No resources found")
        })(),
    );

    steps.check(
        "an audit that cannot list a kind keeps that kind's results in the reports and deletes none",
        (|| {
            let before = names_in(&report(cluster, "audit-a")?);
            let unseen = "unreadable security-group-policy error";
            if !before.iter().any(|r| r == unseen) {
                return Err(format!("audit-a's report lacks `{unseen}` before: {before:?}"));
            }
            let kubeconfig = limited_kubeconfig(cluster)?;
            let output = audit.run(
                &kubeconfig,
                &[&NAMESPACES[..], &["--write-reports", "-q"]].concat(),
            );
            let (_, err) = text(&output);
            exit_code(&output, 2)?;
            contains(&err, "results kept from the previous reports for kinds that could not be listed")?;
            let a = report(cluster, "audit-a")?;
            let after = names_in(&a);
            if !after.iter().any(|r| r == unseen) || a["summary"]["error"] != 1 {
                return Err(format!(
                    "the SecurityGroupPolicy's result was dropped: {after:?} {}",
                    a["summary"]
                ));
            }
            // What it could list is still rewritten: the Ingress fixed earlier stays fixed.
            if after.iter().any(|r| r.starts_with("bad ")) {
                return Err(format!("audit-a's report: {after:?}"));
            }
            Ok(())
        })(),
    );

    steps.check(
        "an audit of large objects holds a page of bounded bytes, whatever --page-size says",
        (|| {
            succeeded(
                "create namespace",
                cluster.kubectl(&["create", "namespace", "audit-big"], None),
            )?;
            // As text: parsed, 150 MB of such objects would be gigabytes here too.
            let items: Vec<String> = (0..BIG_OBJECTS).map(big_ingress).collect();
            let list = format!(
                r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
                items.join(",")
            );
            drop(items);
            succeeded(
                "create large Ingresses",
                cluster.kubectl(&["create", "-f", "-"], Some(&list)),
            )?;
            let (output, peak_mib) = peak_rss(
                std::process::Command::new(&audit.bin)
                    .arg("audit")
                    .arg("--config")
                    .arg(&audit.config)
                    .arg("--kubeconfig")
                    .arg(&admin)
                    .args(["-n", "audit-big", "--page-size", "500", "-o", "json"]),
            )?;
            let report: serde_json::Value =
                serde_json::from_str(&output).map_err(|e| format!("audit -o json: {e}"))?;
            // Without kube-controller-manager a deleted namespace keeps its
            // objects: delete them, so later audits do not watch 150 MB.
            succeeded(
                "delete large Ingresses",
                cluster.kubectl(&["-n", "audit-big", "delete", "ingress", "--all"], None),
            )?;
            succeeded(
                "delete namespace",
                cluster.kubectl(&["delete", "namespace", "audit-big", "--wait=false"], None),
            )?;
            say!("audit of {BIG_OBJECTS} Ingresses of ~1.5 MB: peak RSS {peak_mib} MiB");
            if report["summary"]["objects"] != BIG_OBJECTS {
                return Err(format!("audited: {}", report["summary"]));
            }
            // One page of them all is 150 MB of JSON, and parsed objects made
            // of many small maps take ~20 times their JSON: gigabytes. Pages of
            // 4 MiB of JSON keep it near what one object costs (~160 MiB).
            if peak_mib > 400 {
                return Err(format!("peak RSS {peak_mib} MiB"));
            }
            Ok(())
        })(),
    );

    steps.check(
        "the chart's audit CronJob identity may audit what its policies govern and write reports, nothing else",
        (|| {
            let (cronjob, _) = succeeded(
                "get cronjob",
                cluster.kubectl(&["-n", "bouncer-system", "get", "cronjob", "bouncer-audit", "-o", "json"], None),
            )?;
            contains(&cronjob, "--write-reports")?;
            contains(&cronjob, "--fail-on=errors")?;
            // The job's own view: its ServiceAccount's token and the chart's policies.
            let kubeconfig = token_kubeconfig(cluster, "bouncer-audit", "audit-job")?;
            let (config, _) = succeeded(
                "get configmap",
                cluster.kubectl(
                    &["-n", "bouncer-system", "get", "configmap", "bouncer", "-o", r"jsonpath={.data.policies\.yaml}"],
                    None,
                ),
            )?;
            let config_file = kubeconfig.with_file_name("audit-job-policies.yaml");
            std::fs::write(&config_file, config).map_err(|e| e.to_string())?;
            let output = std::process::Command::new(&audit.bin)
                .arg("audit")
                .arg("--config")
                .arg(&config_file)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--write-reports", "--fail-on=errors", "-q", "--context-timeout", "20"])
                .output()
                .map_err(|e| e.to_string())?;
            let (out, err) = text(&output);
            say!("the audit job's run printed:\n{out}{err}");
            exit_code(&output, 0)?;
            contains(&err, "reports: ")?;
            // It may write reports, but not change what it audits.
            let (can, _) = text(&cluster.kubectl(
                &["auth", "can-i", "delete", "ingresses", "--as", "system:serviceaccount:bouncer-system:bouncer-audit", "-A"],
                None,
            ));
            if can.trim() != "no" {
                return Err(format!("the audit identity may delete Ingresses: {can}"));
            }
            Ok(())
        })(),
    );

    steps.check(
        "--report-format wgpolicyk8s writes PolicyReports for older consumers",
        (|| {
            let output = audit.run(
                &admin,
                &[
                    "-n",
                    "audit-b",
                    "--write-reports",
                    "--report-format",
                    "wgpolicyk8s",
                    "-q",
                ],
            );
            exit_code(&output, 1)?;
            let (out, _) = succeeded(
                "get policyreport",
                cluster.kubectl(
                    &[
                        "-n",
                        "audit-b",
                        "get",
                        "policyreports.wgpolicyk8s.io",
                        "bouncer-audit",
                        "-o",
                        "json",
                    ],
                    None,
                ),
            )?;
            contains(&out, r#""apiVersion": "wgpolicyk8s.io/v1alpha2""#)?;
            contains(&out, r#""policy": "alb-target-type-ip""#)
        })(),
    );
}

/// A kubeconfig that authenticates as ServiceAccount `bouncer-system/{account}`.
fn token_kubeconfig(cluster: &Cluster, account: &str, file: &str) -> Result<PathBuf, String> {
    let (token, _) = succeeded(
        "create token",
        cluster.kubectl(&["-n", "bouncer-system", "create", "token", account], None),
    )?;
    let admin = std::fs::read_to_string(&cluster.kubeconfig).map_err(|e| e.to_string())?;
    let mut config: serde_json::Value = serde_yaml::from_str(&admin).map_err(|e| e.to_string())?;
    config["users"] = serde_json::json!([{"name": "admin", "user": {"token": token.trim()}}]);
    let path = cluster
        .kubeconfig
        .with_file_name(format!("{file}.kubeconfig"));
    std::fs::write(
        &path,
        serde_yaml::to_string(&config).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

/// A kubeconfig for a ServiceAccount that may list what the audit needs but
/// SecurityGroupPolicies, and write reports.
fn limited_kubeconfig(cluster: &Cluster) -> Result<PathBuf, String> {
    let rbac = "apiVersion: v1
kind: ServiceAccount
metadata: {name: audit-limited, namespace: bouncer-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: audit-limited}
rules:
  - apiGroups: [\"\"]
    resources: [services, namespaces]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [ingresses, ingressclasses]
    verbs: [get, list, watch]
  - apiGroups: [openreports.io]
    resources: [reports, clusterreports]
    verbs: [get, list, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: audit-limited}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: audit-limited}
subjects: [{kind: ServiceAccount, name: audit-limited, namespace: bouncer-system}]
";
    succeeded(
        "apply RBAC",
        cluster.kubectl(&["apply", "-f", "-"], Some(rbac)),
    )?;
    token_kubeconfig(cluster, "audit-limited", "audit-limited")
}

/// Large Ingresses the page-size step creates.
const BIG_OBJECTS: u64 = 100;

/// An Ingress of about 1.5 MB (10,000 paths), compliant with the audit's policies.
fn big_ingress(index: u64) -> String {
    let paths: Vec<String> = (0..10_000)
        .map(|p| {
            format!(
                r#"{{"path":"/section-{p:05}/with-a-longer-path-to-weigh-more","pathType":"Prefix","backend":{{"service":{{"name":"web","port":{{"number":80}}}}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{{"name":"big-{index}","namespace":"audit-big"}},"spec":{{"tls":[{{"hosts":["big.example.com"],"secretName":"big-tls"}}],"rules":[{{"host":"big.example.com","http":{{"paths":[{}]}}}}]}}}}"#,
        paths.join(",")
    )
}

/// Runs `command` to its end; its stdout and its peak RSS in MiB, read from
/// `VmHWM` while it runs. Not from `wait4`'s `ru_maxrss`: a child spawned with
/// `CLONE_VM` is charged the parent's high-water mark until it execs, and this
/// test process hosts a whole `bouncer serve`.
fn peak_rss(command: &mut std::process::Command) -> Result<(String, u64), String> {
    use std::io::Read as _;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        // The high-water mark only grows, so the last reading before the
        // exit is the peak, give or take the last few milliseconds.
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        if let Some(kib) = text
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let text = reader.join().unwrap_or_default();
    Ok((text, peak_kib / 1024))
}
