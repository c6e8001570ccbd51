//! The allocator of policies built for `wasm32-unknown-unknown` (the built-ins).
//!
//! Why not Rust's default (dlmalloc): the host runs every call in a fresh
//! instance, so nothing allocated ever needs to outlive the call, and dlmalloc
//! calls `memory.grow` on its first allocation whatever memory the module
//! already has. A grown memory costs the host two `mprotect` calls per call
//! (one to grow, one to shrink the pooled slot back for the next instance),
//! and the second makes the kernel interrupt every other core to flush its
//! TLB: under load that was 8 % of the server's CPU.
//!
//! So this allocator bumps a pointer through the memory the module starts
//! with (the policy build gives it room: `--initial-memory` in
//! `policies/build`), frees only the most recent allocation (which is what
//! `Vec` growth and short-lived temporaries mostly do), and grows memory only
//! when a request needs more than that.
//!
//! Components built for WASI keep the default allocator: wasi-libc's own
//! `malloc` owns the memory above `__heap_base` there.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

const PAGE: usize = 64 * 1024;

unsafe extern "C" {
    /// The first address after the module's data and stack, set by the linker.
    static __heap_base: u8;
}

/// A bump allocator over linear memory, for single-threaded fresh instances.
pub struct FreshInstanceAllocator {
    /// The next free address; 0 before the first allocation.
    next: Cell<usize>,
    /// The end of the memory this allocator may use.
    end: Cell<usize>,
}

// SAFETY: a wasm32-unknown-unknown instance has exactly one thread.
unsafe impl Sync for FreshInstanceAllocator {}

impl FreshInstanceAllocator {
    /// An allocator that starts at `__heap_base` on first use.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// Grows memory by at least `bytes` (at least half the memory again, so a
    /// request that keeps allocating grows a few times, not once per page);
    /// false when the host refuses.
    fn grow(&self, bytes: usize) -> bool {
        let have = core::arch::wasm32::memory_size(0);
        let pages = bytes.div_ceil(PAGE).max(have / 2).max(1);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return false;
        }
        let start = previous * PAGE;
        if start != self.end.get() {
            // Someone else grew memory meanwhile: continue in the new region.
            self.next.set(start);
        }
        self.end.set(start + pages * PAGE);
        true
    }
}

impl Default for FreshInstanceAllocator {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for FreshInstanceAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.next.get() == 0 {
            self.next.set(&raw const __heap_base as usize);
            self.end.set(core::arch::wasm32::memory_size(0) * PAGE);
        }
        loop {
            let start = self.next.get().next_multiple_of(layout.align());
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if end <= self.end.get() {
                self.next.set(end);
                return start as *mut u8;
            }
            if !self.grow(end - self.end.get()) {
                return core::ptr::null_mut();
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the latest allocation can be handed back; the rest goes with the instance.
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == self.next.get()
            && let Some(end) = start.checked_add(new_size)
            && end <= self.end.get()
        {
            // The latest allocation grows or shrinks in place when it fits.
            self.next.set(end);
            return ptr;
        }
        // SAFETY: the caller's contract for `realloc` covers `alloc` with this layout.
        let new =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
