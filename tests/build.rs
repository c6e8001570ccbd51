//! Builds the test-only guest policies (`tests/guests/*`) into components.

use std::env;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bouncer_policy_build::PolicyBuild;

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .context("tests/ has a parent")?
        .to_owned();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("guests").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("policies/sdk").display()
    );
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    PolicyBuild::new(&workspace, out_dir.join("guests"))
        .package("hostile-policy")
        .package("legacy-policy")
        .build()?;
    // The hostile guest again as a WASI component: WASI calls take another
    // path through the runtime, and custom policies are built this way.
    PolicyBuild::new(&workspace, out_dir.join("guests/wasi"))
        .package("hostile-policy")
        .wasi()
        .build()?;
    Ok(())
}
