//! The suite file schema (`apiVersion: bouncer.dev/v1alpha1`, `kind: TestSuite`),
//! exactly as written on disk. Unknown keys are refused so a typo such as
//! `alowed:` fails loudly instead of silently asserting nothing.
//!
//! [`super::suite`] turns these into runnable cases; docs/testing.md is the
//! user-facing description of every key.

use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::Value;

/// The only suite apiVersion this bouncer reads.
pub(super) const API_VERSION: &str = "bouncer.dev/v1alpha1";
/// The kind of a suite file.
pub(super) const KIND: &str = "TestSuite";

/// A suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SuiteFile {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// How results name the suite; the file name without `.bouncer-test.yaml` by default.
    pub name: Option<String>,
    /// `builtin:<name>` or a `.wasm` path: test one policy.
    pub policy: Option<String>,
    /// The settings of `policy`.
    pub settings: Option<Value>,
    /// The kinds `policy` may look up (its config entry's `context`).
    #[serde(default)]
    pub context_kinds: Vec<crate::policy::ContextKind>,
    /// A `policies.yaml`: test the whole configured set, match rules included.
    pub config: Option<String>,
    /// The namespace of objects whose manifest names none (default `default`).
    pub namespace: Option<String>,
    /// Objects the cluster holds in every case, before each case's own `context`.
    pub context: Option<ContextFile>,
    /// The cases, run in parallel.
    pub cases: Vec<CaseFile>,
}

/// One case as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CaseFile {
    /// Shown in results; unique within the suite.
    pub name: String,
    /// The object, inline.
    pub object: Option<Value>,
    /// A manifest file holding the object (YAML or JSON, may hold several documents).
    pub manifest: Option<String>,
    /// Which document of `manifest`, counting from 0.
    pub document: Option<usize>,
    /// Which document of `manifest`, by kind and/or name.
    pub select: Option<Select>,
    /// A full AdmissionReview or AdmissionRequest file, used as is.
    pub request: Option<String>,
    /// `CREATE` (default), `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: Option<Operation>,
    /// The object before the change, inline.
    pub old_object: Option<Value>,
    /// A manifest file holding the old object.
    pub old_manifest: Option<String>,
    /// Which document of `oldManifest`, counting from 0.
    pub old_document: Option<usize>,
    /// Who asks: `username`, `uid`, `groups`, `extra`.
    pub user_info: Option<Value>,
    /// The request's namespace when the object names none.
    pub namespace: Option<String>,
    /// Whether the request is a dry run.
    pub dry_run: Option<bool>,
    /// `status`, `scale`, …
    pub sub_resource: Option<String>,
    /// Objects the cluster holds, for context-aware policies and `namespaceSelector`.
    pub context: Option<ContextFile>,
    /// What must come back.
    pub expect: ExpectFile,
}

/// Picks a document by what it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Select {
    /// The document's `kind`.
    pub kind: Option<String>,
    /// The document's `metadata.name`.
    pub name: Option<String>,
}

/// Cluster objects a case runs against.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContextFile {
    /// Objects, inline.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Manifest files; every object in them.
    #[serde(default)]
    pub manifests: Vec<String>,
}

/// Expectations as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ExpectFile {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// A substring of the denial message.
    pub message: Option<String>,
    /// A regular expression the denial message must match.
    pub message_matches: Option<String>,
    /// The HTTP code of the denial.
    pub code: Option<u16>,
    /// Substrings, each found in some warning; `[]` means no warnings.
    pub warnings: Option<Vec<String>>,
    /// Whether a policy changed the object.
    pub patched: Option<bool>,
    /// The whole object after mutation, inline.
    pub patched_object: Option<Value>,
    /// The whole object after mutation, from a manifest file.
    pub patched_manifest: Option<String>,
    /// JSONPath assertions on the object after admission (patched or not).
    #[serde(default)]
    pub assertions: Vec<AssertionFile>,
}

/// One JSONPath assertion as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionFile {
    /// A JSONPath (RFC 9535), such as `$.metadata.annotations['a/b']`.
    pub path: String,
    /// Every value the path selects equals this (and it selects at least one).
    pub equals: Option<Value>,
    /// Whether the path selects anything.
    pub exists: Option<bool>,
}
