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
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

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
    pub(crate) fn new() -> Self {
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

impl Wasi {
    /// The view wasmtime-wasi's host functions work on.
    pub(crate) fn view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The non-blank lines of what a guest printed.
pub(crate) fn printed_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Links WASI 0.2 into `linker`, with sleeps that return at once.
pub(crate) fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
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

fn ready_now<T: WasiView>(
    store: &mut StoreContextMut<'_, T>,
) -> wasmtime::Result<Resource<DynPollable>> {
    let table = store.data_mut().ctx().table;
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
