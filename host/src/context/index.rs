//! Indexes of annotation and field values over one kind's objects, so that a
//! lookup by them (`find-objects`) costs what it returns, not the size of
//! the kind: an IngressGroup member's review reads its group, not every
//! Ingress of the cluster.
//!
//! An index is made the first time a lookup asks for its key (from every
//! object then held) and kept up to date as objects change. The keys come
//! from policies, so their number per kind is bounded; past it, lookups scan.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::policy::IndexKey;

/// Keys indexed per kind at most: the built-in rules use two or three.
pub const MAX_KEYS: usize = 16;

/// The indexes of one kind, by object id.
#[derive(Debug)]
pub struct Indexes<Id> {
    keys: HashMap<IndexKey, KeyIndex<Id>>,
}

#[derive(Debug)]
struct KeyIndex<Id> {
    by_value: HashMap<String, BTreeSet<Id>>,
    of_object: HashMap<Id, String>,
}

impl<Id> Default for Indexes<Id> {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
        }
    }
}

impl<Id: Clone + Ord + Hash> Indexes<Id> {
    /// The ids of the objects whose value of `key` is `value`, building the
    /// index from `all` (every object's id and value) the first time `key` is
    /// asked for. `None`: too many keys are indexed already; scan instead.
    pub fn lookup<I>(
        &mut self,
        key: &IndexKey,
        value: &str,
        all: impl FnOnce() -> I,
    ) -> Option<Vec<Id>>
    where
        I: IntoIterator<Item = (Id, Option<String>)>,
    {
        if !self.keys.contains_key(key) {
            if self.keys.len() >= MAX_KEYS {
                return None;
            }
            let mut index = KeyIndex {
                by_value: HashMap::new(),
                of_object: HashMap::new(),
            };
            for (id, value) in all() {
                if let Some(value) = value {
                    index.insert(id, value);
                }
            }
            self.keys.insert(key.clone(), index);
        }
        let index = self.keys.get(key)?;
        Some(
            index
                .by_value
                .get(value)
                .map(|ids| ids.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// Records `id`'s current values (`value_of` each indexed key).
    pub fn update(&mut self, id: &Id, value_of: impl Fn(&IndexKey) -> Option<String>) {
        for (key, index) in &mut self.keys {
            index.remove(id);
            if let Some(value) = value_of(key) {
                index.insert(id.clone(), value);
            }
        }
    }

    /// Forgets `id`.
    pub fn remove(&mut self, id: &Id) {
        for index in self.keys.values_mut() {
            index.remove(id);
        }
    }

    /// Forgets everything: the objects were listed anew.
    pub fn clear(&mut self) {
        self.keys.clear();
    }
}

impl<Id: Clone + Ord + Hash> KeyIndex<Id> {
    fn insert(&mut self, id: Id, value: String) {
        self.by_value
            .entry(value.clone())
            .or_default()
            .insert(id.clone());
        self.of_object.insert(id, value);
    }

    fn remove(&mut self, id: &Id) {
        if let Some(old) = self.of_object.remove(id)
            && let Some(ids) = self.by_value.get_mut(&old)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_value.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_follows_updates_and_removals() {
        let key = IndexKey::Annotation("group".into());
        let mut indexes = Indexes::<u32>::default();
        let all = || {
            vec![
                (1, Some("a".to_owned())),
                (2, Some("b".to_owned())),
                (3, None),
            ]
        };
        assert_eq!(indexes.lookup(&key, "a", all), Some(vec![1]));
        indexes.update(&3, |_| Some("a".into()));
        indexes.update(&1, |_| Some("b".into()));
        assert_eq!(indexes.lookup(&key, "a", Vec::new), Some(vec![3]));
        assert_eq!(indexes.lookup(&key, "b", Vec::new), Some(vec![1, 2]));
        indexes.remove(&2);
        assert_eq!(indexes.lookup(&key, "b", Vec::new), Some(vec![1]));
        indexes.clear();
        assert_eq!(indexes.lookup(&key, "b", Vec::new), Some(vec![]));
    }

    #[test]
    fn keys_are_bounded() {
        let mut indexes = Indexes::<u32>::default();
        for i in 0..MAX_KEYS {
            let key = IndexKey::Annotation(format!("k{i}"));
            assert!(indexes.lookup(&key, "v", Vec::new).is_some());
        }
        let one_more = IndexKey::Annotation("more".into());
        assert_eq!(indexes.lookup(&one_more, "v", Vec::new), None);
    }
}
