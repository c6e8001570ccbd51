//! Applying a policy's JSON Patch with the host's work bounded.
//!
//! A patch of a few hundred bytes can ask for a lot: twenty `copy` operations
//! of the object into itself double it twenty times. The policy's own memory
//! cap and deadline do not cover this work, since it happens in the host, so
//! the host charges it to the policy here: the object may never grow past
//! `max_object` bytes (the request body limit: an object the API server would
//! not accept anyway), and the bytes the host measures while applying the patch
//! are capped at a small multiple of that. Over either bound the patch is the
//! policy's failure and the object is left as it was.

use json_patch::PatchOperation;
use serde_json::Value;

/// How much measuring work, in multiples of `max_object`, one patch may cost.
const WORK_FACTOR: usize = 4;

/// Why a patch was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchRefusal {
    /// An operation failed (a missing path, a failed `test`).
    #[error("its JSON patch does not apply: {0}")]
    Apply(String),
    /// The patched object would exceed the size the API server accepts.
    #[error(
        "its JSON patch would make the object larger than {max} bytes (operation {op}); \
         the API server would refuse it"
    )]
    TooLarge {
        /// The bound.
        max: usize,
        /// The 0-based operation that crossed it.
        op: usize,
    },
    /// Applying the patch would cost the host too much work.
    #[error("its JSON patch is too costly to apply (operation {op} exceeds {max} bytes of work)")]
    TooCostly {
        /// The bound.
        max: usize,
        /// The 0-based operation that crossed it.
        op: usize,
    },
}

/// Applies `operations` to `object` whose serialised size is `size`, keeping
/// it under `max_object` bytes; `Ok(true)` when the object changed. On error
/// `object` is unchanged.
///
/// # Errors
/// [`PatchRefusal`] when an operation fails or a bound is crossed.
pub fn apply(
    object: &mut Value,
    size: usize,
    operations: &[PatchOperation],
    max_object: usize,
) -> Result<bool, PatchRefusal> {
    let before = object.clone();
    match apply_each(object, size, operations, max_object) {
        Ok(()) => Ok(*object != before),
        Err(refusal) => {
            *object = before;
            Err(refusal)
        }
    }
}

fn apply_each(
    object: &mut Value,
    mut size: usize,
    operations: &[PatchOperation],
    max_object: usize,
) -> Result<(), PatchRefusal> {
    let mut work = Work {
        spent: 0,
        max: max_object.saturating_mul(WORK_FACTOR),
    };
    for (op, operation) in operations.iter().enumerate() {
        // Bytes the operation adds and removes, measured before it runs so a
        // growing copy is refused before it is made.
        let (added, removed) = match operation {
            PatchOperation::Add(add) => (
                work.measure(&add.value, op)?,
                work.measure_at(object, add.path.as_str(), op)?,
            ),
            PatchOperation::Replace(replace) => (
                work.measure(&replace.value, op)?,
                work.measure_at(object, replace.path.as_str(), op)?,
            ),
            PatchOperation::Copy(copy) => (
                work.measure_at(object, copy.from.as_str(), op)?,
                work.measure_at(object, copy.path.as_str(), op)?,
            ),
            PatchOperation::Remove(remove) => {
                (0, work.measure_at(object, remove.path.as_str(), op)?)
            }
            PatchOperation::Move(_) => (0, 0),
            PatchOperation::Test(test) => (0, work.measure(&test.value, op).map(|_| 0)?),
        };
        // An `add` into an array inserts rather than replaces: `removed` then
        // over-counts, so only trust it for object members and replacements.
        let removed = match operation {
            PatchOperation::Add(_) | PatchOperation::Copy(_) => removed.min(added),
            _ => removed,
        };
        let grown = size.saturating_add(added).saturating_sub(removed);
        if grown > max_object {
            return Err(PatchRefusal::TooLarge {
                max: max_object,
                op,
            });
        }
        json_patch::patch_unsafe(object, std::slice::from_ref(operation))
            .map_err(|e| PatchRefusal::Apply(e.to_string()))?;
        size = grown;
    }
    // The running size is an estimate (keys and separators are not counted
    // exactly); measure the result once so the bound holds exactly.
    let exact = serialized_len(object);
    if exact > max_object {
        return Err(PatchRefusal::TooLarge {
            max: max_object,
            op: operations.len().saturating_sub(1),
        });
    }
    Ok(())
}

