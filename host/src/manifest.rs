//! Kubernetes manifests on disk: files, directories and stdin, read into
//! objects that remember the file and line they came from.
//!
//! Reading never stops at the first problem: a document that does not parse,
//! or is not an object, becomes a [`ManifestError`] with its `file:line` and
//! the other documents are still returned.

pub mod documents;
pub mod placement;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use documents::{Document, DocumentError};

/// Suite files are YAML but not manifests; a directory walk skips them.
pub const SUITE_SUFFIX: &str = ".bouncer-test.yaml";

/// One Kubernetes object found in a manifest.
///
/// Kept as compact JSON, not as a parsed value: `bouncer check` holds every
/// object of a pull request at once (they are the cluster it judges against),
/// and parsed they take about ten times their text.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    /// Where it is.
    pub origin: Origin,
    json: String,
    kind: String,
    name: String,
}

impl ManifestObject {
    /// The object at `origin`.
    pub fn new(origin: Origin, value: &Value) -> Self {
        let text = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let name = match text("/metadata/name") {
            name if name.is_empty() => text("/metadata/generateName"),
            name => name,
        };
        Self {
            origin,
            json: value.to_string(),
            kind: text("/kind"),
            name,
        }
    }

    /// The object, parsed anew.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The object as compact JSON.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The object's `kind`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The object's `metadata.name` (or `generateName`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A place in a manifest: file, line, and the item of a `List`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as the user named it, or `-` for stdin.
    pub file: String,
    /// The 1-based line the document starts on.
    pub line: usize,
    /// The index in a `List`'s `items`.
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(item) = self.item {
            write!(f, " items[{item}]")?;
        }
        Ok(())
    }
}

/// Something in a manifest that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ManifestError {
    /// Where.
    pub origin: Origin,
    /// What was wrong.
    pub message: String,
}

/// Everything read from a set of paths.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// The objects, in file order then document order.
    pub objects: Vec<ManifestObject>,
    /// The documents and files that could not be used.
    pub errors: Vec<ManifestError>,
    /// How many files were read.
    pub files: usize,
}

impl Manifests {
    fn add(&mut self, other: Manifests) {
        self.objects.extend(other.objects);
        self.errors.extend(other.errors);
        self.files += other.files;
    }
}

/// Reads files, directories (recursively: `.yaml`, `.yml`, `.json`) and `-` (stdin).
pub fn read_paths(paths: &[PathBuf]) -> Manifests {
    let mut all = Manifests::default();
    for path in paths {
        if path == Path::new("-") {
            all.add(read_stdin());
        } else if path.is_dir() {
            for file in manifest_files(path, &mut all.errors) {
                all.add(read_file(&file));
            }
        } else {
            all.add(read_file(path));
        }
    }
    all
}

/// Reads one manifest file.
pub fn read_file(path: &Path) -> Manifests {
    let file = path.display().to_string();
    match yaml::read_file(path) {
        Ok(text) => {
            let json = path.extension().is_some_and(|e| e == "json");
            parse(&text, &file, json)
        }
        Err(error) => Manifests {
            errors: vec![ManifestError {
                origin: Origin {
                    file,
                    line: 0,
                    item: None,
                },
                message: format!("cannot read: {error}"),
            }],
            ..Manifests::default()
        },
    }
}

fn read_stdin() -> Manifests {
    match yaml::read_bounded(std::io::stdin()) {
        Ok(text) => parse(&text, "-", documents::looks_like_json(&text)),
        Err(error) => Manifests {
            errors: vec![ManifestError {
                origin: Origin {
                    file: "-".into(),
                    line: 0,
                    item: None,
                },
                message: format!("cannot read stdin: {error}"),
            }],
            ..Manifests::default()
        },
    }
}

/// Parses the text of one file named `file`; `json` picks the JSON reader.
pub fn parse(text: &str, file: &str, json: bool) -> Manifests {
    let mut manifests = Manifests {
        files: 1,
        ..Manifests::default()
    };
    let at = |line, item| Origin {
        file: file.to_owned(),
        line,
        item,
    };
    let mut each = |result: Result<Document, DocumentError>| match result {
        Ok(document) => expand(document.value, at(document.line, None), &mut manifests),
        Err(error) => manifests.errors.push(ManifestError {
            origin: at(error.line, None),
            message: format!(
                "not valid {}: {}",
                if json { "JSON" } else { "YAML" },
                error.message
            ),
        }),
    };
    if json {
        documents::each_json(text, &mut each);
    } else {
        documents::each_yaml(text, &mut each);
    }
    manifests
}

/// Adds `value` as an object, or each item of a `List`, or an error saying why not.
fn expand(value: Value, origin: Origin, into: &mut Manifests) {
    let error = |message: String| ManifestError {
        origin: origin.clone(),
        message,
    };
    let Value::Object(map) = &value else {
        into.errors.push(error(format!(
            "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
            type_name(&value)
        )));
        return;
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        into.errors.push(error("the document has no `kind`".into()));
        return;
    }
    if map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        into.errors
            .push(error(format!("the {kind} has no `apiVersion`")));
        return;
    }
    if let (true, Some(Value::Array(items))) = (kind.ends_with("List"), map.get("items")) {
        for (index, item) in items.iter().enumerate() {
            let origin = Origin {
                item: Some(index),
                ..origin.clone()
            };
            expand(item.clone(), origin, into);
        }
        return;
    }
    into.objects.push(ManifestObject::new(origin, &value));
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The manifest files under `dir`, sorted, skipping hidden entries and suites.
fn manifest_files(dir: &Path, errors: &mut Vec<ManifestError>) -> Vec<PathBuf> {
    let (files, unreadable) = files_under(dir, &[], |name| {
        [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
            && !name.ends_with(SUITE_SUFFIX)
    });
    errors.extend(unreadable.into_iter().map(|(path, message)| ManifestError {
        origin: Origin {
            file: path.display().to_string(),
            line: 0,
            item: None,
        },
        message,
    }));
    files
}

/// The files under `dir` whose name `wanted` accepts, sorted, skipping hidden
/// entries and directories named in `skip_dirs`; and what could not be read.
pub fn files_under(
    dir: &Path,
    skip_dirs: &[&str],
    wanted: impl Fn(&str) -> bool,
) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let walk = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            let skipped =
                name.starts_with('.') || (e.file_type().is_dir() && skip_dirs.contains(&&*name));
            e.depth() == 0 || !skipped
        });
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    for entry in walk {
        match entry {
            Ok(entry)
                if entry.file_type().is_file() && wanted(&entry.file_name().to_string_lossy()) =>
            {
                files.push(entry.into_path());
            }
            Ok(_) => {}
            Err(error) => errors.push((
                error.path().unwrap_or(dir).to_owned(),
                format!("cannot read: {error}"),
            )),
        }
    }
    (files, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand_and_bad_documents_do_not_stop_the_rest() {
        let text = "\
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
---
metadata: {name: nokind}
---
- just a list
---
apiVersion: v1
kind: Service
metadata: {name: svc}
";
        let read = parse(text, "m.yaml", false);
        let names: Vec<_> = read.objects.iter().map(ManifestObject::name).collect();
        assert_eq!(names, ["a", "b", "svc"]);
        assert_eq!(read.objects[1].origin.to_string(), "m.yaml:1 items[1]");
        assert_eq!(read.objects[2].origin.line, 11);
        let errors: Vec<_> = read.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "m.yaml:7: the document has no `kind`",
                "m.yaml:9: expected a Kubernetes object (a mapping with apiVersion and kind), found a list"
            ]
        );
    }
}
