//! Builds bouncer policy crates into WebAssembly components, from a build script.
//!
//! Policies are compiled for `wasm32-unknown-unknown` and then wrapped into a
//! component with [`wit_component`]. That gives a component whose only imports
//! are the ones in `wit/` (no WASI at all), which is both smaller and a tighter
//! sandbox than a `wasm32-wasip2` build (see `policies/README.md`).
//!
//! The start is [`PolicyBuild`]: name the packages, call [`PolicyBuild::build`],
//! get one component file per package.
//!
//! A build script that calls this runs a nested `cargo build`. It uses its own
//! target directory (`<target>/policies`), because the outer cargo holds the lock
//! on the main one for as long as build scripts run.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The compilation target of policy crates.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// The target of policies built for WASI, as `bouncer build` builds custom Rust
/// policies: rustc links them into components itself.
pub const WASI_TARGET: &str = "wasm32-wasip2";

/// The linear memory a policy built for [`TARGET`] starts with: its stack, its
/// data, and room for what a typical review allocates. Pages are only touched
/// when used.
pub const INITIAL_MEMORY: usize = 4 * 1024 * 1024;

/// The stack of a policy built for [`TARGET`]. It comes first in linear memory
/// (rustc links with `--stack-first`), so its size is where the pages a review
/// touches begin: the host's full instance reset rewrites the first pages of
/// a slot (`linear_memory_keep_resident` in `host/src/policy/engine.rs`), and
/// a small stack puts the data and heap inside them. 128 KiB holds serde_json's
/// deepest nesting (128 levels) with room to spare.
pub const STACK_SIZE: usize = 128 * 1024;

/// The cargo profile policies are built with (defined in the workspace `Cargo.toml`).
pub const PROFILE: &str = "policy";

/// A set of policy packages to build into components.
#[derive(Debug, Clone)]
pub struct PolicyBuild {
    workspace: PathBuf,
    packages: Vec<String>,
    out_dir: PathBuf,
    target: &'static str,
}

/// One component produced by [`PolicyBuild::build`].
#[derive(Debug, Clone)]
pub struct BuiltComponent {
    /// The cargo package name, such as `alb-target-type-ip`.
    pub package: String,
    /// Where the component was written.
    pub path: PathBuf,
}

impl PolicyBuild {
    /// Builds `packages` of the workspace at `workspace`, writing components to `out_dir`.
    pub fn new(workspace: impl Into<PathBuf>, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            workspace: workspace.into(),
            packages: Vec::new(),
            out_dir: out_dir.into(),
            target: TARGET,
        }
    }

    /// Builds for [`WASI_TARGET`] instead: components that import WASI, as
    /// custom policies do (tests use it to try both evaluation paths).
    pub fn wasi(mut self) -> Self {
        self.target = WASI_TARGET;
        self
    }

    /// Adds a package to build.
    pub fn package(mut self, name: impl Into<String>) -> Self {
        self.packages.push(name.into());
        self
    }

    /// Compiles every package and wraps each into a component.
    ///
    /// # Errors
    /// The wasm target is missing and cannot be installed, cargo fails, or a
    /// module is not a valid policy (its WIT world does not encode).
    pub fn build(&self) -> Result<Vec<BuiltComponent>> {
        if self.packages.is_empty() {
            return Ok(Vec::new());
        }
        let target = self.target;
        ensure_target_installed(target)?;
        let target_dir = policy_target_dir(&self.workspace);
        let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.workspace)
            .args([
                "build",
                "--locked",
                "--target",
                target,
                "--profile",
                PROFILE,
            ])
            .arg("--target-dir")
            .arg(&target_dir);
        for package in &self.packages {
            cmd.args(["-p", package]);
        }
        // The outer cargo passes flags meant for the host target and wrappers
        // (clippy) meant for the outer crate; neither belongs to this build.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
        ] {
            cmd.env_remove(var);
        }
        if target == TARGET {
            // Room for a typical review's allocations in the memory the module
            // starts with, so instances do not grow it (see the SDK's allocator).
            cmd.env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
                format!(
                    "-C link-arg=--initial-memory={INITIAL_MEMORY} -C link-arg=-zstack-size={STACK_SIZE}"
                ),
            );
        }
        let status = cmd
            .status()
            .with_context(|| format!("running `cargo build --target {target}` for policies"))?;
        if !status.success() {
            bail!(
                "building policies {:?} for {target} failed ({status})",
                self.packages
            );
        }

        fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("creating {}", self.out_dir.display()))?;
        let module_dir = target_dir.join(target).join(PROFILE);
        self.packages
            .iter()
            .map(|package| {
                let module = module_dir.join(format!("{}.wasm", package.replace('-', "_")));
                let path = self.out_dir.join(format!("{package}.wasm"));
                if target == WASI_TARGET {
                    fs::copy(&module, &path).with_context(|| {
                        format!("copying {} to {}", module.display(), path.display())
                    })?;
                } else {
                    componentize(&module, &path)
                        .with_context(|| format!("wrapping policy `{package}` into a component"))?;
                }
                Ok(BuiltComponent {
                    package: package.clone(),
                    path,
                })
            })
            .collect()
    }
}

/// Wraps the core module at `module` into a component written to `out`.
pub fn componentize(module: &Path, out: &Path) -> Result<()> {
    let bytes = fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)?
        .validate(true)
        .encode()?;
    fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}

/// The target directory for nested policy builds: next to the main one.
pub fn policy_target_dir(workspace: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("policies")
}

/// Installs the wasm `target` through rustup when the sysroot lacks it, so a
/// fresh machine needs no separate set-up step.
fn ensure_target_installed(target: &str) -> Result<()> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("running `rustc --print sysroot`")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(target).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .with_context(|| {
            format!("the {target} target is missing and rustup could not be run to add it")
        })?;
    if !status.success() {
        bail!("`rustup target add {target}` failed ({status}); install the target and retry");
    }
    Ok(())
}
