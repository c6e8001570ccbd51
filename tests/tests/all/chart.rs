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
