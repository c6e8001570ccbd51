//! `bouncer check`: manifests against the house rules, as a report a person
//! can paste into a pull-request review, or as JSON for tools.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anstyle::Style;
use anyhow::{Result, bail};

use super::findings::{DENY, ERROR, OK, PATCH, WARN, line, object_label};
use super::{EXIT_DENIED, EXIT_ERROR};
use bouncer::offline::{CheckReport, PolicyFinding, check};
use bouncer::policy::EngineConfig;

/// Arguments of `bouncer check`.
#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    /// Manifests: files, directories (searched recursively for .yaml, .yml, .json) or `-` for stdin.
    #[arg(
        long = "filename",
        short = 'f',
        required = true,
        value_name = "FILE|DIR|-"
    )]
    files: Vec<PathBuf>,
    /// The policies to check against [default: the embedded default config].
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Cluster state for context-aware policies: objects that exist but are not checked
    /// (files or directories, like -f).
    #[arg(long, value_name = "FILE|DIR")]
    context: Vec<PathBuf>,
    /// The namespace of objects whose manifest names none.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// `text` for people, `json` for tools.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: super::Output,
}

/// Runs `bouncer check`.
pub(super) fn run(args: &CheckArgs, engine: &EngineConfig) -> Result<ExitCode> {
    let set = super::load_set(args.config.as_deref(), engine)?;
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("`-f -` (stdin) can be given once");
    }
    let manifests = bouncer::manifest::read_paths(&args.files);
    let context = bouncer::manifest::read_paths(&args.context);
    if let Some(error) = context.errors.first() {
        bail!("reading --context: {error}");
    }
    let report = check(&set, &manifests, &context.objects, &args.namespace);

    let mut out = anstream::stdout().lock();
    match args.output {
        super::Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        super::Output::Text => write_text(&mut out, &report, set.entries().len())?,
    }
    Ok(if !report.errors.is_empty() {
        ExitCode::from(EXIT_ERROR)
    } else if report.summary.denied > 0 {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per finding, `file:line kind/namespace/name policy: message`,
/// grouped by file (a blank line between files), then the summary.
fn write_text(
    out: &mut impl std::io::Write,
    report: &CheckReport,
    policies: usize,
) -> std::io::Result<()> {
    let mut lines: Vec<(&str, usize, String)> = Vec::new();
    for finding in &report.results {
        let at = format!("{}:{}", finding.file, finding.line);
        let mut object = object_label(&finding.kind, finding.namespace.as_deref(), &finding.name);
        if let Some(item) = finding.item {
            object = format!("{object} (items[{item}])");
        }
        let mut push = |style: Style, label: &str, text: String| {
            lines.push((
                &finding.file,
                finding.line,
                line(style, label, Some(&at), &object, &finding.policy, &text),
            ));
        };
        if !finding.allowed {
            push(DENY, "DENY", finding.message.clone().unwrap_or_default());
        }
        for warning in &finding.warnings {
            push(WARN, "WARN", warning.clone());
        }
        if finding.allowed && finding.patched.is_some() {
            push(PATCH, "PATCH", describe_patch(finding));
        }
    }
    for error in &report.errors {
        let at = if error.line == 0 {
            error.file.clone()
        } else {
            format!("{}:{}", error.file, error.line)
        };
        lines.push((
            &error.file,
            error.line,
            format!("{ERROR}ERROR{ERROR:#} {at} {}", error.message),
        ));
    }
    for duplicate in &report.duplicates {
        lines.push((
            &duplicate.file,
            duplicate.line,
            format!(
                "{WARN}WARN{WARN:#}  {} {} is defined twice: here and at {}; policies that look it up \
                 see only the one at {}",
                duplicate.ignored, duplicate.object, duplicate.used, duplicate.used
            ),
        ));
    }
    // Stable: findings keep policy order within an object.
    lines.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut previous: Option<&str> = None;
    for (file, _, line) in &lines {
        if previous.is_some_and(|p| p != *file) {
            writeln!(out)?;
        }
        previous = Some(file);
        writeln!(out, "{line}")?;
    }
    if !lines.is_empty() {
        writeln!(out)?;
    }
    let s = &report.summary;
    let clean = s.objects - s.denied - s.warned;
    let verdict = if s.denied > 0 || s.errors > 0 {
        DENY
    } else {
        OK
    };
    writeln!(
        out,
        "{verdict}{} objects in {} files checked against {} {}{verdict:#}: {} denied, {} with warnings, {} patched, {} clean{}",
        s.objects,
        s.files,
        policies,
        if policies == 1 { "policy" } else { "policies" },
        s.denied,
        s.warned,
        s.patched,
        clean,
        match s.errors {
            0 => String::new(),
            1 => "; 1 document could not be read".into(),
            n => format!("; {n} documents could not be read"),
        }
    )
}

/// The mutation in words: the JSON Patch operations from the manifest to the result.
fn describe_patch(finding: &PolicyFinding) -> String {
    let Some(patch) = &finding.patch else {
        return "changes the object".into();
    };
    let ops: Vec<String> = patch
        .0
        .iter()
        .map(|op| match op {
            json_patch::PatchOperation::Add(op) => format!("add {} = {}", op.path, op.value),
            json_patch::PatchOperation::Replace(op) => format!("set {} = {}", op.path, op.value),
            json_patch::PatchOperation::Remove(op) => format!("remove {}", op.path),
            other => other.to_string(),
        })
        .collect();
    format!("changes the object: {}", ops.join(", "))
}
