//! `bouncer inspect`: what a policy says about itself.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::registry_flags::RegistryArgs;
use bouncer::authoring::project;
use bouncer::policy::{Description, EngineConfig, PolicyEngine, Source};
use bouncer::registry::{PolicyAnnotations, PolicyRef};

/// Arguments of `bouncer inspect`.
#[derive(Debug, clap::Args)]
pub(super) struct InspectArgs {
    /// The policy: a built-in name, a `.wasm` component, a policy project directory (its
    /// built `policy.wasm`), or `oci://registry/repository:tag` (read from the manifest's
    /// annotations, without pulling or running the component).
    policy: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: super::Output,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs `bouncer inspect`.
pub(super) fn run(args: &InspectArgs, engine: &EngineConfig) -> Result<ExitCode> {
    if PolicyRef::is_oci(&args.policy) {
        return inspect_remote(args);
    }
    let (name, source) = resolve(&args.policy)?;
    let engine = PolicyEngine::new(engine)?;
    let description = engine
        .describe(&name, &source)
        .with_context(|| format!("policy `{name}`"))?;
    let mut out = anstream::stdout().lock();
    match args.output {
        super::Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&description)?)?,
        super::Output::Text => write_text(&mut out, &source, &description)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `bouncer inspect oci://…`: the manifest's digest and annotations.
fn inspect_remote(args: &InspectArgs) -> Result<ExitCode> {
    let reference = PolicyRef::parse(&args.policy)?;
    let (digest, artifact) = RegistryArgs::exchange(bouncer::registry::inspect(
        &reference,
        &args.registry.options(&reference),
    ))??;
    let mut out = anstream::stdout().lock();
    if let super::Output::Json = args.output {
        let json = serde_json::json!({
            "reference": reference.to_string(),
            "pinned": reference.at(&digest).to_string(),
            "digest": digest,
            "component": {"digest": artifact.layer_digest, "size": artifact.layer_size},
            "annotations": artifact.annotations,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let bold = anstyle::Style::new().bold();
    let said = PolicyAnnotations::from_map(&artifact.annotations);
    match (&said.title, &said.version) {
        (Some(title), Some(version)) => writeln!(out, "{bold}{title} {version}{bold:#}")?,
        _ => writeln!(out, "{bold}{reference}{bold:#}")?,
    }
    if let Some(description) = &said.description {
        writeln!(out, "  {description}")?;
    }
    writeln!(out)?;
    writeln!(out, "source:      {}", reference.at(&digest))?;
    writeln!(
        out,
        "component:   {}, {}",
        format_size(usize::try_from(artifact.layer_size).unwrap_or(usize::MAX)),
        artifact.layer_digest
    )?;
    match &said.governs {
        Some(governs) => {
            let or_all = |v: &[String], all: &str| {
                if v.is_empty() {
                    all.to_owned()
                } else {
                    v.join(", ")
                }
            };
            writeln!(out, "governs:     {}", or_all(&governs.kinds, "any kind"))?;
            writeln!(out, "operations:  {}", or_all(&governs.operations, "all"))?;
            let mutating = if governs.mutating { "yes" } else { "no" };
            writeln!(out, "mutating:    {mutating}")?;
        }
        None => writeln!(
            out,
            "metadata:    none in the manifest (not pushed by `bouncer push`)"
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A name for messages and the source of `policy` (built-in, file, or project directory).
pub(super) fn resolve(policy: &str) -> Result<(String, Source)> {
    project::resolve(policy, Path::new("")).map_err(anyhow::Error::msg)
}

fn write_text(out: &mut impl std::io::Write, source: &Source, d: &Description) -> Result<()> {
    let bold = anstyle::Style::new().bold();
    let size = format_size(d.size);
    let sha = &d.sha256[..12];
    let Some(m) = &d.metadata else {
        writeln!(out, "{bold}{source}{bold:#}")?;
        writeln!(out, "component:   {size}, sha256 {sha}…")?;
        writeln!(
            out,
            "metadata:    none (built against bouncer:policy 0.1.0 or 0.1.1; rebuild it to declare kinds and settings)"
        )?;
        return Ok(());
    };
    writeln!(out, "{bold}{} {}{bold:#}", m.name, m.version)?;
    writeln!(out, "  {}", m.description)?;
    writeln!(out)?;
    writeln!(out, "source:      {source}")?;
    writeln!(out, "component:   {size}, sha256 {sha}…")?;
    let wasi = if d.imports_wasi {
        "bouncer:policy, locked-down WASI"
    } else {
        "bouncer:policy only"
    };
    writeln!(out, "imports:     {wasi}")?;
    let kinds = m.governed_kinds();
    let list = |items: &[String], empty: &str| {
        if items.is_empty() {
            empty.to_owned()
        } else {
            items.join(", ")
        }
    };
    writeln!(out, "governs:     {}", list(&kinds, "any kind"))?;
    writeln!(out, "operations:  {}", list(&m.operations, "all"))?;
    writeln!(
        out,
        "mutating:    {}",
        if m.mutating { "yes" } else { "no" }
    )?;
    let context: Vec<String> = m.context_kinds.iter().map(ToString::to_string).collect();
    writeln!(out, "context:     {}", list(&context, "none"))?;
    match &m.settings_schema {
        None => writeln!(out, "settings:    none declared")?,
        Some(schema) => write_settings(out, schema)?,
    }
    Ok(())
}

/// The top-level settings, one line each: name, type, default, description.
fn write_settings(out: &mut impl std::io::Write, schema: &serde_json::Value) -> Result<()> {
    let properties = schema.get("properties").and_then(|p| p.as_object());
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        writeln!(out, "settings:    none")?;
        return Ok(());
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    writeln!(out, "settings:")?;
    let width = properties.keys().map(String::len).max().unwrap_or(0);
    for (key, property) in properties {
        let mut line = format!("  {key:width$}  {}", type_of(property));
        if let Some(default) = property.get("default") {
            line.push_str(&format!(" = {default}"));
        } else if required.contains(&key.as_str()) {
            line.push_str(" (required)");
        }
        if let Some(description) = property.get("description").and_then(|d| d.as_str()) {
            let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
            line.push_str(&format!("  {flat}"));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A short type name of a schema: `string`, `array of string`, `integer ≥ 1`, …
fn type_of(schema: &serde_json::Value) -> String {
    let base = match schema.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("enum").is_some() => "one of".to_owned(),
        _ if schema.get("$ref").is_some() => "object".to_owned(),
        _ => "any".to_owned(),
    };
    match (base.as_str(), schema.get("items")) {
        ("array", Some(items)) => format!("array of {}", type_of(items)),
        _ => match schema.get("enum").and_then(|e| e.as_array()) {
            Some(values) => format!(
                "{base} {}",
                values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("|")
            ),
            None => match schema.get("minimum") {
                Some(min) => format!("{base} ≥ {min}"),
                None => base,
            },
        },
    }
}

fn format_size(bytes: usize) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 1.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}
