//! What the host gives a policy instance: its store state, the `host` WIT
//! interface (logging) and the `context` interface (cluster lookups).

use std::sync::Arc;

use super::bindings::bouncer::policy::context::{self, LookupError, ObjectQuery};
use super::bindings::bouncer::policy::host::{self, Field, Level};
use super::limiter::MemoryLimiter;
use super::limits::LogLimits;
use super::lookup::{ContextKind, ContextSource, FieldPath, Query, Selector};
use super::quota::Quota;
use super::spans;
use super::wasi::{Wasi, printed_lines};

/// Lookup results of one evaluation may take this part of the policy's memory
/// limit: they are copied into the guest too, and it has to parse them.
const LOOKUP_SHARE: usize = 4;

/// The state of one store, which lives for exactly one evaluation.
pub(crate) struct StoreState {
    pub(crate) policy: Arc<str>,
    pub(crate) request_uid: String,
    pub(crate) limiter: MemoryLimiter,
    /// The policy's quota (log rate, memory share); `None` outside an engine's accounting.
    quota: Option<Arc<Quota>>,
    log_lines: u32,
    log_bytes: usize,
    log_dropped: u32,
    /// The last error-level line, which is usually a panic message: it explains a trap.
    pub(crate) last_error: Option<String>,
    /// The kinds the policy's configuration lets it look up.
    pub(crate) context_kinds: Arc<[ContextKind]>,
    /// Where lookups are answered; `None` when the caller has no cluster view.
    pub(crate) context: Option<Arc<dyn ContextSource>>,
    /// WASI state, made on the guest's first WASI call (built-ins never make one).
    pub(crate) wasi: Option<Wasi>,
    /// What lookups may still return in this evaluation, in bytes.
    lookup_left: usize,
}

impl StoreState {
    pub(crate) fn new(
        policy: Arc<str>,
        request_uid: String,
        memory_limit: usize,
        quota: Option<Arc<Quota>>,
    ) -> Self {
        Self {
            policy,
            request_uid,
            limiter: MemoryLimiter::new(memory_limit, quota.clone()),
            quota,
            log_lines: 0,
            log_bytes: 0,
            log_dropped: 0,
            last_error: None,
            context_kinds: Arc::from([]),
            context: None,
            wasi: None,
            lookup_left: memory_limit / LOOKUP_SHARE,
        }
    }

    /// The declared kind matching a lookup, or the error the policy sees.
    fn declared(&self, api_version: String, kind: String) -> Result<ContextKind, LookupError> {
        let wanted = ContextKind { api_version, kind };
        if self.context_kinds.contains(&wanted) {
            return Ok(wanted);
        }
        let declared: Vec<String> = self.context_kinds.iter().map(ToString::to_string).collect();
        Err(LookupError::NotDeclared(format!(
            "policy `{}` may not look up {wanted}: its configuration declares {}; add \
             `context: [{{apiVersion: {}, kind: {}}}]` to its entry",
            self.policy,
            if declared.is_empty() {
                "no context kinds".to_owned()
            } else {
                declared.join(", ")
            },
            wanted.api_version,
            wanted.kind
        )))
    }

    fn source(&self) -> Result<Arc<dyn ContextSource>, LookupError> {
        self.context.clone().ok_or_else(|| {
            LookupError::Failed("no cluster context is available to this evaluation".into())
        })
    }

    /// What the next lookup may return: the evaluation's lookup budget, and
    /// no more than the instance's memory still allows.
    fn lookup_room(&self) -> usize {
        self.lookup_left.min(self.limiter.room())
    }

    /// Charges a lookup's result to the evaluation (its budget) and to the
    /// policy's memory (its limit and its share of the instance budget).
    fn charge_lookup(&mut self, bytes: usize) -> Result<(), LookupError> {
        self.lookup_left = self.lookup_left.saturating_sub(bytes);
        self.limiter.charge_host(bytes).map_err(|_| {
            LookupError::Failed(format!(
                "the lookup's result ({bytes} bytes) does not fit in what policy `{}` may still use of \
                 the instance memory budget; narrow the lookup",
                self.policy
            ))
        })
    }

    fn list_with(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        query: &Query,
    ) -> Result<Vec<String>, LookupError> {
        let span = spans::lookup(&api_version, &kind, namespace.as_deref());
        spans::traced_lookup(span, Vec::len, || {
            let kind = self.declared(api_version, kind)?;
            let texts = self
                .source()?
                .list(&kind, namespace.as_deref(), query, self.lookup_room())
                .map_err(|e| LookupError::Failed(e.to_string()))?;
            self.charge_lookup(texts.iter().map(String::len).sum())?;
            Ok(texts)
        })
    }
}

