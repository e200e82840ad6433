//! Live heap allocations, counted by a global allocator in this dedicated test
//! binary: a million cancelled or dropped receives leave nothing behind, and a
//! receive that blocks and is abandoned allocates nothing in steady state,
//! and the memory of withdrawn blocked sends is given back.

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
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    /// This thread's own counts (allocations, live allocations): the test
    /// harness allocates on its own threads while a test runs (it prints
    /// the results of the others), which the global counters would see.
    static THREAD: std::cell::Cell<(usize, isize)> = const { std::cell::Cell::new((0, 0)) };
}

fn count_thread(allocations: usize, live: isize) {
    let _ = THREAD.try_with(|t| {
        let (a, l) = t.get();
        t.set((a + allocations, l + live));
    });
}

fn thread_allocations() -> usize {
    THREAD.with(|t| t.get().0)
}

fn thread_live() -> isize {
    THREAD.with(|t| t.get().1)
}

/// The tests of this binary read global counters: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// SAFETY: forwards every call unchanged to the system allocator; the counters
// are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(1, Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as isize, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        count_thread(1, 1);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(1, Relaxed);
        LIVE_BYTES.fetch_sub(layout.size() as isize, Relaxed);
        count_thread(0, -1);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        count_thread(1, 0);
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
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
    let _serial = serial();
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
    let before = thread_allocations();
    for _ in 0..rounds {
        let mut recv = pin!(group.run(rx.recv()));
        assert!(recv.as_mut().poll(&mut cx).is_pending());
    }
    let allocated = thread_allocations() - before;
    println!("blocked-then-dropped receive: {allocated} allocations in {rounds} operations");
    assert_eq!(allocated, 0, "a blocked receive allocated");

    // Cancelled while blocked, each in a fresh child scope: the scopes are
    // allocated and freed, nothing accumulates.
    let live_before = thread_live();
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
    let live_after = thread_live();
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

