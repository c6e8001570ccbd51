//! Isolation under hostile load: a real `bouncer serve` (in this process, over
//! real TLS on loopback) with the hostile guests, built from source both
//! without WASI (like the built-ins) and for WASI (like custom policies).
//!
//! This is its own test binary so that what it measures (this process's peak
//! memory, a good policy's latency next to a looping one) is this server's
//! alone; tests that measure take [`QUIET`] exclusively.
//!
//! - `output`: what the host does with a policy's output is bounded and
//!   charged to it (patch bombs, huge messages, warning and log floods);
//! - `load`: a looping, slow or hoarding policy spends its own slots, time
//!   and memory share, never another policy's, `/healthz`'s or the server's;
//! - `connections`: idle HTTP/2 connections close, the connection cap refuses
//!   with a 503, early errors reach HTTP/2 clients as statuses;
//! - `probes`: with mTLS, probes use the plain health port; the client CA reloads;
//! - `start_and_reload`: a broken entry does not stop the server; a torn config
//!   write is never loaded.

mod connections;
mod load;
mod output;
mod probes;
mod start_and_reload;

/// A mebibyte.
const MIB: u64 = 1024 * 1024;

/// Measuring tests hold it for writing, the others for reading.
static QUIET: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// This process's resident memory: `(current, peak)` in bytes, from `/proc`.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets this process's peak resident memory to its current value.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
}

/// The `p`-quantile of `samples` (sorted in place).
fn quantile(samples: &mut [std::time::Duration], p: f64) -> std::time::Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}
