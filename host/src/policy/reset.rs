//! How a pooled instance slot is wiped between evaluations, and the proof
//! that allows the fast way.
//!
//! Every evaluation runs in a fresh instance: nothing one review's policy
//! wrote may be seen by the next instance in that slot. wasmtime can restore
//! only the pages the kernel's `PAGEMAP_SCAN` reports as written, but a
//! written page that was swapped out is not reported (it is not present): it
//! is neither restored nor decommitted, and the next instance faults it back
//! in with the previous review's bytes. So the scan is used only where this
//! process's memory provably cannot be swapped; everywhere else the slot's
//! resident pages are rewritten whole and the rest decommitted, which holds
//! whatever the node does.
//!
//! The proof is read from the system at start and again while serving
//! (`server/reload.rs` moves to the full reset as soon as it no longer holds):
//! - cgroup v2 `memory.swap.max` is `0` for this process's cgroup or one of its
//!   ancestors (the kubelet sets it so for Guaranteed pods under `LimitedSwap`,
//!   and for every pod under `NoSwap`): the kernel never swaps this memory;
//! - or the system has no swap device (`/proc/swaps` lists none). A `swapon`
//!   later is seen at the next check.

use std::path::{Path, PathBuf};

/// How slots are reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPath {
    /// Only the pages a scan reports as written: fast, and sound only when
    /// memory cannot be swapped.
    Scan,
    /// Every resident page of the slot rewritten, the rest decommitted.
    Full,
}

impl ResetPath {
    /// Its name in `/readyz` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Full => "full",
        }
    }
}

/// What the operator asked for (`serve --instance-reset`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResetChoice {
    /// The scan where memory provably cannot be swapped, the full reset elsewhere.
    #[default]
    Auto,
    /// Always the full reset.
    Full,
    /// Always the scan, even where memory can swap: unsound there; for
    /// measuring the two paths against each other.
    Scan,
}

/// The path in use and why, for `/readyz` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetDecision {
    /// The path.
    pub path: ResetPath,
    /// Why: the proof, or why there is none.
    pub why: String,
}

impl ResetDecision {
    /// Decides for `choice` from what the system says now.
    pub fn decide(choice: ResetChoice) -> Self {
        match choice {
            ResetChoice::Full => Self {
                path: ResetPath::Full,
                why: "asked for (--instance-reset full)".into(),
            },
            ResetChoice::Scan => Self {
                path: ResetPath::Scan,
                why: "asked for (--instance-reset scan); unsound if this memory can swap".into(),
            },
            ResetChoice::Auto => match swap_barred(&System::live()) {
                Ok(proof) => Self {
                    path: ResetPath::Scan,
                    why: proof,
                },
                Err(why) => Self {
                    path: ResetPath::Full,
                    why,
                },
            },
        }
    }

    /// Whether the scan is in use although its proof no longer holds (auto only).
    pub fn proof_lost(&self, choice: ResetChoice) -> Option<String> {
        if self.path != ResetPath::Scan || choice != ResetChoice::Auto {
            return None;
        }
        swap_barred(&System::live()).err()
    }
}

/// Where the system's answers are read; a test points it at files of its own.
pub(crate) struct System {
    /// `/proc/self/cgroup`.
    cgroup: PathBuf,
    /// `/proc/self/mountinfo`.
    mountinfo: PathBuf,
    /// `/proc/swaps`.
    swaps: PathBuf,
}

impl System {
    fn live() -> Self {
        Self {
            cgroup: "/proc/self/cgroup".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            swaps: "/proc/swaps".into(),
        }
    }
}

/// `Ok(proof)` when this process's memory cannot be swapped, `Err(why not)`.
pub(crate) fn swap_barred(system: &System) -> Result<String, String> {
    if let Some(cgroup) = cgroup_without_swap(system) {
        return Ok(format!(
            "memory cannot swap: cgroup v2 memory.swap.max is 0 ({})",
            cgroup.display()
        ));
    }
    match std::fs::read_to_string(&system.swaps) {
        Ok(text) => {
            let devices = text
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .count();
            if devices == 0 {
                Ok("memory cannot swap: no swap device (re-checked while serving)".into())
            } else {
                Err(format!(
                    "memory may swap: {devices} swap device(s) and no cgroup v2 memory.swap.max of 0"
                ))
            }
        }
        Err(e) => Err(format!(
            "memory may swap: {} cannot be read ({e})",
            system.swaps.display()
        )),
    }
}