/// The measuring work spent on one patch, and its cap.
struct Work {
    spent: usize,
    max: usize,
}

impl Work {
    fn measure(&mut self, value: &Value, op: usize) -> Result<usize, PatchRefusal> {
        let len = serialized_len(value);
        self.spent = self.spent.saturating_add(len);
        if self.spent > self.max {
            return Err(PatchRefusal::TooCostly { max: self.max, op });
        }
        Ok(len)
    }

    fn measure_at(&mut self, object: &Value, path: &str, op: usize) -> Result<usize, PatchRefusal> {
        match object.pointer(path) {
            Some(value) => self.measure(value, op),
            None => Ok(0),
        }
    }
}

/// The length of `value`'s compact JSON text, without building the text.
pub fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing JSON to a sink that never fails fails only for values that
    // cannot be JSON at all (maps with non-string keys), which count as 0.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(patch: Value) -> Vec<PatchOperation> {
        serde_json::from_value(patch).unwrap()
    }

    #[test]
    fn applies_an_ordinary_patch() {
        let mut object = json!({"metadata": {"labels": {}}});
        let size = serialized_len(&object);
        let patch = ops(json!([{"op": "add", "path": "/metadata/labels/a", "value": "b"}]));
        apply(&mut object, size, &patch, 1 << 20).unwrap();
        assert_eq!(object, json!({"metadata": {"labels": {"a": "b"}}}));
    }

    #[test]
    fn a_doubling_copy_bomb_is_refused_and_leaves_the_object_unchanged() {
        let original = json!({"spec": {"data": "x".repeat(1000)}});
        let mut object = original.clone();
        let size = serialized_len(&object);
        let bomb: Vec<Value> = (0..20)
            .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{i}")}))
            .collect();
        let error = apply(&mut object, size, &ops(Value::Array(bomb)), 64 * 1024).unwrap_err();
        assert!(
            matches!(error, PatchRefusal::TooLarge { max: 65536, op } if op < 8),
            "{error:?}"
        );
        assert_eq!(object, original);
    }

    #[test]
    fn a_failed_operation_rolls_back_the_earlier_ones() {
        let mut object = json!({"a": 1});
        let patch = ops(json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "remove", "path": "/missing"}
        ]));
        let error = apply(&mut object, 7, &patch, 1 << 20).unwrap_err();
        assert!(matches!(error, PatchRefusal::Apply(_)), "{error:?}");
        assert_eq!(object, json!({"a": 1}));
    }

    #[test]
    fn replacing_a_large_value_with_a_large_value_fits() {
        let mut object = json!({"a": "x".repeat(600)});
        let size = serialized_len(&object);
        let patch = ops(json!([{"op": "replace", "path": "/a", "value": "y".repeat(600)}]));
        apply(&mut object, size, &patch, 1000).unwrap();
    }

    #[test]
    fn repeated_tests_of_a_large_value_are_too_costly() {
        let big = "x".repeat(10_000);
        let mut object = json!({ "a": big });
        let size = serialized_len(&object);
        let tests: Vec<Value> = (0..100)
            .map(|_| json!({"op": "test", "path": "/a", "value": big}))
            .collect();
        let error = apply(&mut object, size, &ops(Value::Array(tests)), 20_000).unwrap_err();
        assert!(matches!(error, PatchRefusal::TooCostly { .. }), "{error:?}");
    }
}
