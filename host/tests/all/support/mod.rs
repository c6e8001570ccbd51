//! Running the built `bouncer` binary as a user would, from the workspace root.

#![allow(dead_code)] // each test file uses its own subset

pub(crate) mod otlp_sink;
pub(crate) mod registry;
pub(crate) mod serve;
pub(crate) mod tls;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root: tests run the binary from there, as a user in a checkout would.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A fresh directory for one test's files: `<tests' tmp>/<group>/<name>`.
pub(crate) fn scratch(group: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `bouncer` from the workspace root with a compile cache shared by the tests.
pub(crate) fn bouncer_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bouncer"));
    command.current_dir(workspace()).env(
        "BOUNCER_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
    );
    command
}

/// Runs `bouncer` with `args`, feeding `stdin`, with a compile cache shared by the tests.
pub(crate) fn bouncer(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = bouncer_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bouncer runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// stdout parsed as JSON; the panic shows both streams.
pub(crate) fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// stderr as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stdout as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a finished child said, and its peak resident memory in MiB.
pub(crate) struct Finished {
    /// The exit code, `None` when a signal ended it.
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Its peak resident set, in MiB.
    pub peak_rss_mib: u64,
}

/// Runs `command` to its end (failing the test if it outlives `bound`) and
/// reads its peak RSS from the kernel's accounting of that child.
pub(crate) fn run_bounded(mut command: Command, bound: Duration) -> Finished {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let reader = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let outcome = loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: plain wait4 on our own child's pid with valid out-pointers.
        let pid = unsafe {
            libc::wait4(
                child.id() as libc::pid_t,
                &mut status,
                libc::WNOHANG,
                &mut usage,
            )
        };
        if pid > 0 {
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            break Some((code, usage.ru_maxrss as u64 / 1024));
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Reaps a killed child; one wait4 reaped already makes this a no-op error.
    let _ = child.wait();
    let Some((code, peak)) = outcome else {
        panic!(
            "still running after {bound:?}: {}",
            reader.join().unwrap_or_default()
        );
    };
    Finished {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: reader.join().unwrap_or_default(),
        peak_rss_mib: peak,
    }
}
