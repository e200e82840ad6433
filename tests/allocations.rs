//! Live heap allocations, counted by a global allocator in this dedicated test
//! binary: a million cancelled or dropped receives leave nothing behind, and a
//! receive that blocks and is abandoned allocates nothing in steady state.

#![cfg(not(feature = "loom"))]
// A counting global allocator needs `unsafe impl GlobalAlloc`; the library
// itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Waker};

use scopestream::{memory_stream, CancelScope, RecvError};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the counters
// are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(1, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A million by default; `SCOPESTREAM_ALLOC_ROUNDS` lowers it where every
/// allocation is slow (under valgrind in CI).
fn rounds() -> usize {
    std::env::var("SCOPESTREAM_ALLOC_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000)
}

/// Both scenarios run in one test so no other test thread allocates while
/// the counters are read.
#[test]
fn cancelled_and_dropped_receives_leave_nothing_behind() {
    let rounds = rounds();
    let (tx, rx) = memory_stream::<u64>(0);
    let mut cx = Context::from_waker(Waker::noop());
    let group = CancelScope::new();

    // Warm up: let the waiter slabs and the scope's child list reach size.
    for _ in 0..1000 {
        let scope = group.child();
        let mut recv = pin!(scope.run(rx.recv()));
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        scope.cancel();
        let mut recv = pin!(group.run(rx.recv()));
        assert!(recv.as_mut().poll(&mut cx).is_pending());
    }

    // Dropped while blocked, in a long-lived scope: no allocation at all.
    let before = ALLOCATIONS.load(Relaxed);
    for _ in 0..rounds {
        let mut recv = pin!(group.run(rx.recv()));
        assert!(recv.as_mut().poll(&mut cx).is_pending());
    }
    let allocated = ALLOCATIONS.load(Relaxed) - before;
    println!("blocked-then-dropped receive: {allocated} allocations in {rounds} operations");
    assert_eq!(allocated, 0, "a blocked receive allocated");

    // Cancelled while blocked, each in a fresh child scope: the scopes are
    // allocated and freed, nothing accumulates.
    let live_before = LIVE.load(Relaxed);
    for _ in 0..rounds {
        let scope = group.child();
        let mut recv = pin!(scope.run(rx.recv()));
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        scope.cancel();
        assert_eq!(
            recv.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Err(RecvError::Cancelled))
        );
    }
    let live_after = LIVE.load(Relaxed);
    println!(
        "live allocations: {live_before} before, {live_after} after {rounds} cancelled receives"
    );
    assert!(
        live_after <= live_before,
        "live allocations grew from {live_before} to {live_after}"
    );
    let stats = tx.statistics();
    assert_eq!(
        (stats.tasks_waiting_receive, stats.tasks_waiting_send),
        (0, 0)
    );
    assert_eq!(stats.current_buffer_used, 0);
}
