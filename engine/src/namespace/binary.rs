//! Byte accounting for binary values: they live in shared buffers outside Lua's allocator,
//! so the namespace counts them against the memory limit itself and collects garbage when
//! replaced ones pile up.

use super::{Failure, Namespace};

/// Binary values may grow by this much beyond twice what the last collection left before
/// the namespace collects garbage (Lua's collector does not see their size).
pub(super) const BINARY_SLACK: usize = 64 << 20;

impl Namespace {
    /// Bytes held by the namespace's binary values, including unreferenced ones the
    /// garbage collector has not freed yet.
    pub fn binary_held(&self) -> usize {
        self.binary.bytes()
    }

    /// Checks, before a task that carries `incoming` bytes of binary data runs, that they
    /// fit under the memory limit beside the binary values already held (which Lua's own
    /// limit does not count), collecting garbage first if they would not.
    pub fn admit_binary(&mut self, incoming: usize) -> Result<(), Failure> {
        let Some(limit) = self.opts.memory_limit else {
            return Ok(());
        };
        if incoming.saturating_add(self.binary.bytes()) > limit {
            self.collect_garbage();
        }
        let held = self.binary.bytes();
        if incoming.saturating_add(held) <= limit {
            return Ok(());
        }
        let mib = |b: usize| b as f64 / f64::from(1u32 << 20);
        Err(Failure::new(
            "MemoryError",
            if held == 0 {
                format!(
                    "the task carries {incoming} bytes of binary data, more than this engine's memory limit of {} MiB (--memory-limit)",
                    limit >> 20
                )
            } else {
                format!(
                    "the task carries {:.1} MiB of binary data and the namespace already holds {:.1} MiB of binary values: over this engine's memory limit of {} MiB (--memory-limit); free names you no longer need (x = nil)",
                    mib(incoming),
                    mib(held),
                    limit >> 20
                )
            },
        ))
    }

    /// After a task: frees binary values nothing references any more once they have piled
    /// up. Lua's collector paces itself by the memory it allocates, and a binary value is a
    /// few dozen bytes to it however big its buffer, so replaced pushes would otherwise
    /// stay in memory until unrelated allocations trigger a cycle.
    pub fn tidy(&mut self) {
        if self.binary.bytes() > self.binary_after_gc.saturating_mul(2) + BINARY_SLACK {
            self.collect_garbage();
        }
    }

    pub(super) fn collect_garbage(&mut self) {
        // Userdata are finalized (their buffers dropped) in the cycle that finds them
        // unreachable.
        let _ = self.lua.gc_collect();
        self.binary_after_gc = self.binary.bytes();
    }
}