/// A large item: a blocked send's slot holds it inline.
struct Big(#[allow(dead_code)] [u8; 64 * 1024]);

fn big() -> Box<Big> {
    // Built on the heap, moved into the send by value below.
    Box::new(Big([7; 64 * 1024]))
}

#[test]
fn withdrawn_blocked_sends_give_their_memory_back() {
    let _serial = serial();
    // A 64 KiB item is copied a few times on the way into its slot, more so
    // in a debug build: a roomy stack.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(withdrawn_blocked_sends)
        .unwrap()
        .join()
        .unwrap();
}

fn withdrawn_blocked_sends() {
    const SENDS: usize = 2000;
    const SLOT: isize = 64 * 1024;
    let (tx, rx) = memory_stream::<Big>(0);
    let mut cx = Context::from_waker(Waker::noop());
    let baseline = LIVE_BYTES.load(Relaxed);
    let mut block = |n: usize| {
        let mut sends = Vec::with_capacity(n);
        for _ in 0..n {
            let mut send = Box::pin(tx.send(*big()));
            assert!(send.as_mut().poll(&mut cx).is_pending());
            sends.push(send);
        }
        sends
    };

    // All withdrawn: back to the baseline, give or take a few kilobytes.
    let sends = block(SENDS);
    assert!(LIVE_BYTES.load(Relaxed) - baseline > SENDS as isize * SLOT);
    drop(sends);
    let kept = LIVE_BYTES.load(Relaxed) - baseline;
    println!("{SENDS} withdrawn 64 KiB sends: {kept} bytes kept");
    assert!(
        kept <= 2 * SLOT,
        "{kept} bytes kept after every send was withdrawn"
    );

    // Ten stay blocked, the rest withdrawn (newest first, then oldest
    // first): within a small factor of ten slots.
    let mut sends = block(SENDS);
    let newest: Vec<_> = sends.drain(SENDS / 2..).collect();
    drop(newest.into_iter().rev().collect::<Vec<_>>());
    sends.drain(10..);
    let kept = LIVE_BYTES.load(Relaxed) - baseline;
    println!("10 blocked of {SENDS} 64 KiB sends: {kept} bytes");
    assert!(kept <= 10 * 4 * SLOT, "{kept} bytes for 10 blocked sends");
    drop(sends);
    assert_eq!(tx.statistics().tasks_waiting_send, 0);
    drop(rx);
}

/// Every operation that wakes several tasks at once — a send told to two
/// `Stream` consumers, a close with two receives blocked on the handle, a
/// scope walk through three children — allocates nothing once warm.
#[test]
fn waking_many_tasks_at_once_allocates_nothing_in_steady_state() {
    let _serial = serial();
    let rounds = rounds().min(10_000);
    let mut cx = Context::from_waker(Waker::noop());
    let (tx, rx) = memory_stream::<u64>(4);
    let (mut c1, mut c2) = (rx.clone(), rx.clone());
    let group = CancelScope::new();
    let children: Vec<CancelScope> = (0..3).map(|_| group.child()).collect();
    let (_ctx, crx) = memory_stream::<u64>(0);

    let mut round = |count: bool| {
        let before = thread_allocations();
        // A send that tells two listening `Stream` receives.
        {
            let mut n1 = futures::StreamExt::next(&mut c1);
            let mut n2 = futures::StreamExt::next(&mut c2);
            assert!(std::pin::Pin::new(&mut n1).poll(&mut cx).is_pending());
            assert!(std::pin::Pin::new(&mut n2).poll(&mut cx).is_pending());
            tx.try_send(1).unwrap();
            assert_eq!(
                std::pin::Pin::new(&mut n1).poll(&mut cx),
                std::task::Poll::Ready(Some(1))
            );
        }
        // A close that ends two receives blocked on the closed handle.
        {
            let handle = rx.clone();
            let mut r1 = pin!(handle.recv());
            let mut r2 = pin!(handle.recv());
            assert!(r1.as_mut().poll(&mut cx).is_pending());
            assert!(r2.as_mut().poll(&mut cx).is_pending());
            handle.close();
            assert!(r1.as_mut().poll(&mut cx).is_ready());
            assert!(r2.as_mut().poll(&mut cx).is_ready());
        }
        // A walk of a scope with three children, each with a blocked receive.
        {
            let mut r0 = pin!(children[0].run(crx.recv()));
            let mut r1 = pin!(children[1].run(crx.recv()));
            let mut r2 = pin!(children[2].run(crx.recv()));
            assert!(r0.as_mut().poll(&mut cx).is_pending());
            assert!(r1.as_mut().poll(&mut cx).is_pending());
            assert!(r2.as_mut().poll(&mut cx).is_pending());
            group.set_deadline(None);
            assert!(r0.as_mut().poll(&mut cx).is_pending());
            assert!(r1.as_mut().poll(&mut cx).is_pending());
            assert!(r2.as_mut().poll(&mut cx).is_pending());
        }
        if count {
            thread_allocations() - before
        } else {
            0
        }
    };
    for _ in 0..1000 {
        round(false);
    }
    let mut allocated = 0;
    for _ in 0..rounds {
        allocated += round(true);
    }
    println!("multi-wake rounds: {allocated} allocations in {rounds} rounds");
    assert_eq!(allocated, 0, "waking several tasks allocated");
}

fn live_bytes() -> isize {
    LIVE_BYTES.load(Relaxed)
}

/// A long-lived scope gives back the memory of its children as they go:
/// 20 000 children alive at once (a task group's), then cancelled and
/// dropped, leave nothing behind in the scope — with no new child adopted
/// afterwards to trigger any clean-up.
#[test]
fn a_long_lived_scope_keeps_nothing_of_its_dropped_children() {
    let _serial = serial();
    let group = CancelScope::new();
    // Warm up the group's own structures.
    drop(group.child());
    let before = live_bytes();
    let children: Vec<CancelScope> = (0..20_000).map(|_| group.child()).collect();
    let while_alive = live_bytes();
    for child in &children {
        child.cancel();
    }
    drop(children);
    let after = live_bytes();
    println!(
        "20 000 children: {} bytes while alive, {} bytes left after they went",
        while_alive - before,
        after - before
    );
    assert!(
        after - before <= 16 * 1024,
        "the scope kept {} bytes of its dropped children",
        after - before
    );
    // The scope still works: a new child is cancelled with it.
    let child = group.child();
    group.cancel();
    assert!(child.is_cancelled());
}
