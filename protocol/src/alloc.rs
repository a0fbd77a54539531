//! Allocator settings for processes that move large messages.
//!
//! A 50 MB frame is received into a fresh buffer. With glibc's defaults every buffer over
//! 32 MB is a new `mmap` (and buffers allocated by libzmq's I/O threads, which use their
//! own arenas, are mmapped well below that), so each one pays a page fault and a page
//! clear per 4 KiB and is unmapped again when freed: receiving ran at under 2 GB/s where a
//! reused buffer takes a plain copy at 8 GB/s. [`keep_large_buffers`] makes such buffers
//! come from one heap that keeps up to 256 MiB of freed memory for the next message.

/// Serves allocations up to 1 GiB from the heap, keeps up to 256 MiB of freed memory at its
/// top for reuse, and uses one arena for every thread (the few threads of a cluster process
/// then share the buffers libzmq frees). Call it first thing in `main`, before any thread
/// starts. Does nothing where the C library is not glibc.
pub fn keep_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's tuning parameters; called before other
        // threads allocate, so no allocation is in progress.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}
