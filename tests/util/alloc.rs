//! A global allocator that counts, per thread, the allocations of the
//! threads that ask it to: the zero-allocation tests
//! (`tests/responder_alloc.rs`, and `crates/bench/tests/alloc.rs`, which
//! includes this file by `#[path]` since it cannot use the root package's
//! test modules). The harness runs tests on several threads at once, so each
//! counts only its own.
//!
//! A test binary that uses it installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: Counting = Counting;
//! ```
//!
//! Self-contained (the standard library only), for that `#[path]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Passes every call on to the system allocator, counting allocations
/// (not deallocations) on the threads inside [`allocations_in`].
#[derive(Debug)]
pub(crate) struct Counting;

thread_local! {
    /// `Some(n)`: this thread counts, `n` so far.
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn count_one() {
    // try_with: the allocator also runs while thread locals are torn down.
    let _ = COUNT.try_with(|n| n.set(n.get().map(|n| n + 1)));
}

// SAFETY: every call goes to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The allocations made on this thread while `f` runs (zero, whatever `f`
/// does, in a binary that did not install [`Counting`]).
pub(crate) fn allocations_in(f: impl FnOnce()) -> u64 {
    COUNT.with(|n| n.set(Some(0)));
    f();
    COUNT.with(Cell::take).unwrap_or(0)
}

/// Fails unless this binary installed [`Counting`] and it counts: the
/// check that makes a "zero allocations" assertion able to fail.
#[track_caller]
pub(crate) fn assert_the_counter_counts() {
    let n = allocations_in(|| {
        let v = std::hint::black_box(vec![1u8; 100]);
        drop(v);
    });
    assert_eq!(n, 1, "the counting allocator is not installed");
}
