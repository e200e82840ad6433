#![allow(missing_docs)] // criterion_group! generates undocumented items
//! What a deadline costs, per timer backend: arming and disarming a timer for
//! a receive that blocks and is then woken by a send, and how late a timer
//! wakes a receive after its deadline.
//!
//! Run with `--features tokio` to compare tokio's timer (the rows "in a
//! tokio runtime") with async-io's (the other rows); without it, every row
//! uses async-io's.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use scopestream::{memory_stream, move_on_after, CancelScope};

/// A receive that blocks (arming a timer if its scope has a deadline) and is
/// completed by a send, polled by hand.
fn blocked_then_woken(
    scope: &CancelScope,
    tx: &scopestream::MemorySender<u64>,
    rx: &scopestream::MemoryReceiver<u64>,
) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut recv = pin!(scope.run(rx.recv()));
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    tx.try_send(black_box(1)).unwrap();
    assert!(recv.as_mut().poll(&mut cx).is_ready());
}

fn arm_and_disarm(c: &mut Criterion) {
    let mut group = c.benchmark_group("blocked recv woken by a send");
    let (tx, rx) = memory_stream::<u64>(0);
    let plain = CancelScope::new();
    let far = CancelScope::with_deadline(Instant::now() + Duration::from_secs(3600));
    group.bench_function("no deadline", |b| {
        b.iter(|| blocked_then_woken(&plain, &tx, &rx))
    });
    group.bench_function("deadline, outside tokio (async-io timer)", |b| {
        b.iter(|| blocked_then_woken(&far, &tx, &rx))
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    group.bench_function("deadline, in a tokio runtime", |b| {
        b.iter(|| blocked_then_woken(&far, &tx, &rx))
    });
    group.finish();
}

/// One iteration: a receive under a 1 ms timeout that nothing answers. The
/// time per iteration minus 1 ms is how late the timer woke it.
fn expiry_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("1 ms timeout expiring");
    group.sample_size(30);
    let (_tx, rx) = memory_stream::<u64>(0);
    group.bench_function("futures block_on (async-io timer)", |b| {
        b.iter(|| {
            futures::executor::block_on(async {
                assert!(move_on_after(Duration::from_millis(1), rx.recv())
                    .await
                    .is_none());
            })
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("tokio current-thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                assert!(move_on_after(Duration::from_millis(1), rx.recv())
                    .await
                    .is_none());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, arm_and_disarm, expiry_latency);
criterion_main!(benches);
