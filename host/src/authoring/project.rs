//! A policy project on disk: its language, its name, and where its component goes.

use std::fmt;
use std::path::{Path, PathBuf};

/// The file a project's build writes, relative to the project.
pub const COMPONENT_FILE: &str = "policy.wasm";

/// A language bouncer can scaffold and build policies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust with the bouncer SDK, built for `wasm32-wasip2`.
    Rust,
    /// JavaScript, componentized by `@bytecodealliance/componentize-js`.
    Js,
    /// Python, componentized by `componentize-py`.
    Python,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rust => "Rust",
            Self::Js => "JavaScript",
            Self::Python => "Python",
        })
    }
}

/// Recognises a project by its manifest: `Cargo.toml`, `package.json` or `app.py`.
pub fn detect(dir: &Path) -> Option<Language> {
    if dir.join("Cargo.toml").is_file() {
        Some(Language::Rust)
    } else if dir.join("package.json").is_file() {
        Some(Language::Js)
    } else if dir.join("app.py").is_file() {
        Some(Language::Python)
    } else {
        None
    }
}

/// Where a project's built component is.
pub fn component_path(dir: &Path) -> PathBuf {
    dir.join(COMPONENT_FILE)
}

/// The project's name: its directory's name.
pub fn name_of(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy".to_owned())
}

/// A policy's name from its component file: the file's stem, or the project's
/// name for a project's build output (`<project>/policy.wasm`).
pub fn name_of_component(path: &Path) -> String {
    match path.parent() {
        Some(dir) if path.file_name() == Some(COMPONENT_FILE.as_ref()) => name_of(dir),
        _ => path
            .file_stem()
            .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned()),
    }
}

/// Checks a policy name: lowercase letters, digits and dashes, starting with a letter
/// (it becomes a crate, package and configuration name).
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if starts_with_letter && rest_ok && !name.ends_with('-') && name.len() <= 63 {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid policy name: use lowercase letters, digits and dashes, \
             starting with a letter (such as `deny-latest-tag`)"
        ))
    }
}
