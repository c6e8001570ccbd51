//! Custom policies in Rust, JavaScript and Python, end to end with the real
//! toolchains: `bouncer new` → `bouncer build` → `bouncer test`, `bouncer inspect`,
//! and the examples in `examples/policies/` judged by `bouncer serve` over TLS.
//!
//! The toolchains (componentize-js from npm, componentize-py from PyPI, the
//! wasm32-wasip2 target) are installed by `tests/authoring/tools.sh` into a cache
//! outside the repository; only the first run pays.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use crate::support::workspace;

const EXAMPLES: [&str; 3] = ["deny-latest-tag", "require-team-label", "max-replicas"];

/// Builds share CPU (and, for Rust, cargo's lock): one at a time.
static BUILDS: Mutex<()> = Mutex::new(());

/// The PATH fragment holding componentize-js and componentize-py.
fn tools() -> &'static str {
    static TOOLS: OnceLock<String> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let script = workspace().join("tests/authoring/tools.sh");
        let output = Command::new("bash").arg(&script).output().expect("bash runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} failed ({:?}); the JavaScript and Python toolchains come from npm and PyPI:\n{stderr}",
            script.display(),
            output.status.code()
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.trim().lines().last().unwrap_or_default().to_owned()
    })
}

/// `bouncer` from the workspace root, with the toolchains on PATH and Rust
/// builds in a cache outside the repository.
fn bouncer(args: &[&str]) -> Output {
    let path = format!("{}:{}", tools(), std::env::var("PATH").unwrap_or_default());
    let target = dirs_cache().join("cargo-target");
    Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(args)
        .current_dir(workspace())
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", target)
        .env(
            "BOUNCER_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("bouncer runs")
}

fn dirs_cache() -> PathBuf {
    std::env::var_os("BOUNCER_AUTHORING_CACHE").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/bouncer-authoring")
        },
        PathBuf::from,
    )
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn build(dir: &str) -> Output {
    let _guard = BUILDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    bouncer(&["build", dir])
}

/// `bouncer new <name> --lang <lang>` into `dir/<name>`; returns the project.
fn new_project(dir: &Path, name: &str, lang: &str) -> PathBuf {
    let project = dir.join(name);
    let path = project.to_str().unwrap();
    let output = bouncer(&["new", name, "--lang", lang, "--path", path]);
    assert!(output.status.success(), "{}", text(&output));
    project
}

/// Builds the three examples once per test run.
fn examples_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        for example in EXAMPLES {
            let dir = format!("examples/policies/{example}");
            let output = build(&dir);
            assert!(output.status.success(), "building {dir}: {}", text(&output));
            let out = String::from_utf8_lossy(&output.stdout);
            assert!(
                out.contains(&format!("built {dir}/policy.wasm")),
                "{}",
                text(&output)
            );
            assert!(
                out.contains(&format!("implements bouncer:policy: {example} 0.1.0")),
                "{}",
                text(&output)
            );
        }
    });
}

#[test]
fn every_example_builds_and_passes_its_suites() {
    examples_built();
    for (example, cases) in [
        ("deny-latest-tag", 7),
        ("require-team-label", 4),
        ("max-replicas", 5),
    ] {
        let output = bouncer(&["test", &format!("examples/policies/{example}")]);
        let out = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        assert!(
            out.trim_end()
                .ends_with(&format!("{cases} passed, 0 failed")),
            "{}",
            text(&output)
        );
    }
}

