//! The binaries the end-to-end test drives, installed by `tests/e2e/tools.sh`
//! into a cache outside the repository (built once, reused by later runs).

use crate::say;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where kube-apiserver, kubectl, etcd, helm and jaeger are.
pub struct Tools {
    /// The directory holding all five.
    pub bin: PathBuf,
}

impl Tools {
    /// A binary by name.
    pub fn path(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
}

/// Installs (first run) or finds (later runs) the tools. `None` only when the
/// Go toolchain or the Go module proxy is missing outside CI; under `CI=true`
/// that fails too, and so does every other failure.
pub fn install() -> Option<Tools> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tools.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    say!("{}", stderr.trim_end());
    match output.status.code() {
        Some(0) => {}
        // In CI a missing tool is a broken CI machine, not a reason to pass.
        Some(3) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true and the end-to-end tools cannot be built (no Go toolchain or Go module \
             proxy); install Go or fix the proxy:\n{stderr}"
        ),
        Some(3) => {
            say!(
                "\n{bar}\nSKIPPING THE END-TO-END TESTS: no Go toolchain or Go module proxy to build \
                 kube-apiserver.\n{stderr}{bar}\n",
                bar = "!".repeat(78)
            );
            return None;
        }
        other => panic!("{} failed ({other:?}):\n{stderr}", script.display()),
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let bin = PathBuf::from(stdout.trim().lines().last().unwrap_or_default());
    for name in ["kube-apiserver", "kubectl", "etcd", "helm", "jaeger"] {
        assert!(bin.join(name).is_file(), "{} lacks {name}", bin.display());
    }
    Some(Tools { bin })
}
