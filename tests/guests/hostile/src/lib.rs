//! A policy that misbehaves on purpose, to prove the host survives it.
//!
//! Its settings pick the misbehaviour: `{"behaviour": "<name>"}`, one of
//! `loop`, `alloc`, `panic`, `pry`, `garbage`, `bad-code`, `bad-patch`,
//! `count`, `probe`, `reject-settings`, or `allow` (behave); and the ones that make the
//! *host* work on their output: `patch-bomb` (a small JSON patch that doubles
//! the object twenty times), `huge-message` (an 8 MiB denial message),
//! `many-warnings` (200,000 warnings), `log-flood` (500 log lines with
//! 64 fields of 4 KiB each).
//!
//! The same crate is built twice: for `wasm32-unknown-unknown` (no WASI, like
//! the built-ins) and for `wasm32-wasip2` (a WASI component, like a custom
//! policy), so each misbehaviour can be tried on both evaluation paths.
//! It implements the WIT world directly (not through the SDK's `Policy` trait)
//! because some of its answers are ones the SDK would never let a policy build.

use std::sync::atomic::{AtomicU32, Ordering};

use bouncer_sdk::bindings::bouncer::policy::host::{Field, Level, log};
use bouncer_sdk::bindings::bouncer::policy::types::{Mutation, PolicyMetadata, Request, Verdict};
use bouncer_sdk::bindings::{Guest, export};

/// Evaluations this instance has served; a fresh instance per call keeps it at 1.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// A page and more of the probe's own memory: a fresh instance finds it zeroed.
static mut SCRATCH: [u8; 64 * 1024] = [0; 64 * 1024];

/// `spin` from the settings: busy iterations after writing (u64::MAX: until the deadline).
fn spin(settings: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(settings)
        .ok()
        .and_then(|v| v.get("spin")?.as_u64())
        .unwrap_or(0)
}

struct Hostile;

fn behaviour(settings: &str) -> String {
    serde_json::from_str::<serde_json::Value>(settings)
        .ok()
        .and_then(|v| v.get("behaviour")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "allow".to_owned())
}

fn verdict(allowed: bool, message: Option<String>) -> Verdict {
    Verdict {
        allowed,
        message,
        code: None,
        warnings: Vec::new(),
        mutation: None,
    }
}

impl Guest for Hostile {
    fn validate(_request: Request, settings: String) -> Verdict {
        bouncer_sdk::install_panic_hook();
        match behaviour(&settings).as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile policy panicked on purpose"),
            // Listing the environment is unsupported without WASI: it traps.
            "list-env" => verdict(false, Some(format!("{} vars", std::env::vars().count()))),
            "pry" => {
                // Each probe reports what it got, or the kind of error: on
                // WASI an error other than `Unsupported` shows the call reached
                // the host's WASI and was refused there (the sandbox, tested),
                // not std's stubs.
                let file = std::fs::read_to_string("/etc/passwd")
                    .map(|text| format!("read {} bytes", text.len()))
                    .unwrap_or_else(|e| format!("{:?}", e.kind()));
                let dir = std::fs::read_dir("/")
                    .map(|entries| format!("{} entries", entries.count()))
                    .unwrap_or_else(|e| format!("{:?}", e.kind()));
                let home = std::env::var("HOME").unwrap_or_else(|_| "nothing".into());
                let secret =
                    std::env::var("BOUNCER_TEST_SECRET").unwrap_or_else(|_| "nothing".into());
                let args = std::env::args().count();
                let socket = std::net::TcpStream::connect("127.0.0.1:80")
                    .map(|_| "connected".to_owned())
                    .unwrap_or_else(|e| format!("{:?}", e.kind()));
                verdict(
                    false,
                    Some(format!(
                        "file: {file}; dir: {dir}; HOME: {home}; secret: {secret}; args: {args}; \
                         socket: {socket}"
                    )),
                )
            }
            "garbage" => Verdict {
                mutation: Some(Mutation::PatchedObject("}{ this is not json".into())),
                ..verdict(true, None)
            },
            "bad-code" => Verdict {
                code: Some(200),
                ..verdict(false, Some("denied with a success code".into()))
            },
            "bad-patch" => Verdict {
                mutation: Some(Mutation::JsonPatch(
                    r#"[{"op":"remove","path":"/no/such/field"}]"#.into(),
                )),
                ..verdict(true, None)
            },
            // Reports what it found of an earlier evaluation (the call count and
            // non-zero bytes of its scratch memory), writes over both, then
            // stays busy `spin` iterations so the host's memory can be paged
            // out while its pages are written.
            "probe" => {
                let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
                // SAFETY: one call at a time runs in an instance.
                let scratch = unsafe { &mut *std::ptr::addr_of_mut!(SCRATCH) };
                let dirty = scratch.iter().filter(|b| **b != 0).count();
                scratch.fill(0xA5);
                let mut n: u64 = 0;
                for _ in 0..spin(&settings) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
                std::hint::black_box(&scratch);
                Verdict {
                    warnings: vec![format!("calls: {calls}"), format!("dirty: {dirty}")],
                    ..verdict(true, None)
                }
            }
            "count" => {
                let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
                Verdict {
                    warnings: vec![format!("calls: {calls}")],
                    ..verdict(true, None)
                }
            }
            "patch-bomb" => {
                // Each `copy` of `/spec` into itself doubles the object: under
                // 1 KiB of patch asks for 2^20 copies of the spec.
                let operations: Vec<String> = (0..20)
                    .map(|i| format!(r#"{{"op":"copy","from":"/spec","path":"/spec/c{i}"}}"#))
                    .collect();
                Verdict {
                    mutation: Some(Mutation::JsonPatch(format!("[{}]", operations.join(",")))),
                    ..verdict(true, None)
                }
            }
            "huge-message" => verdict(false, Some("x".repeat(8 << 20))),
            "many-warnings" => Verdict {
                warnings: vec!["w".to_owned(); 200_000],
                ..verdict(true, None)
            },
            "log-flood" => {
                let value = "v".repeat(4 << 10);
                let fields: Vec<Field> = (0..64)
                    .map(|i| Field {
                        key: format!("field-{i}"),
                        value: value.clone(),
                    })
                    .collect();
                for line in 0..500 {
                    log(Level::Info, &format!("flood line {line}"), &fields);
                }
                verdict(true, None)
            }
            "deny" => verdict(false, Some("hostile policy denies everything".into())),
            _ => verdict(true, None),
        }
    }

    fn validate_settings(settings: String) -> Result<(), String> {
        match behaviour(&settings).as_str() {
            "reject-settings" => Err("hostile policy refuses these settings".into()),
            _ => Ok(()),
        }
    }

    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            name: "hostile".into(),
            description: "Misbehaves on purpose, as its settings say.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: Vec::new(),
            operations: Vec::new(),
            mutating: false,
            settings_schema: None,
            context_kinds: Vec::new(),
        }
    }
}

export!(Hostile with_types_in bouncer_sdk::bindings);
