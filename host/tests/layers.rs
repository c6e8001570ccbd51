//! The module graph runs one way (host/README.md): a module may name only the
//! modules below it. A `use crate::…` that points up fails here, with the file
//! and line, before it turns into a cycle.

use std::path::Path;

/// Each top-level module and the modules it may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("crypto", &[]),
    ("policy", &[]),
    ("registry", &["crypto"]),
    ("manifest", &[]),
    ("config", &["manifest", "policy", "registry"]),
    ("context", &["manifest", "policy"]),
    (
        "admission",
        &["config", "context", "manifest", "policy", "registry"],
    ),
    ("authoring", &["policy"]),
    (
        "offline",
        &[
            "admission",
            "authoring",
            "config",
            "context",
            "manifest",
            "policy",
            "registry",
        ],
    ),
    (
        "audit",
        &["admission", "config", "context", "manifest", "policy"],
    ),
    (
        "server",
        &["admission", "config", "context", "crypto", "policy"],
    ),
];

const MODULES: &[&str] = &[
    "crypto",
    "policy",
    "registry",
    "manifest",
    "config",
    "context",
    "admission",
    "authoring",
    "offline",
    "audit",
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
