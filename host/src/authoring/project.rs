//! A policy project on disk: its language, its name, and where its component goes.

use std::fmt;
use std::path::{Path, PathBuf};

/// The file a project's build writes, relative to the project.
pub const COMPONENT_FILE: &str = "policy.wasm";

/// A language bouncer can scaffold and build policies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        .map_or_else(|| "policy".to_owned(), |n| n.to_string_lossy().into_owned())
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

/// Turns what a user typed for a policy (`bouncer eval -p`, `inspect`, a
/// suite's `policy:`) into its name and component: a built-in name (with or
/// without `builtin:`), a `.wasm` file, or a project directory (its built
/// `policy.wasm`). Relative paths are taken from `base`.
///
/// # Errors
/// A message saying which of the three it is not, or that a project is not built.
pub fn resolve(argument: &str, base: &Path) -> Result<(String, crate::policy::Source), String> {
    use crate::policy::Source;
    if let Some(name) = argument.strip_prefix("builtin:") {
        return Source::builtin(name)
            .map(|source| (name.to_owned(), source))
            .map_err(|e| e.to_string());
    }
    let path = base.join(argument);
    if path.is_dir() {
        let component = component_path(&path);
        if !component.is_file() {
            return Err(format!(
                "{} is a policy project that is not built yet ({} is missing): run `bouncer build {}` first",
                path.display(),
                component.display(),
                path.display()
            ));
        }
        return Ok((name_of(&path), Source::File(component)));
    }
    if argument.ends_with(".wasm") || argument.contains(std::path::MAIN_SEPARATOR) {
        let project = path.parent().unwrap_or(base);
        if path.file_name() == Some(COMPONENT_FILE.as_ref())
            && !path.exists()
            && detect(project).is_some()
        {
            return Err(format!(
                "{} is not built yet: run `bouncer build {}` first",
                path.display(),
                project.display()
            ));
        }
        return Ok((name_of_component(&path), Source::File(path)));
    }
    Source::builtin(argument)
        .map(|source| (argument.to_owned(), source))
        .map_err(|e| format!("{e}; nor is `{argument}` a .wasm file or a policy project directory"))
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
