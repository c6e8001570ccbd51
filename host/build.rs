//! Builds every built-in policy (`policies/*` with `[package.metadata.bouncer] builtin = true`)
//! into a component and generates the table that embeds them in the binary.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bouncer_policy_build::PolicyBuild;

/// A built-in policy crate found under `policies/`.
struct Builtin {
    name: String,
    description: String,
}

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .context("host/ has a parent")?
        .to_owned();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Only what goes into a component: editing a policy's suite or README must
    // not rebuild the host.
    for entry in fs::read_dir(workspace.join("policies"))? {
        let crate_dir = entry?.path();
        for part in ["src", "Cargo.toml", "build.rs"] {
            if crate_dir.join(part).exists() {
                println!("cargo:rerun-if-changed={}", crate_dir.join(part).display());
            }
        }
    }
    // A new policy crate joins the workspace, which changes Cargo.lock (below).
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let builtins = find_builtins(&workspace.join("policies"))?;
    let mut build = PolicyBuild::new(&workspace, out_dir.join("policies"));
    for builtin in &builtins {
        build = build.package(&builtin.name);
    }
    let built = build.build()?;

    let mut table = String::from("&[\n");
    for (builtin, component) in builtins.iter().zip(&built) {
        writeln!(
            table,
            "    Builtin {{ name: {:?}, description: {:?}, component: include_bytes!({:?}) }},",
            builtin.name,
            builtin.description,
            component.path.display().to_string(),
        )?;
    }
    table.push(']');
    fs::write(out_dir.join("builtins.rs"), table)?;
    Ok(())
}

fn find_builtins(policies: &Path) -> Result<Vec<Builtin>> {
    let mut builtins = Vec::new();
    for entry in
        fs::read_dir(policies).with_context(|| format!("reading {}", policies.display()))?
    {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
        let package = doc.get("package").and_then(|p| p.as_table());
        let meta = package
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("bouncer"))
            .and_then(|b| b.as_table());
        let Some(meta) = meta else { continue };
        if meta.get("builtin").and_then(toml::Value::as_bool) != Some(true) {
            continue;
        }
        let field = |name: &str| {
            package
                .and_then(|p| p.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .with_context(|| format!("{} has no package.{name}", manifest.display()))
        };
        builtins.push(Builtin {
            name: field("name")?,
            description: field("description")?,
        });
    }
    builtins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(builtins)
}