/// The cgroup v2 directory (this process's or an ancestor) whose
/// `memory.swap.max` is `0`, if any.
fn cgroup_without_swap(system: &System) -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string(&system.cgroup).ok()?;
    let relative = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string(&system.mountinfo).ok()?;
    let root = cgroup2_mount(&mountinfo)?;
    let mut dir = root.join(relative.trim_start_matches('/'));
    loop {
        let max = std::fs::read_to_string(dir.join("memory.swap.max")).ok();
        if max.as_deref().map(str::trim) == Some("0") {
            return Some(dir);
        }
        if dir == root || !dir.pop() || !dir.starts_with(&root) {
            return None;
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted, from mountinfo's lines
/// (`… <mount point> … - cgroup2 …`).
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(Path::new))
            .flatten()
            .map(Path::to_path_buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(dir: &Path, cgroup: &str, mount: &str, swaps: &str) -> System {
        std::fs::write(dir.join("cgroup"), cgroup).unwrap();
        std::fs::write(
            dir.join("mountinfo"),
            format!("35 24 0:30 / {mount} rw,nosuid - cgroup2 cgroup2 rw\n"),
        )
        .unwrap();
        std::fs::write(dir.join("swaps"), swaps).unwrap();
        System {
            cgroup: dir.join("cgroup"),
            mountinfo: dir.join("mountinfo"),
            swaps: dir.join("swaps"),
        }
    }

    const HEADER: &str = "Filename\tType\tSize\tUsed\tPriority\n";
    const ONE_DEVICE: &str = "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 262140 0 -2\n";

    #[test]
    fn a_zero_swap_max_in_an_ancestor_is_a_proof_whatever_the_devices() {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("fs");
        let pod = mount.join("kubepods/pod1");
        let container = pod.join("ctr");
        std::fs::create_dir_all(&container).unwrap();
        std::fs::write(pod.join("memory.swap.max"), "0\n").unwrap();
        std::fs::write(container.join("memory.swap.max"), "max\n").unwrap();
        let s = system(
            dir.path(),
            "0::/kubepods/pod1/ctr\n",
            mount.to_str().unwrap(),
            ONE_DEVICE,
        );
        let proof = swap_barred(&s).unwrap();
        assert!(proof.contains("memory.swap.max is 0"), "{proof}");
        assert!(proof.contains("kubepods/pod1"), "{proof}");
    }

    #[test]
    fn a_swap_device_without_a_cgroup_bar_is_no_proof() {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("fs");
        let container = mount.join("kubepods/pod2/ctr");
        std::fs::create_dir_all(&container).unwrap();
        std::fs::write(container.join("memory.swap.max"), "max\n").unwrap();
        let s = system(
            dir.path(),
            "0::/kubepods/pod2/ctr\n",
            mount.to_str().unwrap(),
            ONE_DEVICE,
        );
        let why = swap_barred(&s).unwrap_err();
        assert!(why.contains("1 swap device"), "{why}");
        let none = system(
            dir.path(),
            "0::/kubepods/pod2/ctr\n",
            mount.to_str().unwrap(),
            HEADER,
        );
        assert!(swap_barred(&none).unwrap().contains("no swap device"));
    }

    #[test]
    fn cgroup_v1_only_falls_back_to_the_devices() {
        let dir = tempfile::tempdir().unwrap();
        let s = system(dir.path(), "4:memory:/x\n", "/nowhere", ONE_DEVICE);
        assert!(swap_barred(&s).is_err());
        let unreadable = System {
            swaps: dir.path().join("missing"),
            ..system(dir.path(), "4:memory:/x\n", "/nowhere", HEADER)
        };
        assert!(
            swap_barred(&unreadable)
                .unwrap_err()
                .contains("cannot be read")
        );
    }
}
