//! The host's tests, in one binary: each links wasmtime, and on a 2-core CI
//! one link instead of ten is minutes (`.ci/README.md` has the figures).
//! Every module runs the built `bouncer` binary or the library as a user or
//! a cluster would, with real parts (a real OCI registry, real toolchains).
//!
//! - `cli`: the binary's exit codes, stdout and stderr;
//! - `snapshots`: what users read (CLI output, error messages, README's quotes);
//! - `offline`: `bouncer test` and `bouncer check` on real suites and manifests;
//! - `context_versions`: offline cluster state answers lookups at any version;
//! - `authoring`: `bouncer new` → `build` → `test` in Rust, JavaScript, Python;
//! - `registry`: push, pull, pin, verify and last-good through a real registry;
//! - `registry_hostile`: a registry that stalls, drips or floods costs bounded
//!   memory and time;
//! - `serve_signals`: `bouncer serve` as a process: start, answer, drain;
//! - `properties`: generated bad input never panics the host;
//! - `layers`: the module graph runs one way, with no loops between files;
//! - `traces`: what a collector receives from `bouncer check`, and nothing when off.
//!
//! `support` is the kit they share: running the binary, a `serve` child
//! process over TLS, a registry.

// Tests say why they skip (a missing tool) on stderr.
#![allow(clippy::print_stderr)]

mod support;

mod authoring;
mod cli;
mod context_versions;
mod layers;
mod offline;
mod properties;
mod registry;
mod registry_hostile;
mod rollout;
mod serve_signals;
mod snapshots;
mod traces;
