//! A loaded policy: its prepared component, settings, limits, metadata and
//! quota. Evaluating it is `evaluate.rs`.

use std::sync::Arc;

use super::bindings::PolicyPre;
use super::imports::StoreState;
use super::limits::Limits;
use super::lookup::ContextKind;
use super::metadata::Metadata;
use super::quota::Quota;

/// A component linked and ready to instantiate, with what the host learnt about it.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) pre: PolicyPre<StoreState>,
    /// It imports WASI, so its calls must not run on an async runtime thread.
    pub(crate) wasi: bool,
    /// It exports `metadata` (built against WIT 0.1.2 or later).
    pub(crate) metadata: bool,
}

/// A policy ready to evaluate requests: its component, settings and limits.
///
/// Cheap to clone; clones share the prepared component.
#[derive(Clone)]
pub struct Policy {
    pub(super) name: Arc<str>,
    pub(super) prepared: Prepared,
    pub(super) settings: Arc<str>,
    pub(super) limits: Limits,
    pub(super) context_kinds: Arc<[ContextKind]>,
    pub(super) metadata: Option<Arc<Metadata>>,
    pub(super) quota: Arc<Quota>,
}

impl Policy {
    pub(crate) fn new(
        name: &str,
        prepared: Prepared,
        settings: String,
        limits: Limits,
        quota: Arc<Quota>,
    ) -> Self {
        Self {
            name: name.into(),
            prepared,
            settings: settings.into(),
            limits,
            context_kinds: Arc::from([]),
            metadata: None,
            quota,
        }
    }

    /// Log lines of this policy dropped so far by the log bounds (all its loaded copies).
    pub fn log_lines_dropped(&self) -> u64 {
        self.quota.log_dropped()
    }

    /// Bytes of linear memory this policy's running instances hold now.
    pub fn memory_in_use(&self) -> usize {
        self.quota.memory_in_use()
    }

    /// Evaluations of this policy running now, in the server.
    pub fn evaluations_running(&self) -> u32 {
        let free = u32::try_from(self.quota.slots().available_permits()).unwrap_or(u32::MAX);
        self.quota.concurrency().saturating_sub(free)
    }

    /// What the policy says about itself; `None` for components built against
    /// WIT 0.1.0 or 0.1.1, which have no `metadata` export.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_deref()
    }

    /// Whether the component imports WASI (and so runs with the locked-down WASI).
    pub(crate) fn imports_wasi(&self) -> bool {
        self.prepared.wasi
    }

    /// The same policy, allowed to look up `kinds` (its configuration's `context`).
    pub fn with_context_kinds(mut self, kinds: Vec<ContextKind>) -> Self {
        self.context_kinds = kinds.into();
        self
    }

    /// The kinds this policy may look up.
    pub fn context_kinds(&self) -> &[ContextKind] {
        &self.context_kinds
    }

    /// The policy's name from the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
