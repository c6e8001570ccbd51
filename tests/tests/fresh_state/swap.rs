//! Real swap for the test: a swap file enabled for its duration when the
//! machine has none, and page-outs of another process's memory.

use std::path::PathBuf;
use std::process::Command;

/// The machine's swap for the test: a swap file this test enables when the
/// machine has none (disabled and removed on drop).
pub struct Swap(Option<PathBuf>);

impl Drop for Swap {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = Command::new("swapoff").arg(path).status();
            let _ = std::fs::remove_file(path);
        }
    }
}

fn devices() -> usize {
    std::fs::read_to_string("/proc/swaps")
        .map(|t| t.lines().skip(1).filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

impl Swap {
    /// `None` after saying why the test skips: it needs root.
    pub fn prepare() -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIP fresh_state: needs root, to enable a swap file and page out another process's memory"
            );
            return None;
        }
        Some(Self(None))
    }

    /// Whether the machine has a swap device now.
    pub fn on(&self) -> bool {
        devices() > 0
    }

    /// Enables a swap file when there is no device; `false` after saying why
    /// it could not (under `CI=true` that fails the run).
    pub fn enable(&mut self) -> bool {
        if self.on() {
            return true;
        }
        // On the target directory's filesystem: tmpfs and overlayfs cannot hold swap.
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fresh-state.swap");
        let _ = std::fs::remove_file(&path);
        let made = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", "count=256", "status=none"])
            .arg(format!("of={}", path.display()))
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .is_ok()
            && Command::new("mkswap")
                .arg(&path)
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            && Command::new("swapon")
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
        if made && self.on() {
            self.0 = Some(path);
            return true;
        }
        let _ = std::fs::remove_file(&path);
        let why = format!(
            "cannot enable a swap file at {} (dd, mkswap or swapon failed)",
            path.display()
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "fresh_state must run under CI=true: {why}"
        );
        eprintln!("SKIP fresh_state: {why}");
        false
    }
}

/// Pages out every private writable mapping of `pid`, one at a time (an
/// error on one, such as a locked mapping, does not stop the others).
pub fn page_out(pid: u32) {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return;
    };
    // SAFETY: pidfd_open takes a pid and flags; the fd is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if pidfd < 0 {
        return;
    }
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        let iov = libc::iovec {
            iov_base: start as *mut libc::c_void,
            iov_len: end - start,
        };
        // SAFETY: the iovec describes the other process's range; the kernel reads it only.
        unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                pidfd,
                &iov as *const libc::iovec,
                1usize,
                libc::MADV_PAGEOUT,
                0u32,
            );
        }
    }
    // SAFETY: pidfd is an fd this function opened.
    unsafe { libc::close(pidfd as libc::c_int) };
}

/// `VmSwap` of `pid`, in KiB.
pub fn swapped_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmSwap:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
