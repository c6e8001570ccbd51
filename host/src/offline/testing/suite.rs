//! Loading a suite: parse the file, resolve every path against the suite's
//! directory, load the policies, and check each case is complete, so that a
//! broken suite fails before anything runs, with `file:line`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kube::core::admission::Operation;
use serde_json::Value;

use super::format::{API_VERSION, AssertionFile, CaseFile, ContextFile, KIND, SuiteFile};
use crate::admission::RequestSpec;
use crate::admission::{PolicySet, Pulls, Request, loader, review};
use crate::authoring::project;
use crate::config::{Config, ConfigSource, PolicyConfig};
use crate::manifest::{self, ManifestObject};
use crate::policy::{PolicyEngine, Source};
use crate::registry::PolicyRef;

/// A suite ready to run.
#[derive(Debug)]
pub struct Suite {
    /// The suite file.
    pub path: PathBuf,
    /// Its name in results.
    pub name: String,
    /// The policies under test.
    pub set: PolicySet,
    /// Its cases, in file order.
    pub cases: Vec<Case>,
}

/// One case ready to run.
#[derive(Debug)]
pub struct Case {
    /// Its name.
    pub name: String,
    /// The line it starts on in the suite file.
    pub line: usize,
    /// What is sent.
    pub input: Input,
    /// Cluster objects it runs against.
    pub context: Vec<Value>,
    /// What must come back.
    pub expect: Expect,
}

/// What a case sends.
#[derive(Debug)]
pub enum Input {
    /// A request built as the API server would build it.
    Spec(RequestSpec),
    /// A request read from a file, used as is.
    Request(Box<Request>),
}

/// A case's expectations, checked and compiled.
#[derive(Debug)]
pub struct Expect {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// A substring of the denial message.
    pub message: Option<String>,
    /// A pattern the denial message must match.
    pub message_matches: Option<regex::Regex>,
    /// The HTTP code of the denial.
    pub code: Option<u16>,
    /// Substrings each found in some warning; empty means none at all.
    pub warnings: Option<Vec<String>>,
    /// Whether a policy changed the object.
    pub patched: Option<bool>,
    /// The whole object after mutation.
    pub patched_object: Option<Value>,
    /// JSONPath assertions on the object after admission.
    pub assertions: Vec<AssertionFile>,
}

/// A suite that cannot be read or loaded.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct SuiteError {
    /// The suite file.
    pub file: PathBuf,
    /// The line the problem is on (1 when it concerns the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads and loads the suite at `path`; policies are loaded with `engine`.