impl context::Host for StoreState {
    fn get_object(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> Result<Option<String>, LookupError> {
        let span = spans::lookup(&api_version, &kind, namespace.as_deref());
        let found = |text: &Option<String>| usize::from(text.is_some());
        spans::traced_lookup(span, found, || {
            let kind = self.declared(api_version, kind)?;
            let text = self
                .source()?
                .get(&kind, namespace.as_deref(), &name, self.lookup_room())
                .map_err(|e| LookupError::Failed(e.to_string()))?;
            self.charge_lookup(text.as_ref().map_or(0, String::len))?;
            Ok(text)
        })
    }

    fn list_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, LookupError> {
        let selector = Selector::parse(label_selector.as_deref().unwrap_or(""))
            .map_err(|e| LookupError::Failed(format!("invalid label selector: {e}")))?;
        self.list_with(api_version, kind, namespace, &Query::labels(selector))
    }

    fn find_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        query: ObjectQuery,
    ) -> Result<Vec<String>, LookupError> {
        let selector = Selector::parse(query.label_selector.as_deref().unwrap_or(""))
            .map_err(|e| LookupError::Failed(format!("invalid label selector: {e}")))?;
        let fields = query
            .fields
            .into_iter()
            .map(|(path, value)| FieldPath::parse(&path).map(|p| (p, value)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(LookupError::Failed)?;
        let query = Query {
            selector,
            annotations: query.annotations,
            fields,
        };
        self.list_with(api_version, kind, namespace, &query)
    }
}

/// The shared types interface has no functions; the bindings still want it implemented.
impl super::bindings::bouncer::policy::types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: Level, message: String, fields: Vec<Field>) {
        self.write_log(level, message, fields);
    }
}

impl StoreState {
    /// Writes one policy log line, within the per-evaluation limits and the
    /// policy's log rate ([`LogLimits`]); what does not fit is dropped and counted.
    pub(crate) fn write_log(&mut self, level: Level, message: String, fields: Vec<Field>) {
        let message = truncate(message, LogLimits::MESSAGE_BYTES);
        if level == Level::Error {
            self.last_error = Some(message.clone());
        }
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(LogLimits::FIELDS)
            .map(|f| {
                (
                    truncate(f.key, LogLimits::FIELD_BYTES),
                    truncate(f.value, LogLimits::FIELD_BYTES),
                )
            })
            .collect();
        let bytes = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        self.log_lines += 1;
        self.log_bytes += bytes;
        let quota = self.quota.as_deref();
        let within_evaluation =
            self.log_lines <= LogLimits::LINES && self.log_bytes <= LogLimits::EVALUATION_BYTES;
        if !within_evaluation {
            quota.inspect(|q| q.count_dropped_log());
        }
        // The rate counts the lines it refuses itself.
        if !within_evaluation || !quota.is_none_or(|q| q.take_log(bytes)) {
            self.log_dropped += 1;
            if self.log_dropped == 1 {
                tracing::warn!(policy = %self.policy, uid = %self.request_uid, "policy log limit reached; dropping further lines of this evaluation");
            }
            return;
        }
        let (policy, uid) = (&*self.policy, &self.request_uid);
        match level {
            Level::Debug => {
                tracing::debug!(target: "bouncer::policy_log", policy, uid, ?fields, "{message}");
            }
            Level::Info => {
                tracing::info!(target: "bouncer::policy_log", policy, uid, ?fields, "{message}");
            }
            Level::Warn => {
                tracing::warn!(target: "bouncer::policy_log", policy, uid, ?fields, "{message}");
            }
            Level::Error => {
                tracing::error!(target: "bouncer::policy_log", policy, uid, ?fields, "{message}");
            }
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(text.floor_char_boundary(max));
        text.push('…');
    }
    text
}
/// WASI for the guest, kept with the rest of its store.
impl StoreState {
    fn wasi(&mut self) -> &mut Wasi {
        self.wasi.get_or_insert_with(Wasi::new)
    }

    /// Writes what the guest printed to the host log: stdout as info, stderr as
    /// warnings. The last stderr lines (an uncaught exception's traceback, say)
    /// explain a trap when the guest logged no error itself.
    pub(crate) fn flush_wasi_output(&mut self) {
        let Some((stdout, stderr)) = self.wasi.as_ref().map(Wasi::output) else {
            return;
        };
        for line in printed_lines(&stdout) {
            self.write_log(Level::Info, line.to_owned(), Vec::new());
        }
        let stderr = printed_lines(&stderr);
        for line in &stderr {
            self.write_log(Level::Warn, (*line).to_owned(), Vec::new());
        }
        // The end of stderr is where runtimes put the error that ended them.
        let tail = &stderr[stderr.len().saturating_sub(3)..];
        if self.last_error.is_none() && !tail.is_empty() {
            self.last_error = Some(tail.join(" | "));
        }
    }
}

impl wasmtime_wasi::WasiView for StoreState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.wasi().view()
    }
}
