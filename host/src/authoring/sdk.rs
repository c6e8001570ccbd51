//! The Rust SDK (`policies/sdk`) and the WIT contract, embedded in the binary.
//!
//! `bouncer new --lang rust` writes them into the project as `bouncer-sdk/`, a
//! path dependency, so a project builds wherever the binary runs: no checkout,
//! no published crate, no git tag that has to exist. The copy is the SDK of the
//! bouncer that made the project, which is the contract its `serve` speaks.

/// The SDK's directory inside a new project.
pub(crate) const DIR: &str = "bouncer-sdk";

/// The SDK's sources, relative to its directory.
const SOURCES: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        include_str!("../../../policies/sdk/src/lib.rs"),
    ),
    (
        "src/allocator.rs",
        include_str!("../../../policies/sdk/src/allocator.rs"),
    ),
    (
        "src/context.rs",
        include_str!("../../../policies/sdk/src/context.rs"),
    ),
    (
        "src/findings.rs",
        include_str!("../../../policies/sdk/src/findings.rs"),
    ),
    (
        "src/log.rs",
        include_str!("../../../policies/sdk/src/log.rs"),
    ),
    (
        "src/metadata.rs",
        include_str!("../../../policies/sdk/src/metadata.rs"),
    ),
    (
        "src/object.rs",
        include_str!("../../../policies/sdk/src/object.rs"),
    ),
    (
        "src/request.rs",
        include_str!("../../../policies/sdk/src/request.rs"),
    ),
    (
        "src/runner.rs",
        include_str!("../../../policies/sdk/src/runner.rs"),
    ),
    (
        "src/verdict.rs",
        include_str!("../../../policies/sdk/src/verdict.rs"),
    ),
    (
        "src/workload.rs",
        include_str!("../../../policies/sdk/src/workload.rs"),
    ),
];

/// The SDK's manifest, which inherits from the workspace's.
const MANIFEST: &str = include_str!("../../../policies/sdk/Cargo.toml");
/// The workspace manifest the SDK inherits versions and dependencies from.
const WORKSPACE: &str = include_str!("../../../Cargo.toml");
/// Where the SDK's `wit_bindgen::generate!` finds the contract in the checkout.
const WIT_PATH_IN_CHECKOUT: &str = r#"path: "../../wit","#;

/// Every file of the SDK as a project gets it: `(path under DIR, contents)`.
pub(crate) fn files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = SOURCES
        .iter()
        .map(|(path, text)| {
            let text = if *path == "src/lib.rs" {
                text.replace(WIT_PATH_IN_CHECKOUT, r#"path: "wit","#)
            } else {
                (*text).to_owned()
            };
            ((*path).to_owned(), text)
        })
        .collect();
    files.push((
        "wit/policy.wit".to_owned(),
        crate::policy::bindings::WIT.to_owned(),
    ));
    files.push(("Cargo.toml".to_owned(), standalone_manifest()));
    files
}

/// The SDK's manifest with every `x.workspace = true` replaced by the
/// workspace's value, so it builds outside the workspace.
fn standalone_manifest() -> String {
    let mut out = String::from(
        "# The bouncer SDK, written by `bouncer new` from the bouncer binary that made\n\
         # this project. Replace the directory to move to another bouncer's SDK.\n",
    );
    for line in MANIFEST.lines() {
        let inherited = line
            .trim()
            .strip_suffix(".workspace = true")
            .and_then(workspace_value);
        match inherited {
            Some(value) => out.push_str(&value),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    // Inside the project's own workspace (its Cargo.toml has `[workspace]`).
    out
}

/// The workspace's line for `key`: `[workspace.package]` for package keys,
/// `[workspace.dependencies]` for dependencies.
fn workspace_value(key: &str) -> Option<String> {
    let mut section = "";
    for line in WORKSPACE.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed;
            continue;
        }
        let wanted = matches!(section, "[workspace.package]" | "[workspace.dependencies]");
        if wanted
            && let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(trimmed.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_inherits_nothing_and_finds_its_wit() {
        let files = files();
        let manifest = &files.iter().find(|(p, _)| p == "Cargo.toml").unwrap().1;
        assert!(!manifest.contains("workspace = true"), "{manifest}");
        assert!(manifest.contains("k8s-openapi = {"), "{manifest}");
        assert!(manifest.contains("version = \""), "{manifest}");
        let lib = &files.iter().find(|(p, _)| p == "src/lib.rs").unwrap().1;
        assert!(
            lib.contains(r#"path: "wit","#),
            "the SDK no longer names ../../wit"
        );
        let on_disk: Vec<_> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/sdk/src"))
                .unwrap()
                .map(|e| format!("src/{}", e.unwrap().file_name().to_string_lossy()))
                .collect();
        for file in on_disk {
            assert!(
                files.iter().any(|(p, _)| *p == file),
                "{file} is not embedded"
            );
        }
    }
}
