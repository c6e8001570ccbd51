//! Property tests (proptest, run by `cargo test`): bad input never panics the
//! host. Each property feeds generated input to one entry point a client or a
//! policy can reach: review decoding (any request body), JSON Patch application
//! (any policy's patch) and the configuration parser (any `policies.yaml`).
//!
//! Regressions proptest finds are kept in `host/tests/all/properties.proptest-regressions`.

use std::path::Path;

use bouncer::admission::patch::{self, PatchRefusal};
use bouncer::admission::review;
use bouncer::config::Config;
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/apiserver-v1.36")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `value`, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `review` with the value at one of its pointers (chosen by `pick`) replaced by `with`.
fn replaced(review: &Value, pick: usize, with: Value) -> Value {
    let mut all = Vec::new();
    pointers(review, String::new(), &mut all);
    let mut changed = review.clone();
    let at = &all[pick % all.len()];
    match changed.pointer_mut(at) {
        Some(slot) => *slot = with,
        None => unreachable!("pointer {at} came from the value"),
    }
    changed
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = review::decode(&body);
    }

    #[test]
    fn decoding_a_review_with_any_field_replaced_never_panics(
        name in prop::sample::select(vec![
            "ingress-create.json", "deployment-update.json", "pod-delete-by-garbage-collector.json",
        ]),
        pick in any::<usize>(),
        with in any_json(),
    ) {
        let review = replaced(&fixture(name), pick, with);
        if let Ok(request) = review::decode(&serde_json::to_vec(&review).unwrap()) {
            // What decodes can be handed to a policy and answered.
            let _ = bouncer::admission::wit::to_wit(&request);
            let _ = review::encode(kube::core::admission::AdmissionResponse::from(&request));
        }
    }

    #[test]
    fn applying_any_patch_keeps_the_bound_or_leaves_the_object_unchanged(
        operations in prop::collection::vec(
            (0..6u8, any::<usize>(), any::<usize>(), any_json()), 0..24,
        ),
        max in 1_000usize..20_000,
    ) {
        let original = fixture("ingress-create.json")["request"]["object"].clone();
        let mut paths = Vec::new();
        pointers(&original, String::new(), &mut paths);
        paths.push("/metadata/labels/new".into());
        paths.push("/spec/rules/-".into());
        let ops: Vec<Value> = operations
            .into_iter()
            .map(|(op, path, from, value)| {
                let (path, from) = (&paths[path % paths.len()], &paths[from % paths.len()]);
                match op {
                    0 => json!({"op": "add", "path": path, "value": value}),
                    1 => json!({"op": "remove", "path": path}),
                    2 => json!({"op": "replace", "path": path, "value": value}),
                    3 => json!({"op": "move", "from": from, "path": path}),
                    4 => json!({"op": "copy", "from": from, "path": path}),
                    _ => json!({"op": "test", "path": path, "value": value}),
                }
            })
            .collect();
        let ops: Vec<json_patch::PatchOperation> = serde_json::from_value(Value::Array(ops)).unwrap();
        let size = patch::serialized_len(&original);
        let max = max.max(size);
        let mut object = original.clone();
        match patch::apply(&mut object, size, &ops, max) {
            Ok(_) => prop_assert!(patch::serialized_len(&object) <= max),
            Err(PatchRefusal::Apply(_) | PatchRefusal::TooLarge { .. } | PatchRefusal::TooCostly { .. }) => {
                prop_assert_eq!(object, original);
            }
        }
    }

    #[test]
    fn parsing_any_configuration_text_never_panics(text in "(?s).{0,400}") {
        let _ = Config::from_yaml(&text, "policies.yaml", Path::new("."));
    }

    #[test]
    fn parsing_the_default_configuration_with_any_value_replaced_never_panics(
        pick in any::<usize>(),
        with in any_json(),
    ) {
        let default: Value = serde_yaml::from_str(bouncer::config::DEFAULT_CONFIG).unwrap();
        let changed = replaced(&default, pick, with);
        let text = serde_yaml::to_string(&changed).unwrap();
        let _ = Config::from_yaml(&text, "policies.yaml", Path::new("."));
    }
}
