//! The locked-down WASI given to components built for WASI (`wasm32-wasip2`,
//! JavaScript through componentize-js, Python through componentize-py).
//!
//! Their language runtimes import WASI even when the policy never touches a
//! file: CPython reads its clocks and random bytes at start-up, StarlingMonkey
//! polls its event loop, Rust's std asks for its environment. Trapping on those
//! imports would make such policies unusable, so they get a WASI that answers
//! without reaching outside the sandbox:
//! - no preopened directories, environment variables or arguments; empty stdin;
//! - no sockets or name lookups;
//! - clocks frozen at the Unix epoch, so a verdict cannot depend on when it ran,
//!   and sleeps return at once instead of blocking a host thread past the
//!   policy's deadline (epoch interruption cannot stop a host call);
//! - stdout and stderr captured (bounded) and written to the host's log.
//!
//! Randomness stays real: it leaks nothing, and CPython seeds its hashes with it.

use std::time::Duration;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView};

use super::bindings::bouncer::policy::host::Level;
use super::imports::StoreState;

/// Bytes of stdout (and of stderr) kept per evaluation.
const OUTPUT_CAPACITY: usize = 16 * 1024;

/// The WASI state of one store, created on a guest's first WASI call.
pub(crate) struct Wasi {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Wasi {
    fn new() -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let ctx = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(Frozen)
            .monotonic_clock(Frozen)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            ctx,
            table: ResourceTable::new(),
            stdout,
            stderr,
        }
    }

    /// What the guest wrote to stdout and stderr, as text.
    pub(crate) fn output(&self) -> (String, String) {
        let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        (text(&self.stdout), text(&self.stderr))
    }
}

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

/// The non-blank lines of what a guest printed.
fn printed_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

impl wasmtime_wasi::WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi();
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

/// Links WASI 0.2 into `linker`, with sleeps that return at once.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    // The stock monotonic clock sleeps on the host's timer; replace its two
    // subscriptions so that a sleeping guest spins into its deadline instead.
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (_,): (u64,)| {
        ready_now(&mut store).map(|r| (r,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (_,): (u64,)| {
        ready_now(&mut store).map(|r| (r,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic-clock interface as wasmtime-wasi names it; guests importing an
/// older 0.2.x resolve to it by semver.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

fn ready_now(
    store: &mut StoreContextMut<'_, StoreState>,
) -> wasmtime::Result<Resource<DynPollable>> {
    let table = &mut store.data_mut().wasi().table;
    let ready = table.push(Ready)?;
    subscribe(table, ready)
}

/// A pollable that is always ready.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

/// A clock that never moves from the Unix epoch.
struct Frozen;

impl HostWallClock for Frozen {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Frozen {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

/// Whether a component imports any WASI interface.
pub(crate) fn imports_wasi(
    component: &wasmtime::component::Component,
    engine: &wasmtime::Engine,
) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:"))
}