/// `bouncer new` → `bouncer build` → `bouncer test` in one language.
fn round_trip(lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("starter-{lang}");
    let project = new_project(dir.path(), &name, lang);
    let project_arg = project.to_str().unwrap();
    assert!(project.join(format!("{name}.bouncer-test.yaml")).is_file());
    assert!(project.join("README.md").is_file());
    if lang == "rust" {
        // The SDK comes from the binary, not from this checkout: the project builds anywhere.
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(r#"bouncer-sdk = { path = "bouncer-sdk" }"#),
            "{manifest}"
        );
        assert!(project.join("bouncer-sdk/wit/policy.wit").is_file());
        let checkout = crate::support::workspace().display().to_string();
        for entry in walkdir::WalkDir::new(&project)
            .into_iter()
            .filter_map(Result::ok)
        {
            if entry.file_type().is_file()
                && entry
                    .path()
                    .extension()
                    .is_some_and(|e| e == "toml" || e == "rs")
            {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                assert!(
                    !text.contains(&checkout),
                    "{} names the checkout",
                    entry.path().display()
                );
            }
        }
    }

    let output = build(project_arg);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!(
            "implements bouncer:policy: {name} 0.1.0 (validating)"
        )),
        "{}",
        text(&output)
    );

    let output = bouncer(&["test", project_arg]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(out.contains(&format!(
        "PASS {name}/a Pod without an owner label is denied"
    )));
    assert!(
        out.trim_end().ends_with("2 passed, 0 failed"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_new_rust_policy_builds_and_passes_its_suite() {
    round_trip("rust");
}

#[test]
fn a_new_javascript_policy_builds_and_passes_its_suite() {
    round_trip("js");
}

#[test]
fn a_new_python_policy_builds_and_passes_its_suite() {
    round_trip("python");
}

#[test]
fn building_a_directory_that_is_no_project_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = bouncer(&["build", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("is not a policy project"), "{err}");
    assert!(err.contains("bouncer new"), "{err}");
}

#[test]
fn a_missing_javascript_toolchain_is_reported_with_its_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "lonely", "js");
    let project_arg = project.to_str().unwrap();
    // Only node itself on PATH: no componentize-js, and no npm to install it with.
    let node = which("node").expect("node is installed");
    let only_node = dir.path().join("only-node");
    std::fs::create_dir(&only_node).unwrap();
    std::os::unix::fs::symlink(&node, only_node.join("node")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(["build", project_arg])
        .env("PATH", &only_node)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("componentize-js is not installed"), "{err}");
    assert!(
        err.contains(&format!("npm install --prefix {project_arg}")),
        "{err}"
    );
}

/// A fresh scaffold built where neither componentize tool is installed: `build`
/// installs the pinned one into the project (npm, or a virtualenv) and goes on.
/// The project is named relative to the working directory, as a user types it.
#[test]
fn a_fresh_javascript_or_python_scaffold_installs_its_toolchain_when_built() {
    let dir = tempfile::tempdir().unwrap();
    for (lang, name, tool, installed) in [
        (
            "js",
            "fresh-js",
            "componentize-js",
            "node_modules/.bin/componentize-js",
        ),
        (
            "python",
            "fresh-py",
            "componentize-py",
            ".venv/bin/componentize-py",
        ),
    ] {
        new_project(dir.path(), name, lang);
        let _guard = BUILDS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let output = Command::new(env!("CARGO_BIN_EXE_bouncer"))
            .args(["build", name])
            .current_dir(dir.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "BOUNCER_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
            )
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(&format!("installing {tool} ")), "{err}");
        assert!(dir.path().join(name).join(installed).is_file());
        assert!(dir.path().join(name).join("policy.wasm").is_file());
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[test]
fn the_tools_script_installs_the_versions_bouncer_names() {
    let script = std::fs::read_to_string(workspace().join("tests/authoring/tools.sh")).unwrap();
    let js = bouncer::authoring::build::COMPONENTIZE_JS_VERSION;
    let py = bouncer::authoring::build::COMPONENTIZE_PY_VERSION;
    assert!(script.contains(&format!("COMPONENTIZE_JS_VERSION=\"{js}\"")));
    assert!(script.contains(&format!("COMPONENTIZE_PY_VERSION=\"{py}\"")));
}

#[test]
fn inspect_shows_what_each_example_declares() {
    examples_built();
    let output = bouncer(&[
        "inspect",
        "--color",
        "never",
        "examples/policies/max-replicas",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let out = String::from_utf8_lossy(&output.stdout);
    for line in [
        "max-replicas 0.1.0",
        "imports:     bouncer:policy, locked-down WASI",
        "governs:     Deployment.apps",
        "operations:  CREATE, UPDATE",
        "mutating:    yes",
        "context:     none",
        "maxReplicas  integer ≥ 1 = 10  The most replicas a Deployment may ask for.",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }

    let output = bouncer(&[
        "inspect",
        "-o",
        "json",
        "examples/policies/require-team-label/policy.wasm",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let metadata = &json["metadata"];
    assert_eq!(metadata["name"], "require-team-label");
    assert_eq!(metadata["mutating"], false);
    assert_eq!(metadata["operations"], json!(["CREATE", "UPDATE"]));
    assert_eq!(
        metadata["kinds"][3],
        json!({"apiGroups": ["networking.k8s.io"], "kinds": ["Ingress"]})
    );
    assert_eq!(
        metadata["settingsSchema"]["properties"]["label"]["default"],
        "team"
    );
    assert_eq!(json["importsWasi"], true);

    let output = bouncer(&[
        "inspect",
        "--color",
        "never",
        "examples/policies/deny-latest-tag",
    ]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("exemptRegistries   array of string = []  Registries whose images may float"),
        "{out}"
    );
}

#[test]
fn inspecting_an_unbuilt_project_says_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = bouncer(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("run `bouncer build"), "{err}");
}

mod serve {
    //! The three examples, enforced by a real `bouncer serve` process over TLS.

    use super::*;
    use crate::support::serve::{free_port, post_raw, serve_command, wait_until_serving};

    const CONFIG: &str = "\
policies:
  - name: deny-latest-tag
    source: examples/policies/deny-latest-tag/policy.wasm
    match:
      kinds: [{apiGroups: [\"\"], kinds: [Pod]}, {apiGroups: [apps], kinds: [Deployment]}]
  - name: require-team-label
    source: examples/policies/require-team-label/policy.wasm
    match:
      kinds: [{apiGroups: [apps], kinds: [Deployment]}]
    settings: {teams: [reports, payments]}
  - name: max-replicas
    source: examples/policies/max-replicas/policy.wasm
    match:
      kinds: [{apiGroups: [apps], kinds: [Deployment]}]
    settings: {maxReplicas: 3, mutate: true}
";

    fn review(labels: Value, replicas: u32, image: &str) -> Value {
        let path = workspace().join("tests/fixtures/apiserver-v1.36/deployment-create.json");
        let mut review: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let object = &mut review["request"]["object"];
        object["metadata"]["labels"] = labels;
        object["spec"]["replicas"] = json!(replicas);
        object["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        review
    }

    async fn post(port: u16, ca: &Path, path: &str, review: &Value) -> Value {
        let response = post_raw(port, ca, path, &review.to_string()).await;
        let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_enforces_the_rust_javascript_and_python_examples() {
        examples_built();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("policies.yaml");
        // Sources are relative to the configuration file; this one lives elsewhere.
        let examples = workspace().join("examples");
        let text = CONFIG.replace(
            "source: examples",
            &format!("source: {}", examples.display()),
        );
        std::fs::write(&config, text).unwrap();
        let (mut child, port, ca) = spawn_serve(&config, dir.path());

        // The captured Deployment as sent: no team label.
        let body = post(
            port,
            &ca,
            "/validate",
            &review(json!({"app": "r"}), 1, "repo/app:v1.5.2"),
        )
        .await;
        let response = &body["response"];
        assert_eq!(response["allowed"], false, "{body}");
        assert_eq!(
            response["status"]["message"],
            "require-team-label: Deployment web/report-generator has no `team` label; label it \
             with its owning team: one of reports, payments",
            "{body}"
        );

        // Labelled, pinned, within the limit: every policy allows it.
        let good = review(json!({"team": "reports"}), 2, "repo/app:v1.5.2");
        let body = post(port, &ca, "/validate", &good).await;
        assert_eq!(body["response"]["allowed"], true, "{body}");

        // A latest image is refused by the Rust policy.
        let latest = review(json!({"team": "reports"}), 2, "repo/app:latest");
        let body = post(port, &ca, "/validate", &latest).await;
        assert_eq!(body["response"]["allowed"], false, "{body}");
        let message = body["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("deny-latest-tag: Deployment web/report-generator: container"),
            "{message}"
        );

        // Too many replicas are capped by the Python policy on /mutate.
        let big = review(json!({"team": "reports"}), 50, "repo/app:v1.5.2");
        let body = post(port, &ca, "/mutate", &big).await;
        let response = &body["response"];
        assert_eq!(response["allowed"], true, "{body}");
        assert_eq!(response["patchType"], "JSONPatch", "{body}");
        let patch = base64_decode(response["patch"].as_str().unwrap());
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])
        );
        assert_eq!(
            response["warnings"],
            json!([
                "max-replicas: Deployment web/report-generator: replicas capped from 50 to 3 (maxReplicas)"
            ])
        );

        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// `bouncer serve --config config` on a free loopback port, once it serves;
    /// returns the process, its port and its CA file.
    fn spawn_serve(config: &Path, dir: &Path) -> (std::process::Child, u16, PathBuf) {
        let ca = dir.join("ca.pem");
        let port = free_port();
        let mut child = serve_command(port, &ca)
            .arg("--config")
            .arg(config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until_serving(&mut child);
        (child, port, ca)
    }

    /// The fenced block of `language` that follows `heading` in docs/authoring.md.
    fn guide_block(heading: &str, language: &str) -> String {
        let guide = std::fs::read_to_string(workspace().join("docs/authoring.md")).unwrap();
        let section = &guide[guide.find(heading).expect("heading in the guide")..];
        let fence = format!("```{language}\n");
        let start = section.find(&fence).expect("block in the section") + fence.len();
        section[start..start + section[start..].find("```").unwrap()].to_owned()
    }

    /// docs/authoring.md, followed by a user: scaffold in Python, build, the guide's
    /// configuration, `serve`, and the guide's request is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn following_the_guide_ends_with_a_refusal_through_serve() {
        let dir = tempfile::tempdir().unwrap();
        let project = new_project(dir.path(), "require-owner", "python");
        let project_arg = project.to_str().unwrap();
        let output = build(project_arg);
        assert!(output.status.success(), "{}", text(&output));

        let config = dir.path().join("policies.yaml");
        std::fs::write(&config, guide_block("## 10. Enforcing it", "yaml")).unwrap();
        let output = bouncer(&["config", "check", config.to_str().unwrap()]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("warn"),
            "{}",
            text(&output)
        );

        let (mut child, port, ca) = spawn_serve(&config, dir.path());
        let path = workspace().join("tests/fixtures/apiserver-v1.36/pod-create-kubectl-run.json");
        let review: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = post(port, &ca, "/validate", &review).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let expected = guide_block("Then send it a request", "json");
        assert!(
            expected.contains("require-owner: Pod web/debug-shell has no `owner` label"),
            "{expected}"
        );
        assert_eq!(body["response"]["allowed"], false, "{body}");
        assert_eq!(body["response"]["status"]["code"], 403, "{body}");
        assert_eq!(
            body["response"]["status"]["message"],
            "require-owner: Pod web/debug-shell has no `owner` label",
            "{body}"
        );
    }

    fn base64_decode(text: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    }
}

/// A Python policy that pries at everything its runtime could reach through WASI.
const PRYING_APP: &str = r#"
import json, os, socket, sys, time
import wit_world
from wit_world.imports.types import PolicyMetadata, Verdict

def attempt(action):
    try:
        action()
        return "allowed"
    except Exception as error:
        return type(error).__name__

class WitWorld(wit_world.WitWorld):
    def metadata(self) -> PolicyMetadata:
        return PolicyMetadata(name="prying", description="Pries.", version="0.1.0", kinds=[],
                              operations=[], mutating=False, settings_schema=None, context_kinds=[])

    def validate_settings(self, settings: str) -> None:
        pass

    def validate(self, request, settings: str) -> Verdict:
        start = time.monotonic()
        time.sleep(30)
        print("stdout reaches the host log")
        print("stderr reaches the host log", file=sys.stderr)
        found = {
            "env": sorted(os.environ),
            "file": attempt(lambda: open("/etc/hostname").read()),
            "listdir": attempt(lambda: os.listdir("/")),
            "socket": attempt(lambda: socket.create_connection(("127.0.0.1", 443), timeout=1)),
            "time": time.time(),
            "slept": time.monotonic() - start,
        }
        return Verdict(allowed=False, message=json.dumps(found, sort_keys=True), code=None,
                       warnings=[], mutation=None)
"#;

#[test]
fn a_python_policy_finds_no_environment_files_network_or_time() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "prying", "python");
    let project_arg = project.to_str().unwrap();
    std::fs::write(project.join("app.py"), PRYING_APP).unwrap();
    let output = build(project_arg);
    assert!(output.status.success(), "{}", text(&output));

    let output = bouncer(&[
        "eval",
        "--policy",
        &format!("{project_arg}/policy.wasm"),
        "--request",
        "tests/fixtures/apiserver-v1.36/deployment-create.json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let review: Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = review["response"]["status"]["message"].as_str().unwrap();
    let found: Value = serde_json::from_str(message.trim_start_matches("prying: ")).unwrap();
    assert_eq!(found["env"], json!([]), "{found}");
    assert_ne!(found["file"], "allowed", "{found}");
    assert_ne!(found["listdir"], "allowed", "{found}");
    assert_ne!(found["socket"], "allowed", "{found}");
    // Clocks are frozen at the epoch, and a 30 s sleep returns at once: it
    // would otherwise block a host thread where the deadline cannot reach.
    assert_eq!(found["time"], 0.0, "{found}");
    assert_eq!(found["slept"], 0.0, "{found}");
    // What it printed reaches bouncer's log (stderr as warnings, shown by default).
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("stderr reaches the host log"), "{log}");
    assert!(log.contains("prying"), "{log}");
}

#[test]
fn the_examples_carry_the_hosts_wit_contract() {
    let contract = std::fs::read_to_string(workspace().join("wit/policy.wit")).unwrap();
    assert_eq!(bouncer::policy::bindings::WIT, contract);
    for example in ["require-team-label", "max-replicas"] {
        let copy = workspace().join(format!("examples/policies/{example}/wit/policy.wit"));
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            contract,
            "{} differs from wit/policy.wit: copy it over",
            copy.display()
        );
    }
}

#[test]
fn testing_a_project_before_building_it_says_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "unbuilt", "js");
    let project_arg = project.to_str().unwrap();
    let output = bouncer(&["test", project_arg]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&format!(
            "unbuilt/policy.wasm is not built yet: run `bouncer build {project_arg}` first"
        )),
        "{err}"
    );
}
