//! `bouncer build`: a policy project into a component, with its language's own
//! toolchain, then checked by the engine that will run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::project::{self, Language};
use crate::policy::{Description, PolicyEngine, PolicyError, Source};

/// The componentize-js release scaffolds pin and CI installs.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// The componentize-py release scaffolds name and CI installs.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The Rust target policies are built for.
pub const RUST_TARGET: &str = "wasm32-wasip2";

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The directory is not a policy project.
    #[error(
        "{} is not a policy project: no Cargo.toml (Rust), package.json (JavaScript) or app.py (Python); create one with `bouncer new`",
        .0.display()
    )]
    NotAProject(PathBuf),
    /// A tool the language needs is not installed.
    #[error("{tool} is not installed ({why}); install it with:\n    {install}")]
    MissingTool {
        /// The tool.
        tool: String,
        /// What was looked for.
        why: String,
        /// The command that installs it.
        install: String,
    },
    /// The toolchain ran and failed; its own output is above.
    #[error("`{command}` failed ({status}) in {}; its output is above", dir.display())]
    Toolchain {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Where it ran.
        dir: PathBuf,
    },
    /// Running a tool or copying its output failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The toolchain reported no component.
    #[error("cargo built no .wasm for {}: is `crate-type = [\"cdylib\"]` set in Cargo.toml?", .0.display())]
    NoArtifact(PathBuf),
    /// The component does not load as a policy.
    #[error("the built component does not load as a policy")]
    Policy(#[from] PolicyError),
}

/// A built and checked policy.
#[derive(Debug)]
pub struct Built {
    /// The project's language.
    pub language: Language,
    /// Where the component was written.
    pub path: PathBuf,
    /// What the engine learnt loading it.
    pub description: Description,
}

/// Builds the project in `dir` into `dir/policy.wasm` and checks that it loads.
///
/// The toolchain's own output goes to this process's stderr; what bouncer
/// says while it runs (installing, running) goes to `say`.
///
/// # Errors
/// See [`BuildError`]; a missing toolchain names the command that installs it.
pub fn build(
    dir: &Path,
    engine: &Arc<PolicyEngine>,
    say: &dyn Fn(&str),
) -> Result<Built, BuildError> {
    let language = project::detect(dir).ok_or_else(|| BuildError::NotAProject(dir.to_owned()))?;
    let output = project::component_path(dir);
    match language {
        Language::Rust => build_rust(dir, &output, say)?,
        Language::Js => build_js(dir, &output, say)?,
        Language::Python => build_python(dir, &output, say)?,
    }
    let description = engine.describe(&project::name_of(dir), &Source::File(output.clone()))?;
    Ok(Built {
        language,
        path: output,
        description,
    })
}

fn build_rust(dir: &Path, output: &Path, say: &dyn Fn(&str)) -> Result<(), BuildError> {
    require("cargo", &["--version"], "Rust", "https://rustup.rs")?;
    check_rust_target()?;
    let mut command = Command::new("cargo");
    command.args([
        "build",
        "--release",
        "--target",
        RUST_TARGET,
        "--message-format=json-render-diagnostics",
    ]);
    let stdout = run(command.current_dir(dir).stdout(Stdio::piped()), dir, say)?;
    // cargo names its artefacts on stdout, wherever CARGO_TARGET_DIR puts them.
    let artifact = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            let manifest = message["manifest_path"].as_str().map(Path::new);
            manifest
                .and_then(Path::parent)
                .map(std::path::absolute)
                .and_then(Result::ok)
                == std::path::absolute(dir).ok()
        })
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| BuildError::NoArtifact(dir.to_owned()))?;
    std::fs::copy(&artifact, output).map_err(|source| BuildError::Io {
        what: format!("copying {} to {}", artifact.display(), output.display()),
        source,
    })?;
    Ok(())
}

/// The wasm32-wasip2 standard library must be installed; cargo's own error for
/// a missing target does not say how to fix it.
fn check_rust_target() -> Result<(), BuildError> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output();
    let installed = sysroot.ok().is_some_and(|out| {
        let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Path::new(&root)
            .join("lib/rustlib")
            .join(RUST_TARGET)
            .is_dir()
    });
    if installed {
        Ok(())
    } else {
        Err(BuildError::MissingTool {
            tool: format!("the Rust {RUST_TARGET} target"),
            why: "its standard library is not in rustc's sysroot".into(),
            install: format!("rustup target add {RUST_TARGET}"),
        })
    }
}

