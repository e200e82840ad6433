#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Criterion benchmarks of the core paths: uncontended transfers, a
//! rendezvous across threads, a receive cancelled by its scope, and a
//! consumer loop through `recv()` against one through the `Stream`. The
//! side-by-side comparison with other channels lives in its own benchmark.

use std::future::Future;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use scopestream::{memory_stream, unbounded_memory_stream, CancelScope};

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    let (tx, rx) = memory_stream::<u64>(64);
    group.bench_function("try_send+try_recv/buffer 64", |b| {
        b.iter(|| {
            tx.try_send(black_box(1)).unwrap();
            black_box(rx.try_recv().unwrap());
        })
    });
    let (tx, rx) = unbounded_memory_stream::<u64>();
    group.bench_function("send+recv (async, ready)/unbounded", |b| {
        b.iter(|| {
            futures::executor::block_on(async {
                tx.send(black_box(1)).await.unwrap();
                black_box(rx.recv().await.unwrap());
            })
        })
    });
    let scope = CancelScope::new();
    group.bench_function("send+recv (async, ready) inside a scope/unbounded", |b| {
        b.iter(|| {
            futures::executor::block_on(scope.run(async {
                tx.send(black_box(1)).await.unwrap();
                black_box(rx.recv().await.unwrap());
            }))
        })
    });
    group.finish();
}

fn rendezvous_threads(c: &mut Criterion) {
    c.bench_function("rendezvous/blocking, 2 threads, 1000 items", |b| {
        b.iter_batched(
            || memory_stream::<u64>(0),
            |(tx, rx)| {
                let consumer = std::thread::spawn(move || while rx.recv_blocking().is_ok() {});
                for i in 0..1000 {
                    tx.send_blocking(i).unwrap();
                }
                drop(tx);
                consumer.join().unwrap();
            },
            BatchSize::SmallInput,
        )
    });
}

fn cancelled_receive(c: &mut Criterion) {
    let (_tx, rx) = memory_stream::<u64>(0);
    c.bench_function("cancel a blocked receive", |b| {
        b.iter(|| {
            let scope = CancelScope::new();
            let mut fut = std::pin::pin!(scope.run(rx.recv()));
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            scope.cancel();
            black_box(fut.as_mut().poll(&mut cx))
        })
    });
}

/// A producer task and a consumer loop on tokio's current-thread runtime:
/// `while let Ok(x) = rx.recv().await` against `while let Some(x) =
/// rx.next().await`, which waits as a listener rather than in line.
fn stream_vs_recv(c: &mut Criterion) {
    use futures::StreamExt;
    const ITEMS: u64 = 1000;
    let mut group = c.benchmark_group("consumer loop, 1000 items");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for size in [0, 1, 64] {
        group.bench_function(format!("recv()/buffer {size}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (tx, rx) = memory_stream::<u64>(size);
                    let producer = tokio::spawn(async move {
                        for i in 0..ITEMS {
                            tx.send(i).await.unwrap();
                        }
                    });
                    let mut sum = 0;
                    while let Ok(x) = rx.recv().await {
                        sum += x;
                    }
                    producer.await.unwrap();
                    black_box(sum)
                })
            })
        });
        group.bench_function(format!("next()/buffer {size}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (tx, mut rx) = memory_stream::<u64>(size);
                    let producer = tokio::spawn(async move {
                        for i in 0..ITEMS {
                            tx.send(i).await.unwrap();
                        }
                    });
                    let mut sum = 0;
                    while let Some(x) = rx.next().await {
                        sum += x;
                    }
                    producer.await.unwrap();
                    black_box(sum)
                })
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    uncontended,
    rendezvous_threads,
    cancelled_receive,
    stream_vs_recv
);
criterion_main!(benches);
