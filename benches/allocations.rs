//! Heap allocations per operation in steady state, counted by a global
//! allocator: `cargo bench --bench allocations`.
//!
//! Each scenario runs `WARM_UP` times (so that slabs, buffers and waker
//! caches reach their working size), then `ROUNDS` times while counting.
//! Blocked operations are polled by hand with a real (reference-counted)
//! waker, so "blocks and is woken" is exactly that, with no executor
//! allocating on the side. Peers are measured the same way for context.

// A counting global allocator needs `unsafe impl GlobalAlloc`; the library
// itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use scopestream::{memory_stream, unbounded_memory_stream, CancelScope};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counter
// is a relaxed atomic with no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: usize = 1_000;
const ROUNDS: usize = 100_000;

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Allocations per round of `round`, after warming up.
fn per_round(mut round: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        round();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..ROUNDS {
        round();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / ROUNDS as f64
}

/// A receive future that blocks on its first poll and completes on its
/// second, after `wake` ran.
fn blocked_then_woken<R: Future>(recv: R, wake: impl FnOnce()) {
    thread_local! {
        static WAKER: Waker = Waker::from(Arc::new(Noop));
    }
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut recv = pin!(recv);
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    wake();
    assert!(recv.as_mut().poll(&mut cx).is_ready());
}

fn row(name: &str, allocations: f64) {
    println!("| {name} | {allocations:.3} |");
}

fn main() {
    println!("# Heap allocations per operation, steady state\n");
    println!("| scenario | allocations per round |\n|---|---|");

    let (tx, rx) = memory_stream::<u64>(64);
    row(
        "scopestream: try_send + try_recv, buffer 64",
        per_round(|| {
            tx.try_send(1).unwrap();
            rx.try_recv().unwrap();
        }),
    );

    let (tx, rx) = unbounded_memory_stream::<u64>();
    let waker = Waker::from(Arc::new(Noop));
    row(
        "scopestream: async send + recv, both ready, unbounded",
        per_round(|| {
            let mut cx = Context::from_waker(&waker);
            assert!(pin!(tx.send(1)).poll(&mut cx).is_ready());
            assert!(pin!(rx.recv()).poll(&mut cx).is_ready());
        }),
    );

    let (tx, rx) = memory_stream::<u64>(0);
    row(
        "scopestream: recv blocks, woken by try_send (rendezvous)",
        per_round(|| blocked_then_woken(rx.recv(), || tx.try_send(1).unwrap())),
    );
    row(
        "scopestream: send blocks, woken by try_recv (rendezvous)",
        per_round(|| blocked_then_woken(tx.send(1), || assert_eq!(rx.try_recv(), Ok(1)))),
    );
    let scope = CancelScope::new();
    row(
        "scopestream: recv blocks in a scope, woken by try_send",
        per_round(|| blocked_then_woken(scope.run(rx.recv()), || tx.try_send(1).unwrap())),
    );
    row(
        "scopestream: recv blocks in a scope, cancelled (scope creation included)",
        per_round(|| {
            let scope = CancelScope::new();
            blocked_then_woken(scope.run(rx.recv()), || scope.cancel())
        }),
    );
    let far = CancelScope::with_deadline(Instant::now() + Duration::from_secs(3600));
    row(
        "scopestream: recv blocks under a deadline (timer armed), woken by try_send",
        per_round(|| blocked_then_woken(far.run(rx.recv()), || tx.try_send(1).unwrap())),
    );

    let (tx, rx) = async_channel::bounded::<u64>(1);
    row(
        "async-channel: recv blocks, woken by try_send (buffer 1)",
        per_round(|| blocked_then_woken(rx.recv(), || tx.try_send(1).unwrap())),
    );
    let (tx, rx) = flume::bounded::<u64>(0);
    row(
        "flume: recv blocks, woken by try_send (rendezvous)",
        per_round(|| blocked_then_woken(rx.recv_async(), || tx.try_send(1).unwrap())),
    );
    let (tx, rx) = kanal::bounded_async::<u64>(0);
    row(
        "kanal: recv blocks, woken by try_send (rendezvous)",
        per_round(|| blocked_then_woken(rx.recv(), || assert!(tx.try_send(1).unwrap()))),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
    row(
        "tokio mpsc: recv blocks, woken by try_send (buffer 1)",
        per_round(|| blocked_then_woken(rx.recv(), || tx.try_send(1).unwrap())),
    );
}
