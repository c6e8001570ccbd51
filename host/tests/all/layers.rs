//! The module graph runs one way (host/README.md): a module may name only the
//! modules below it. A `use crate::…` that points up fails here, with the file
//! and line, before it turns into a cycle.

use std::path::Path;

/// Each top-level module and the modules it may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("crypto", &[]),
    ("telemetry", &["crypto"]),
    ("policy", &["telemetry"]),
    ("registry", &["crypto"]),
    ("manifest", &[]),
    ("config", &["manifest", "policy", "registry"]),
    ("context", &["manifest", "policy"]),
    (
        "admission",
        &["config", "context", "manifest", "policy", "registry"],
    ),
    ("authoring", &["policy"]),
    ("findings", &["admission", "config", "context"]),
    ("comparison", &["admission", "findings"]),
    ("companion", &["config", "context", "policy"]),
    ("openreports", &["findings"]),
    (
        "offline",
        &[
            "admission",
            "authoring",
            "comparison",
            "config",
            "context",
            "findings",
            "manifest",
            "policy",
            "registry",
            "telemetry",
        ],
    ),
    (
        "audit",
        &[
            "admission",
            "comparison",
            "config",
            "context",
            "findings",
            "manifest",
            "openreports",
            "policy",
            "telemetry",
        ],
    ),
    (
        "render",
        &[
            "admission",
            "audit",
            "comparison",
            "config",
            "findings",
            "offline",
        ],
    ),
    (
        "server",
        &[
            "admission",
            "config",
            "context",
            "companion",
            "crypto",
            "findings",
            "openreports",
            "policy",
            "telemetry",
        ],
    ),
];

const MODULES: &[&str] = &[
    "crypto",
    "telemetry",
    "policy",
    "registry",
    "manifest",
    "config",
    "context",
    "admission",
    "authoring",
    "findings",
    "comparison",
    "companion",
    "openreports",
    "offline",
    "audit",
    "render",
    "server",
    "cli",
];

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn modules_only_name_the_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, content) in text.lines().enumerate() {
            if content.trim_start().starts_with("//") {
                continue;
            }
            for named in MODULES {
                let path = format!("crate::{named}");
                let names_it = content.match_indices(&path).any(|(at, _)| {
                    let next = content[at + path.len()..].chars().next();
                    !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if names_it && *named != module && !allowed.contains(named) {
                    upward.push(format!(
                        "{}:{}: `{module}` names `{named}`",
                        relative.display(),
                        line + 1
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "modules that point up the graph (see host/README.md):\n{}",
        upward.join("\n")
    );
}

/// `serve`, the offline commands and `audit` are three front doors over one
/// admission core: each stands on `admission`, and none borrows from another.
#[test]
fn the_three_front_doors_stand_on_one_floor() {
    let doors = ["server", "offline", "audit"];
    for door in doors {
        let (_, allowed) = ALLOWED.iter().find(|(m, _)| *m == door).unwrap();
        assert!(
            allowed.contains(&"admission"),
            "`{door}` must stand on admission"
        );
        for other in doors {
            assert!(
                !allowed.contains(&other),
                "`{door}` may not name `{other}`: move what they share below both"
            );
        }
    }
}

/// The module path of a source file: `policy/engine.rs` → `["policy", "engine"]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_owned();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The paths a line names through `crate::` or `super::`, made absolute, with
/// one level of `{…}` groups expanded.
fn named_paths(line: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let mut at = 0;
    while at < line.len() {
        let rest = &line[at..];
        let (start, mut base) = if rest.starts_with("crate::") {
            (at + "crate::".len(), Vec::new())
        } else if rest.starts_with("super::") {
            let mut base = module.to_vec();
            let mut start = at;
            while line[start..].starts_with("super::") {
                base.pop();
                start += "super::".len();
            }
            (start, base)
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let preceded = at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if preceded {
            at = start;
            continue;
        }
        let mut end = start;
        loop {
            let segment: String = line[end..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if segment.is_empty() {
                break;
            }
            base.push(segment.clone());
            end += segment.len();
            if line[end..].starts_with("::") {
                end += 2;
            } else {
                break;
            }
        }
        if line[end..].starts_with('{') {
            let inner: String = line[end + 1..].chars().take_while(|c| *c != '}').collect();
            for item in inner.split(',') {
                let first: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !first.is_empty() && first != "self" {
                    let mut path = base.clone();
                    path.push(first);
                    found.push(path);
                }
            }
        }
        found.push(base);
        at = end.max(at + 1);
    }
    found
}

/// The source file that defines the longest prefix of `path`, if any.
fn file_of(src: &Path, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| &path[..n])
        .find(|prefix| src.join(format!("{}.rs", prefix.join("/"))).is_file())
        .map(<[String]>::to_vec)
}

/// Two files that import each other (or a longer loop of them) are one idea
/// split in two, or a layer missing between them: move the shared item below
/// both. A file naming its own ancestors (`super::Thing` re-exported by the
/// parent) does not count.
#[test]
fn no_two_files_import_each_other() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file.strip_prefix(&src).unwrap());
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for path in named_paths(code, &module) {
                let Some(target) = file_of(&src, &path) else {
                    continue;
                };
                if target != module && !module.starts_with(&target) && !target.starts_with(&module)
                {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        let mut trail = Vec::new();
        find_circles(start, &edges, &mut trail, &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "files that import each other, directly or round a loop (move one item below them):\n{}",
        circles.join("\n")
    );
}

type Graph = std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<Vec<String>>>;

/// Depth-first search from `node`, recording each loop found as `a.rs → b.rs → a.rs`.
fn find_circles(
    node: &Vec<String>,
    edges: &Graph,
    trail: &mut Vec<Vec<String>>,
    done: &mut std::collections::BTreeSet<Vec<String>>,
    circles: &mut Vec<String>,
) {
    if let Some(at) = trail.iter().position(|n| n == node) {
        let mut names: Vec<String> = trail[at..]
            .iter()
            .map(|n| format!("{}.rs", n.join("/")))
            .collect();
        names.push(format!("{}.rs", node.join("/")));
        circles.push(names.join(" → "));
        return;
    }
    if done.contains(node) {
        return;
    }
    trail.push(node.clone());
    for next in edges.get(node).into_iter().flatten() {
        find_circles(next, edges, trail, done, circles);
    }
    trail.pop();
    done.insert(node.clone());
}
