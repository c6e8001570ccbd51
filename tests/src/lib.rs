//! Shared helpers for bouncer's cross-crate tests: the test guest components,
//! the captured API server fixtures, and a one-call way to run a policy on a
//! review and get the response the API server would receive.

/// TLS clients: the host test kit's one implementation, shared by path.
#[path = "../../host/tests/all/support/tls.rs"]
#[allow(dead_code)]
mod tls;

pub mod certs;
pub mod config;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bouncer::admission::{Endpoint, Entry, PolicySet, review};
use bouncer::config::{FailureMode, Mode};
use bouncer::context::{Cluster, NoCluster};
use bouncer::policy::{EngineConfig, Limits, Policy, PolicyEngine, PolicyError, Source};
use serde_json::Value;

/// The hostile test policy component (`tests/guests/hostile`).
pub const HOSTILE_POLICY: &str = concat!(env!("OUT_DIR"), "/guests/hostile-policy.wasm");

/// The same hostile policy built for `wasm32-wasip2`: a component that imports WASI.
pub const HOSTILE_WASI_POLICY: &str = concat!(env!("OUT_DIR"), "/guests/wasi/hostile-policy.wasm");

/// A policy built against `bouncer:policy@0.1.1` (`tests/guests/legacy-0.1.1`): no `metadata` export.
pub const LEGACY_POLICY: &str = concat!(env!("OUT_DIR"), "/guests/legacy-policy.wasm");

/// The directory of AdmissionReview bodies captured from a real kube-apiserver v1.36.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apiserver-v1.36")
}

/// A captured review, as JSON.
pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// An engine whose compile cache is shared by the tests of one build (compiling
/// once per test would dominate the run); the cache tests use their own.
pub fn engine() -> Arc<PolicyEngine> {
    PolicyEngine::new(&EngineConfig {
        cache_dir: Some(Path::new(env!("OUT_DIR")).join("compiled-cache")),
        max_instances: 128,
        ..EngineConfig::default()
    })
    .expect("engine")
}

/// Loads `source` (`builtin:<name>` or a path) with `settings` and default limits.
pub fn load(
    engine: &Arc<PolicyEngine>,
    name: &str,
    source: &str,
    settings: Value,
) -> Result<Policy, PolicyError> {
    let source = Source::parse(source).expect("known source");
    engine.load(name, &source, &settings, Limits::default())
}

/// Runs one policy on a review the way the webhook does and returns the encoded
/// response review (`response.patch` base64, as on the wire).
pub fn run(
    policy: &Policy,
    review_json: &Value,
    mode: Mode,
    failure: FailureMode,
    mutate: bool,
) -> Value {
    let body = serde_json::to_vec(review_json).expect("encode review");
    let request = review::decode(&body).expect("decode review");
    review::encode(review_once(policy, &request, mode, failure, mutate).response)
}

/// Reviews `request` with `policy` alone, the way the webhook does (without
/// the server's evaluation threads).
pub fn review_once(
    policy: &Policy,
    request: &review::Request,
    mode: Mode,
    failure: FailureMode,
    mutate: bool,
) -> bouncer::admission::Reviewed {
    let set = PolicySet::of_one(Entry::matching_everything(
        policy.clone(),
        mode,
        failure,
        mutate,
    ));
    let cluster: Arc<dyn Cluster> = Arc::new(NoCluster);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    set.review_here(request, Endpoint::for_mutation(mutate), &cluster, deadline)
}

/// Decodes `response.patch` (base64 JSONPatch) and applies it to `object`.
pub fn apply_patch(response: &Value, object: &Value) -> Value {
    use base64::Engine as _;
    let encoded = response["response"]["patch"]
        .as_str()
        .expect("response has a patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 patch");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("JSONPatch");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).expect("patch applies");
    patched
}

/// Sets (or with `None`, removes) an annotation on `review.request.object`.
pub fn set_annotation(review: &mut Value, key: &str, value: Option<&str>) {
    let annotations = review
        .pointer_mut("/request/object/metadata")
        .expect("object metadata")
        .as_object_mut()
        .expect("metadata is an object")
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .expect("annotations is an object");
    match value {
        Some(value) => annotations.insert(key.to_owned(), Value::String(value.to_owned())),
        None => annotations.remove(key),
    };
}

/// Asserts that `review` (a response review) allowed the request because the
/// policy whose warning starts with `prefix` failed with failure mode open;
/// returns that warning.
pub fn assert_failed_open<'a>(review: &'a Value, prefix: &str) -> &'a str {
    assert_eq!(review["response"]["allowed"], true, "{review}");
    let warning = review["response"]["warnings"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no warning in {review}"));
    assert!(warning.starts_with(prefix), "{warning}");
    assert!(
        warning.ends_with("request allowed (failure mode: open)"),
        "{warning}"
    );
    warning
}

/// The `bouncer` binary of this build, built first (in the profile of the
/// running test or bench) so it matches the sources: another package's binary
/// has no `CARGO_BIN_EXE_*`, and a run filtered with `--test` does not build it.
pub fn bouncer_binary() -> PathBuf {
    // This test runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>")
        .to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "-p", "bouncer", "--bin", "bouncer"]);
    if profile.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the bouncer binary failed");
    profile.join("bouncer")
}

/// A loopback port free now, for a server the test starts next.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The value of the first Prometheus sample in `metrics` whose line starts
/// with `line_start` (name and labels); 0 when there is none.
pub fn metric(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