pub fn load(path: &Path, engine: &Arc<PolicyEngine>) -> Result<Suite, SuiteError> {
    let fail = |line: usize, message: String| SuiteError {
        file: path.to_owned(),
        line: line.max(1),
        message,
    };
    let text = manifest::yaml::read_file(path).map_err(|e| fail(1, format!("cannot read: {e}")))?;
    let file: SuiteFile = manifest::yaml::from_str(&text).map_err(|e| {
        let line = e.line().unwrap_or(1);
        fail(line, manifest::documents::without_location(&e.to_string()))
    })?;
    if file.api_version != API_VERSION || file.kind != KIND {
        return Err(fail(
            1,
            format!(
                "expected apiVersion `{API_VERSION}` and kind `{KIND}`, got `{}` and `{}`",
                file.api_version, file.kind
            ),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
    let (config, key) =
        target_config(&file, &dir).map_err(|(key, m)| fail(key_line(&text, key), m))?;
    let set = loader::load(engine, &config, Pulls::Now)
        .map_err(|e| e.to_string())
        .and_then(|loaded| loaded.strict().map_err(|e| e.to_string()))
        .map_err(|m| fail(key_line(&text, key), m))?
        .set;

    let lines = case_lines(&text);
    let namespace = file.namespace.as_deref().unwrap_or("default");
    let shared = resolve_context(file.context.unwrap_or_default(), &dir)
        .map_err(|m| fail(key_line(&text, "context"), m))?;
    let mut cases = Vec::with_capacity(file.cases.len());
    for (index, case) in file.cases.into_iter().enumerate() {
        let line = lines.get(index).copied().unwrap_or(1);
        if cases.iter().any(|c: &Case| c.name == case.name) {
            return Err(fail(line, format!("two cases are named `{}`", case.name)));
        }
        let name = case.name.clone();
        let case = resolve_case(case, &dir, namespace, &shared, line)
            .map_err(|m| fail(line, format!("case `{name}`: {m}")))?;
        cases.push(case);
    }
    let name = file.name.unwrap_or_else(|| default_name(path));
    Ok(Suite {
        path: path.to_owned(),
        name,
        set,
        cases,
    })
}

/// The configuration under test, and the key it came from (for error lines).
fn target_config(
    file: &SuiteFile,
    dir: &Path,
) -> Result<(ConfigSource, &'static str), (&'static str, String)> {
    match (&file.policy, &file.config) {
        (Some(policy), None) => {
            let (name, source) = if PolicyRef::is_oci(policy) {
                // Resolved by the registry at load, as `serve` would.
                let reference = PolicyRef::parse(policy).map_err(|e| ("policy", e.to_string()))?;
                let name = reference.repository().rsplit('/').next().unwrap_or("policy").to_owned();
                (name, policy.clone())
            } else {
                let (name, source) = project::resolve(policy, dir).map_err(|e| ("policy", e))?;
                // The config below resolves relative paths again: hand it an absolute one.
                let source = match source {
                    Source::File(path) => std::path::absolute(&path).unwrap_or(path).display().to_string(),
                    other => other.to_string(),
                };
                (name, source)
            };
            let entry = PolicyConfig {
                name,
                source,
                settings: file.settings.clone().unwrap_or_else(|| serde_json::json!({})),
                mode: Default::default(),
                failure: Default::default(),
                rules: Default::default(),
                // The point of a policy's own suite is to see its mutations.
                mutating: Some(true),
                timeout: None,
                memory: None,
                concurrency: None,
                context: file.context_kinds.clone(),
                shadow: None,
            };
            let config = Config {
                policies: vec![entry],
                registry: Default::default(),
                verify: Default::default(),
                exceptions: None,
                companion: Default::default(),
                base_dir: dir.to_owned(),
            };
            Ok((ConfigSource::Given(Box::new(config), "the suite's policy".into()), "policy"))
        }
        (None, Some(config)) => {
            if !file.context_kinds.is_empty() {
                return Err(("contextKinds", "`contextKinds` belongs to `policy`; with `config`, each entry declares its `context`".into()));
            }
            if file.settings.is_some() {
                return Err(("settings", "`settings` belongs to `policy`; with `config`, settings come from the config file".into()));
            }
            // `default` is the embedded default config: the built-in house rules as shipped.
            let source = if config == "default" {
                ConfigSource::Embedded
            } else {
                ConfigSource::File(dir.join(config))
            };
            Ok((source, "config"))
        }
        (Some(_), Some(_)) => Err(("config", "give either `policy` or `config`, not both".into())),
        (None, None) => Err(("cases", "the suite names nothing to test: add `policy: builtin:<name>` (or a .wasm path) or `config: <policies.yaml>`".into())),
    }
}

fn default_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file
        .strip_suffix(manifest::SUITE_SUFFIX)
        .or_else(|| file.strip_suffix(".yaml"))
        .or_else(|| file.strip_suffix(".yml"))
        .unwrap_or(&file);
    // `suite.bouncer-test.yaml` next to a policy crate is named after the crate.
    if stem == "suite"
        && let Some(parent) = path.parent().and_then(Path::file_name)
    {
        return parent.to_string_lossy().into_owned();
    }
    stem.to_owned()
}

fn resolve_case(
    case: CaseFile,
    dir: &Path,
    namespace: &str,
    shared: &[Value],
    line: usize,
) -> Result<Case, String> {
    let inputs = [
        case.object.is_some(),
        case.manifest.is_some(),
        case.request.is_some(),
    ];
    match inputs.iter().filter(|given| **given).count() {
        1 => {}
        0 => return Err("give the input: `object`, `manifest` or `request`".into()),
        _ => return Err("give only one of `object`, `manifest` and `request`".into()),
    }
    if case.manifest.is_none() && (case.document.is_some() || case.select.is_some()) {
        return Err("`document` and `select` pick from a `manifest`".into());
    }
    if case.old_manifest.is_none() && case.old_document.is_some() {
        return Err("`oldDocument` picks from an `oldManifest`".into());
    }
    let mut context = shared.to_vec();
    context.extend(resolve_context(case.context.unwrap_or_default(), dir)?);
    let expect = resolve_expect(case.expect, dir)?;
    let input = if let Some(request) = &case.request {
        let overrides = [
            ("operation", case.operation.is_some()),
            (
                "oldObject",
                case.old_object.is_some() || case.old_manifest.is_some(),
            ),
            ("userInfo", case.user_info.is_some()),
            ("namespace", case.namespace.is_some()),
            ("dryRun", case.dry_run.is_some()),
            ("subResource", case.sub_resource.is_some()),
        ];
        if let Some((key, _)) = overrides.iter().find(|(_, set)| *set) {
            return Err(format!(
                "`{key}` cannot be combined with `request`: the request file says it"
            ));
        }
        let path = dir.join(request);
        let text = manifest::yaml::read_file(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let request =
            review::decode_document(&text).map_err(|e| format!("{}: {e:#}", path.display()))?;
        Input::Request(Box::new(request))
    } else {
        // Exactly one input was given and it is not `request`.
        let object = match case.object {
            Some(object) => object,
            None => {
                let file = case.manifest.as_deref().unwrap_or_default();
                pick(dir, file, case.document, case.select.as_ref())?
            }
        };
        let old_object = match (case.old_object, &case.old_manifest) {
            (Some(_), Some(_)) => return Err("give one of `oldObject` and `oldManifest`".into()),
            (Some(object), None) => Some(object),
            (None, Some(file)) => Some(pick(dir, file, case.old_document, None)?),
            (None, None) => None,
        };
        let operation = case.operation.unwrap_or(Operation::Create);
        let (object, old_object) = match operation {
            // The object being deleted is the old object; `object` is the natural way to write it.
            Operation::Delete => (None, old_object.or(Some(object))),
            Operation::Update if old_object.is_none() => {
                return Err("an UPDATE needs the object before the change: add `oldObject` or `oldManifest`".into());
            }
            _ => (Some(object), old_object),
        };
        if case.user_info.as_ref().is_some_and(|u| !u.is_object()) {
            return Err("`userInfo` must be a mapping (username, uid, groups, extra)".into());
        }
        Input::Spec(RequestSpec {
            operation,
            object,
            old_object,
            default_namespace: case.namespace.unwrap_or_else(|| namespace.to_owned()),
            user_info: case.user_info,
            dry_run: case.dry_run.unwrap_or(false),
            sub_resource: case.sub_resource,
            cluster_scoped: None,
        })
    };
    Ok(Case {
        name: case.name,
        line,
        input,
        context,
        expect,
    })
}

/// One object of a manifest file: the only one, or the one `document`/`select` picks.
fn pick(
    dir: &Path,
    file: &str,
    document: Option<usize>,
    select: Option<&super::format::Select>,
) -> Result<Value, String> {
    let objects = read_objects(dir, file)?;
    let chosen: Vec<&ManifestObject> = match (document, select) {
        (Some(_), Some(_)) => return Err("give one of `document` and `select`".into()),
        (Some(index), None) => objects.get(index).into_iter().collect(),
        (None, Some(select)) => objects
            .iter()
            .filter(|o| select.kind.as_deref().is_none_or(|k| o.kind() == k))
            .filter(|o| select.name.as_deref().is_none_or(|n| o.name() == n))
            .collect(),
        (None, None) => objects.iter().collect(),
    };
    match chosen.as_slice() {
        [one] => Ok(one.value()),
        [] => Err(match document {
            Some(index) => format!(
                "{file} has {} documents; `document: {index}` is out of range (counting from 0)",
                objects.len()
            ),
            None => format!("no document in {file} matches `select`"),
        }),
        many => Err(format!(
            "{file} holds {} objects ({}); pick one with `document: <index>` or `select: {{kind, name}}`",
            many.len(),
            many.iter()
                .map(|o| format!("{}/{}", o.kind(), o.name()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn read_objects(dir: &Path, file: &str) -> Result<Vec<ManifestObject>, String> {
    let read = manifest::read_file(&dir.join(file));
    if let Some(error) = read.errors.first() {
        return Err(error.to_string());
    }
    Ok(read.objects)
}

fn resolve_context(context: ContextFile, dir: &Path) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for object in context.objects {
        let named = object.get("kind").and_then(Value::as_str).is_some()
            && object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some();
        if !named {
            return Err("every `context.objects` entry needs `kind` and `metadata.name`".into());
        }
        objects.push(object);
    }
    for file in &context.manifests {
        objects.extend(read_objects(dir, file)?.iter().map(ManifestObject::value));
    }
    Ok(objects)
}

fn resolve_expect(expect: super::format::ExpectFile, dir: &Path) -> Result<Expect, String> {
    let message_matches = expect
        .message_matches
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| format!("`expect.messageMatches` is not a valid regular expression: {e}"))?;
    if expect.allowed
        && (expect.message.is_some() || message_matches.is_some() || expect.code.is_some())
    {
        return Err(
            "`message`, `messageMatches` and `code` describe a denial, but `allowed` is true"
                .into(),
        );
    }
    let patched_object = match (expect.patched_object, &expect.patched_manifest) {
        (Some(_), Some(_)) => {
            return Err("give one of `patchedObject` and `patchedManifest`".into());
        }
        (Some(object), None) => Some(object),
        (None, Some(file)) => Some(pick(dir, file, None, None)?),
        (None, None) => None,
    };
    if expect.patched == Some(false) && patched_object.is_some() {
        return Err("`patched: false` contradicts an expected patched object".into());
    }
    for assertion in &expect.assertions {
        if assertion.equals.is_none() && assertion.exists.is_none() {
            return Err(format!(
                "assertion on `{}` needs `equals` or `exists`",
                assertion.path
            ));
        }
        jsonpath_rust::parser::parse_json_path(&assertion.path)
            .map_err(|e| format!("`{}` is not a valid JSONPath: {e}", assertion.path))?;
    }
    Ok(Expect {
        allowed: expect.allowed,
        message: expect.message,
        message_matches,
        code: expect.code,
        warnings: expect.warnings,
        patched: expect.patched,
        patched_object,
        assertions: expect.assertions,
    })
}

/// The line of each item of the top-level `cases:` sequence, in order.
///
/// serde does not hand out positions, and a case's line is what a person needs
/// to find it; block-style YAML (what people write) puts each item on its own
/// `- ` line at one indentation.
pub(super) fn case_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut in_cases = false;
    let mut item_indent = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if !in_cases {
            in_cases = indent == 0 && content.starts_with("cases:");
            continue;
        }
        let is_item = content == "-" || content.starts_with("- ");
        match item_indent {
            None if is_item => {
                item_indent = Some(indent);
                lines.push(index + 1);
            }
            Some(at) if is_item && indent == at => lines.push(index + 1),
            Some(at) if indent < at || (indent == 0 && !is_item) => break,
            None if indent == 0 => break,
            _ => {}
        }
    }
    lines
}

/// The line of a top-level key, or 1.
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .map_or(1, |i| i + 1)
}

/// The suite files under each path: a file is taken as is; a directory is
/// searched for `*.bouncer-test.yaml`, skipping hidden directories and `target`.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<SuiteError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_file() {
            found.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            errors.push(SuiteError {
                file: path.clone(),
                line: 1,
                message: "no such file or directory".into(),
            });
            continue;
        }
        let (files, unreadable) = manifest::files_under(path, &["target"], |name| {
            name.ends_with(manifest::SUITE_SUFFIX)
        });
        found.extend(files);
        errors.extend(unreadable.into_iter().map(|(file, message)| SuiteError {
            file,
            line: 1,
            message,
        }));
    }
    (found, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_lines_follow_the_items_of_cases() {
        let text = "apiVersion: x\ncases:\n  # first\n  - name: a\n    expect:\n      - nested\n  - name: b\nafter: 1\n";
        assert_eq!(case_lines(text), [4, 7]);
        let flush = "cases:\n- name: a\n  x: 1\n- name: b\nother: 2\n";
        assert_eq!(case_lines(flush), [2, 4]);
    }

    #[test]
    fn suites_next_to_a_crate_are_named_after_it() {
        assert_eq!(
            default_name(Path::new("policies/alb/suite.bouncer-test.yaml")),
            "alb"
        );
        assert_eq!(
            default_name(Path::new("x/ingress.bouncer-test.yaml")),
            "ingress"
        );
    }
}
