use std::sync::atomic::Ordering;

use bouncer::policy::{EngineConfig, Limits, PolicyEngine, Source};
use serde_json::json;

fn engine_with_cache(dir: &std::path::Path) -> std::sync::Arc<PolicyEngine> {
    PolicyEngine::new(&EngineConfig {
        cache_dir: Some(dir.to_owned()),
        max_instances: 16,
        ..EngineConfig::default()
    })
    .unwrap()
}

#[test]
fn a_restarted_engine_loads_from_the_cache_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::parse("builtin:alb-target-type-ip").unwrap();

    let first = engine_with_cache(dir.path());
    first
        .load("alb", &source, &json!({}), Limits::default())
        .unwrap();
    assert_eq!(first.stats().compiled.load(Ordering::Relaxed), 1);
    assert_eq!(first.stats().cache_hits.load(Ordering::Relaxed), 0);
    let artifacts = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(artifacts, 1, "one artifact written");

    let second = engine_with_cache(dir.path());
    let policy = second
        .load("alb", &source, &json!({}), Limits::default())
        .unwrap();
    assert_eq!(second.stats().compiled.load(Ordering::Relaxed), 0);
    assert_eq!(second.stats().cache_hits.load(Ordering::Relaxed), 1);
    assert!(
        policy.validate_settings().is_ok(),
        "the cached artifact runs"
    );
}

#[test]
fn the_same_component_under_two_names_is_prepared_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_cache(dir.path());
    let source = Source::parse("builtin:alb-target-type-ip").unwrap();
    engine
        .load("a", &source, &json!({}), Limits::default())
        .unwrap();
    engine
        .load("b", &source, &json!({"mutate": true}), Limits::default())
        .unwrap();
    assert_eq!(engine.stats().compiled.load(Ordering::Relaxed), 1);
    assert_eq!(engine.stats().reused.load(Ordering::Relaxed), 1);
}

#[test]
fn a_corrupt_artifact_is_discarded_and_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::parse("builtin:alb-target-type-ip").unwrap();
    engine_with_cache(dir.path())
        .load("alb", &source, &json!({}), Limits::default())
        .unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not an artifact").unwrap();
    }
    let engine = engine_with_cache(dir.path());
    engine
        .load("alb", &source, &json!({}), Limits::default())
        .unwrap();
    assert_eq!(engine.stats().compiled.load(Ordering::Relaxed), 1);
    assert_eq!(engine.stats().cache_hits.load(Ordering::Relaxed), 0);
}
