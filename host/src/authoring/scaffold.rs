//! `bouncer new`: a policy project that builds and passes its own suite at once.
//!
//! Templates live in `templates/` and are embedded in the binary, so `bouncer new`
//! works wherever the binary does. JavaScript and Python projects get a copy of
//! the WIT contract (`wit/policy.wit`), which their toolchains read; Rust projects
//! get the SDK itself, contract included (`sdk.rs`), unless `--sdk` names one.

use std::path::{Path, PathBuf};

use super::build::{COMPONENTIZE_JS_VERSION, COMPONENTIZE_PY_VERSION, RUST_TARGET};
use super::project::{self, Language};
use crate::policy::bindings::WIT;

/// What to scaffold.
#[derive(Debug, Clone)]
pub struct Options {
    /// The policy's name (a directory, crate and configuration name).
    pub name: String,
    /// Its language.
    pub language: Language,
    /// The directory to create; `./<name>` by default.
    pub path: PathBuf,
    /// The Rust SDK to depend on; `None` writes the SDK embedded in this binary
    /// into the project (`bouncer-sdk/`).
    pub sdk: Option<PathBuf>,
}

/// Why scaffolding failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a crate or package name.
    #[error("{0}")]
    BadName(String),
    /// The target directory exists and is not empty.
    #[error("{} already exists and is not empty; choose another --path", .0.display())]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Writes a new project; returns the files written, relative to the project.
///
/// # Errors
/// The name is invalid, the directory is not empty, or a file cannot be written.
pub fn scaffold(options: &Options) -> Result<Vec<PathBuf>, ScaffoldError> {
    project::check_name(&options.name).map_err(ScaffoldError::BadName)?;
    let dir = &options.path;
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(ScaffoldError::Exists(dir.clone()));
    }
    let values = Values::new(options);
    let mut files: Vec<(&str, &str)> = vec![
        ("README.md", include_str!("templates/common/README.md")),
        (".gitignore", include_str!("templates/common/gitignore")),
    ];
    let suite_name = format!("{}.bouncer-test.yaml", options.name);
    match options.language {
        Language::Rust => files.extend([
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("templates/rust/src/lib.rs")),
        ]),
        Language::Js => files.extend([
            ("package.json", include_str!("templates/js/package.json")),
            ("policy.js", include_str!("templates/js/policy.js")),
            ("wit/policy.wit", WIT),
        ]),
        Language::Python => files.extend([
            ("app.py", include_str!("templates/python/app.py")),
            (
                "requirements-dev.txt",
                include_str!("templates/python/requirements-dev.txt"),
            ),
            ("wit/policy.wit", WIT),
        ]),
    }
    files.push((
        suite_name.as_str(),
        include_str!("templates/common/suite.bouncer-test.yaml"),
    ));
    let sdk_files = match (options.language, &options.sdk) {
        (Language::Rust, None) => super::sdk::files(),
        _ => Vec::new(),
    };
    let mut written = Vec::new();
    for (relative, template) in files {
        let path = dir.join(relative);
        let text = if relative == "wit/policy.wit" {
            template.to_owned()
        } else {
            values.fill(template)
        };
        write(&path, &text)?;
        written.push(PathBuf::from(relative));
    }
    for (relative, text) in sdk_files {
        let relative = Path::new(super::sdk::DIR).join(relative);
        write(&dir.join(&relative), &text)?;
        written.push(relative);
    }
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    let fail = |source| ScaffoldError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}

/// The values substituted for `{{…}}` in templates.
struct Values {
    pairs: Vec<(&'static str, String)>,
}

impl Values {
    fn new(options: &Options) -> Self {
        let description = "Pods and Deployments carry the labels listed in requiredLabels.";
        let (setup, build_command) = match options.language {
            Language::Rust => (
                format!(
                    "Needs Rust and its `{RUST_TARGET}` target (`rustup target add {RUST_TARGET}`).\n"
                ),
                format!("cargo build --release --target {RUST_TARGET}"),
            ),
            Language::Js => (
                "Needs Node.js 20+ and npm; the first `bouncer build` installs the pinned \
                 componentize-js into `node_modules/` (or run `npm install`).\n"
                    .to_owned(),
                "componentize-js policy.js --wit wit --world-name policy".to_owned(),
            ),
            Language::Python => (
                "Needs Python 3.10+; the first `bouncer build` creates a virtualenv in `.venv/` \
                 with the pinned componentize-py (or `pip install -r requirements-dev.txt` \
                 into an environment of yours).\n"
                    .to_owned(),
                "componentize-py -d wit -w policy componentize app".to_owned(),
            ),
        };
        let sdk = match &options.sdk {
            Some(path) => format!("{{ path = {:?} }}", path.display().to_string()),
            None => format!("{{ path = {:?} }}", super::sdk::DIR),
        };
        Self {
            pairs: vec![
                ("name", options.name.clone()),
                ("description", description.to_owned()),
                ("language", options.language.to_string()),
                ("setup", setup),
                ("build_command", build_command),
                ("path", options.path.display().to_string()),
                ("sdk", sdk),
                (
                    "componentize_js_version",
                    COMPONENTIZE_JS_VERSION.to_owned(),
                ),
                (
                    "componentize_py_version",
                    COMPONENTIZE_PY_VERSION.to_owned(),
                ),
            ],
        }
    }

    fn fill(&self, template: &str) -> String {
        let mut text = template.to_owned();
        for (key, value) in &self.pairs {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        text
    }
}
