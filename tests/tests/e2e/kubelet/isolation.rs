//! The container's user and filesystem: its own mount namespace with the
//! volumes in place and the root read-only, then its user, no capabilities.

use std::ffi::CString;
use std::path::Path;

use serde_json::Value;

use super::volumes::Mount;

/// The user and filesystem rules of the container.
pub(super) struct Security {
    user: u32,
    group: u32,
    pub(super) fs_group: Option<u32>,
    read_only_root: bool,
    no_new_privileges: bool,
}

impl Security {
    pub(super) fn of(pod: &Value, container: &Value) -> Result<Self, String> {
        let (pod, container) = (&pod["securityContext"], &container["securityContext"]);
        let id = |key: &str| -> Option<u32> {
            container[key]
                .as_u64()
                .or_else(|| pod[key].as_u64())
                .and_then(|v| u32::try_from(v).ok())
        };
        let user = id("runAsUser").unwrap_or(0);
        let non_root = container["runAsNonRoot"]
            .as_bool()
            .or_else(|| pod["runAsNonRoot"].as_bool())
            .unwrap_or(false);
        if non_root && user == 0 {
            return Err("runAsNonRoot is set and the container would run as root".into());
        }
        let drops_all = container["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            return Err("the e2e kubelet runs containers that drop ALL capabilities".into());
        }
        Ok(Self {
            user,
            group: id("runAsGroup").unwrap_or(user),
            fs_group: pod["fsGroup"].as_u64().and_then(|v| u32::try_from(v).ok()),
            read_only_root: container["readOnlyRootFilesystem"] == true,
            no_new_privileges: container["allowPrivilegeEscalation"] == false,
        })
    }
}

/// What the child does between fork and exec: its own mount namespace with
/// the volumes in place, the root read-only, then the container's user.
pub(super) struct Isolation {
    mounts: Vec<(CString, CString, bool)>,
    read_only_root: bool,
    user: u32,
    group: u32,
    groups: Vec<libc::gid_t>,
    no_new_privileges: bool,
    root: CString,
}

impl Isolation {
    pub(super) fn new(mounts: &[Mount], security: &Security) -> Result<Self, String> {
        let c =
            |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string());
        Ok(Self {
            mounts: mounts
                .iter()
                .map(|m| Ok((c(&m.source)?, c(&m.target)?, m.read_only)))
                .collect::<Result<_, String>>()?,
            read_only_root: security.read_only_root,
            user: security.user,
            group: security.group,
            groups: security.fs_group.into_iter().collect(),
            no_new_privileges: security.no_new_privileges,
            root: CString::new("/").expect("no NUL"),
        })
    }

    /// Runs in the forked child: system calls only.
    pub(super) fn enter(&self) -> std::io::Result<()> {
        let check = |result: libc::c_int| {
            if result == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        let none = std::ptr::null();
        // SAFETY: each call gets NUL-terminated strings prepared before the
        // fork, or null where the call allows it.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                none,
                self.root.as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for (source, target, read_only) in &self.mounts {
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                if *read_only {
                    check(libc::mount(
                        none,
                        target.as_ptr(),
                        none,
                        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                }
            }
            if self.read_only_root {
                check(libc::mount(
                    none,
                    self.root.as_ptr(),
                    none,
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                    std::ptr::null(),
                ))?;
            }
            // capabilities: drop ALL, from the bounding set too.
            for capability in 0..=libc::c_ulong::from(63u8) {
                libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0);
            }
            check(libc::setgroups(self.groups.len(), self.groups.as_ptr()))?;
            check(libc::setgid(self.group))?;
            check(libc::setuid(self.user))?;
            if self.no_new_privileges {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            }
        }
        Ok(())
    }
}