fn build_js(dir: &Path, output: &Path, say: &dyn Fn(&str)) -> Result<(), BuildError> {
    require(
        "node",
        &["--version"],
        "Node.js",
        "https://nodejs.org (20 or later)",
    )?;
    let install = || {
        format!(
            "npm install --prefix {} (package.json lists @bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION})",
            dir.display()
        )
    };
    if find_tool(dir, "node_modules/.bin", "componentize-js", install).is_err() && on_path("npm") {
        // A fresh scaffold: install the pinned toolchain into the project, as
        // its package.json says, showing npm's progress.
        say(&format!(
            "installing componentize-js {COMPONENTIZE_JS_VERSION} into {} (once per project)",
            dir.join("node_modules").display()
        ));
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir);
        run(npm.stdout(Stdio::inherit()), dir, say)?;
    }
    let tool = find_tool(dir, "node_modules/.bin", "componentize-js", install)?;
    let entry = js_entry(dir);
    let mut command = Command::new(tool);
    // No fetch or HTTP server: the host gives a policy no network anyway.
    command
        .arg(&entry)
        .args(["--wit", "wit", "--world-name", "policy", "-o"])
        .arg(output_arg(dir, output))
        .args(["--disable", "http", "fetch-event"]);
    run(command.current_dir(dir), dir, say).map(drop)
}

/// The module package.json names as `main`, else `policy.js`.
fn js_entry(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|package| package["main"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "policy.js".to_owned())
}

fn build_python(dir: &Path, output: &Path, say: &dyn Fn(&str)) -> Result<(), BuildError> {
    let install = || format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}");
    if find_tool(dir, ".venv/bin", "componentize-py", install).is_err() && on_path("python3") {
        // A fresh scaffold: a virtualenv in the project with the pinned
        // toolchain from requirements-dev.txt, showing pip's progress.
        let venv = dir.join(".venv");
        say(&format!(
            "installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (once per project)",
            venv.display()
        ));
        let mut create = Command::new("python3");
        create.args(["-m", "venv"]).arg(&venv);
        run(create.stdout(Stdio::inherit()), dir, say)?;
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args([
            "install",
            "--disable-pip-version-check",
            &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
        ]);
        run(pip.stdout(Stdio::inherit()), dir, say)?;
    }
    let tool = find_tool(dir, ".venv/bin", "componentize-py", install)?;
    let mut command = Command::new(tool);
    command
        .args(["-d", "wit", "-w", "policy", "componentize", "app", "-o"])
        .arg(output_arg(dir, output));
    run(command.current_dir(dir), dir, say).map(drop)
}

/// `output` as the tool sees it from `dir`.
fn output_arg(dir: &Path, output: &Path) -> PathBuf {
    output
        .strip_prefix(dir)
        .map_or_else(|_| output.to_owned(), Path::to_owned)
}

/// Runs a toolchain command, its stderr shown to the user; returns its stdout when piped.
fn run(command: &mut Command, dir: &Path, say: &dyn Fn(&str)) -> Result<Vec<u8>, BuildError> {
    let line = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    say(&format!("running {line}"));
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| BuildError::Io {
            what: format!("running `{line}` in {}", dir.display()),
            source,
        })?;
    if !out.status.success() {
        // Output that was not piped to us went to the terminal already.
        let printed = String::from_utf8_lossy(&out.stdout);
        if !printed.trim().is_empty() {
            say(printed.trim_end());
        }
        return Err(BuildError::Toolchain {
            command: line,
            status: out.status,
            dir: dir.to_owned(),
        });
    }
    Ok(out.stdout)
}

fn require(program: &str, args: &[&str], tool: &str, install: &str) -> Result<(), BuildError> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err(BuildError::MissingTool {
            tool: tool.into(),
            why: format!("`{program}` cannot be run"),
            install: install.into(),
        }),
    }
}

/// A tool installed in the project (`dir/local_bin/name`), else on PATH.
fn find_tool(
    dir: &Path,
    local_bin: &str,
    name: &str,
    install: impl FnOnce() -> String,
) -> Result<PathBuf, BuildError> {
    let local = dir.join(local_bin).join(name);
    if local.is_file() {
        // Absolute: the tool runs with the project as its working directory,
        // where a path relative to ours would point elsewhere.
        Ok(std::path::absolute(&local).unwrap_or(local))
    } else if on_path(name) {
        Ok(PathBuf::from(name))
    } else {
        Err(BuildError::MissingTool {
            tool: name.into(),
            why: format!("neither {} nor on PATH", local.display()),
            install: install(),
        })
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
