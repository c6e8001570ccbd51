//! The end-to-end test's control plane (etcd, kube-apiserver, Jaeger, built
//! by `tests/e2e/tools.sh`), for the benches that need a real API server.

// Only part of the control plane helpers is used by the benches.
#![allow(dead_code)]

#[path = "../../tests/e2e/cluster.rs"]
pub(crate) mod cluster;
#[path = "../../tests/e2e/jaeger.rs"]
mod jaeger;
#[path = "../../tests/e2e/tools.rs"]
pub(crate) mod tools;

// Below the modules, so they name it by path (`crate::say`, re-exported by
// each bench) as they do in the end-to-end test.
/// As in the end-to-end test: straight to stderr, which `cargo bench` shows.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;
