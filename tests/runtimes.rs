//! The core scenarios on three executors: tokio current-thread, tokio
//! multi-thread, and the `futures` thread pool. Each scenario spawns tasks
//! through a small executor-neutral interface and waits for them through
//! scopestream itself.

#![cfg(not(feature = "loom"))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use common::{stream, until};
use scopestream::{memory_stream, CancelScope, RecvError, SendError};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Spawns a task on the executor under test.
#[derive(Clone)]
struct Spawner(Arc<dyn Fn(BoxFuture) + Send + Sync>);

impl Spawner {
    /// Spawns `fut`; its output arrives on the returned receiver.
    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> scopestream::MemoryReceiver<T> {
        let (tx, rx) = memory_stream(1);
        (self.0)(Box::pin(async move {
            let _ = tx.send(fut.await).await;
        }));
        rx
    }
}

async fn join<T>(rx: scopestream::MemoryReceiver<T>) -> T {
    rx.recv().await.expect("task finished without a result")
}

/// Many producers and consumers, every buffer size: each item exactly once.
async fn mpmc_conservation(spawner: Spawner) {
    for size in [Some(0), Some(1), Some(16), None] {
        let (tx, rx) = stream::<u32>(size);
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let tx = tx.clone();
                spawner.spawn(async move {
                    for i in 0..300 {
                        tx.send(p * 1000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                spawner.spawn(async move {
                    let mut got = Vec::new();
                    while let Ok(item) = rx.recv().await {
                        got.push(item);
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        for producer in producers {
            join(producer).await;
        }
        let mut all = Vec::new();
        for consumer in consumers {
            let got = join(consumer).await;
            // Items of one producer arrive in order at each consumer.
            for p in 0..3 {
                let mine: Vec<_> = got.iter().filter(|i| *i / 1000 == p).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "per-sender order");
            }
            all.extend(got);
        }
        all.sort_unstable();
        let expected: Vec<u32> = (0..3)
            .flat_map(|p| (0..300).map(move |i| p * 1000 + i))
            .collect();
        assert_eq!(all, expected, "size {size:?}");
    }
}

/// R1 on a real executor: the shielded receiver in another task gets the item.
async fn shielded_receiver(spawner: Spawner) {
    let (tx, rx) = memory_stream::<&str>(0);
    let outer = CancelScope::new();
    let receiver = spawner.spawn({
        let outer = outer.clone();
        let rx = rx.clone();
        async move { outer.run(CancelScope::shielded().run(rx.recv())).await }
    });
    until(|| tx.statistics().tasks_waiting_receive == 1).await;
    outer.cancel();
    tx.send("final").await.unwrap();
    assert_eq!(join(receiver).await, Ok("final"));
}

/// Cancelling a group wakes blocked operations in spawned child tasks.
async fn cancel_wakes_spawned_tasks(spawner: Spawner) {
    let (tx, rx) = memory_stream::<u32>(0);
    let group = CancelScope::new();
    let recv = spawner.spawn({
        let (scope, rx) = (group.child(), rx.clone());
        async move { scope.run(rx.recv()).await }
    });
    let send = spawner.spawn({
        let (scope, tx) = (group.child(), tx.clone());
        async move { scope.run(CancelScope::new().run(tx.send(1))).await }
    });
    // Before the cancel, the pair meets normally.
    assert_eq!(join(recv).await, Ok(1));
    assert_eq!(join(send).await, Ok(()));
    // A blocked receive in a child task is woken by a cancel from a plain thread.
    let recv = spawner.spawn({
        let (scope, rx) = (group.child(), rx.clone());
        async move { scope.run(rx.recv()).await }
    });
    until(|| tx.statistics().tasks_waiting_receive == 1).await;
    std::thread::spawn(move || group.cancel()).join().unwrap();
    assert_eq!(join(recv).await, Err(RecvError::Cancelled));
}

/// Closing the last receiver wakes a blocked sender in another task.
async fn close_wakes_blocked_sender(spawner: Spawner) {
    let (tx, rx) = memory_stream::<String>(0);
    let send = spawner.spawn({
        let tx = tx.clone();
        async move { tx.send("item".to_owned()).await }
    });
    until(|| tx.statistics().tasks_waiting_send == 1).await;
    drop(rx);
    assert_eq!(join(send).await, Err(SendError::Broken("item".to_owned())));
}

/// Ping-pong over two rendezvous streams.
async fn ping_pong(spawner: Spawner) {
    let (ping_tx, ping_rx) = memory_stream::<u32>(0);
    let (pong_tx, pong_rx) = memory_stream::<u32>(0);
    let echo = spawner.spawn(async move {
        while let Ok(n) = ping_rx.recv().await {
            pong_tx.send(n + 1).await.unwrap();
        }
    });
    for i in 0..500 {
        ping_tx.send(i).await.unwrap();
        assert_eq!(pong_rx.recv().await, Ok(i + 1));
    }
    drop(ping_tx);
    join(echo).await;
}

type Scenario = fn(Spawner) -> BoxFuture;

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        ("mpmc_conservation", |s| Box::pin(mpmc_conservation(s))),
        ("shielded_receiver", |s| Box::pin(shielded_receiver(s))),
        ("cancel_wakes_spawned_tasks", |s| {
            Box::pin(cancel_wakes_spawned_tasks(s))
        }),
        ("close_wakes_blocked_sender", |s| {
            Box::pin(close_wakes_blocked_sender(s))
        }),
        ("ping_pong", |s| Box::pin(ping_pong(s))),
    ]
}

#[test]
fn core_scenarios_on_tokio_current_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let spawner = Spawner(Arc::new(move |fut| drop(handle.spawn(fut))));
    for (name, scenario) in scenarios() {
        println!("tokio current-thread: {name}");
        runtime.block_on(scenario(spawner.clone()));
    }
}

#[test]
fn core_scenarios_on_tokio_multi_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let spawner = Spawner(Arc::new(move |fut| drop(handle.spawn(fut))));
    for (name, scenario) in scenarios() {
        println!("tokio multi-thread: {name}");
        runtime.block_on(scenario(spawner.clone()));
    }
}

#[test]
fn core_scenarios_on_futures_thread_pool() {
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap();
    let spawner = Spawner(Arc::new(move |fut| pool.spawn_ok(fut)));
    for (name, scenario) in scenarios() {
        println!("futures thread pool: {name}");
        futures::executor::block_on(scenario(spawner.clone()));
    }
}
