//! The Helm chart installs exactly what `bouncer serve` runs without a config:
//! its default `config` value is the embedded default config.

use std::path::Path;

#[test]
fn the_charts_default_config_is_the_embedded_default() {
    let values = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/bouncer/values.yaml");
    let values: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(values).unwrap()).unwrap();
    let embedded: serde_json::Value =
        serde_yaml::from_str(bouncer::config::DEFAULT_CONFIG).unwrap();
    assert_eq!(
        values["config"], embedded,
        "charts/bouncer/values.yaml `config` differs from host/src/config/default.yaml"
    );
}

/// Every `bouncer_*` series the chart's dashboard and alerts query is one a
/// real server's `/metrics` exposes, so the two cannot drift apart; and the
/// latency buckets reach past the API server's longest webhook timeout.
#[tokio::test]
async fn the_dashboard_and_alerts_query_only_what_metrics_exposes() {
    // Every kind of series: a policy that fails open, one with a shadow
    // candidate, exceptions honoured.
    let config = format!(
        "exceptions:\n  namespaces: [platform-exceptions]\n{}",
        bouncer_tests::config::config(
            &[
                bouncer_tests::config::hostile("fails", "panic", "    failure: open\n"),
                bouncer_tests::config::hostile(
                    "gate",
                    "allow",
                    "    shadow:\n      settings: {behaviour: deny}\n",
                ),
            ]
            .concat()
        )
    );
    let server = bouncer_tests::server::start(Some(&config), |_| {}).await;
    let (status, _) = server
        .post("/validate", &bouncer_tests::fixture("ingress-create.json"))
        .await;
    assert_eq!(status, 200);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = server.get_text("/metrics").await;
        if metrics.contains("bouncer_shadow_disagreements_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await.unwrap();
    let mut exposed = std::collections::BTreeSet::new();
    for line in metrics.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let series: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            exposed.extend(series.iter().map(|suffix| format!("{name}{suffix}")));
        }
    }
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/bouncer");
    let names = regex_lite_names(&[
        chart.join("files/grafana-dashboard.json"),
        chart.join("templates/prometheusrule.yaml"),
    ]);
    assert!(names.len() > 15, "too few metric names found: {names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard or alerts query series /metrics does not expose: {missing:?}\nexposed: {exposed:?}"
    );
    let top = metrics
        .lines()
        .filter(|l| l.starts_with("bouncer_request_duration_seconds_bucket{"))
        .filter_map(|l| {
            l.split("le=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .filter(|le| le.is_finite())
        .fold(0.0, f64::max);
    assert!(top >= 30.0, "the largest finite latency bucket is {top} s");
}

/// The `bouncer_…` names in `files`.
fn regex_lite_names(files: &[std::path::PathBuf]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("bouncer_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            // `bouncer_*` in prose names no series.
            if end > "bouncer_".len() {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}
