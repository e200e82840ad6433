//! The reference task group of `examples/task_group/` (its very code, by
//! path), tested behaviour by behaviour. Each test runs on tokio with a
//! watchdog, so a group that would wait for ever fails instead of hanging.

#![cfg(not(feature = "loom"))]
// Some imports serve only the scenarios that need a timer backend.
#![cfg_attr(
    not(any(feature = "async-io", feature = "tokio")),
    allow(unused_imports)
)]

#[path = "../examples/task_group/group.rs"]
mod group;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use group::task_group;
use scopestream::{
    checkpoint, fail_after, memory_stream, move_on_after, CancelScope, Cancelled, ScopeExt,
    StreamError, TimedOut,
};

fn run<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(30), fut)
                .await
                .expect("watchdog: the group never returned")
        })
}

/// Counts the live instances of a guard held by children.
#[derive(Clone, Default)]
struct Alive(Arc<AtomicUsize>);

struct Guard(Arc<AtomicUsize>);

impl Alive {
    fn guard(&self) -> Guard {
        self.0.fetch_add(1, Ordering::SeqCst);
        Guard(Arc::clone(&self.0))
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn forever() -> Result<(), StreamError> {
    std::future::pending::<()>().cancellable().await?;
    Ok(())
}

#[test]
fn the_body_value_comes_back_once_every_child_finished() {
    let done = Arc::new(AtomicUsize::new(0));
    let out = run(task_group(|group| {
        let done = Arc::clone(&done);
        async move {
            for i in 0..5u64 {
                let done = Arc::clone(&done);
                let spawner = group.clone();
                group.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i)).await;
                    // A child may spawn a sibling.
                    let done2 = Arc::clone(&done);
                    spawner.spawn(async move {
                        done2.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    });
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), StreamError>(())
                });
            }
            Ok(42)
        }
    }));
    assert_eq!(out, Ok(Some(42)));
    assert_eq!(
        done.load(Ordering::SeqCst),
        10,
        "all children and grandchildren ran"
    );
}

#[test]
fn the_first_failure_cancels_siblings_and_body_and_is_returned() {
    let alive = Alive::default();
    let start = Instant::now();
    let out: Result<Option<()>, StreamError> = run(task_group(|group| {
        let alive = alive.clone();
        async move {
            for _ in 0..3 {
                let guard = alive.guard();
                group.spawn(async move {
                    let _guard = guard;
                    forever().await
                });
            }
            group.spawn(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err(StreamError::EndOfStream) // the failure
            });
            group.spawn(async { Err(StreamError::Closed) }.then_later());
            forever().await?;
            unreachable!("the body is cancelled");
        }
    }));
    assert_eq!(out, Err(StreamError::EndOfStream), "the first failure wins");
    assert_eq!(alive.count(), 0, "every sibling finished");
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// A failure that comes only after the first one.
trait ThenLater: Future + Sized {
    fn then_later(self) -> impl Future<Output = Self::Output> {
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.await
        }
    }
}
impl<F: Future> ThenLater for F {}

#[test]
fn the_body_failing_cancels_the_children() {
    let alive = Alive::default();
    let out: Result<Option<()>, StreamError> = run(task_group(|group| {
        let guard = alive.guard();
        async move {
            group.spawn(async move {
                let _guard = guard;
                forever().await
            });
            tokio::task::yield_now().await;
            Err(StreamError::Closed)
        }
    }));
    assert_eq!(out, Err(StreamError::Closed));
    assert_eq!(alive.count(), 0);
}

#[test]
fn the_groups_own_cancellation_is_caught() {
    let out = run(task_group(|group| async move {
        group.spawn(forever());
        tokio::task::yield_now().await;
        group.cancel();
        checkpoint().await?;
        Ok::<_, StreamError>("unreachable")
    }));
    assert_eq!(out, Ok(None));
}

#[test]
fn an_outer_cancellation_passes_through_as_cancelled() {
    let outer = CancelScope::new();
    let inner_scope_caught = Arc::new(AtomicUsize::new(0));
    let out = run(outer.run(async {
        let out = task_group(|group| async move {
            group.spawn(forever());
            CancelScope::current().parent().expect("bound").cancel();
            checkpoint().await?;
            Ok::<_, StreamError>(())
        })
        .await;
        inner_scope_caught.fetch_add(CancelScope::current().catches() as usize, Ordering::SeqCst);
        out
    }));
    assert_eq!(out, Err(StreamError::Cancelled));
    assert_eq!(
        inner_scope_caught.load(Ordering::SeqCst),
        1,
        "the outer scope catches it"
    );
}

#[test]
fn a_panicking_child_cancels_the_group_and_is_reraised_at_exit() {
    let alive = Alive::default();
    let guard = alive.guard();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(task_group(|group| async move {
            group.spawn(async move {
                let _guard = guard;
                forever().await
            });
            group.spawn(async {
                tokio::task::yield_now().await;
                panic!("child panics");
            });
            forever().await?;
            Ok::<_, StreamError>(())
        }))
    }));
    let panic = out.expect_err("the panic is re-raised");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"child panics"));
    assert_eq!(alive.count(), 0, "the sibling finished before the re-raise");
}

// A deadline that must fire inside tokio: needs a timer backend.
#[cfg(any(feature = "async-io", feature = "tokio"))]
#[test]
fn deadlines_around_the_group_stop_everything() {
    let alive = Alive::default();
    let out = run(move_on_after(
        Duration::from_millis(20),
        task_group(|group| {
            let guard = alive.guard();
            async move {
                group.spawn(async move {
                    let _guard = guard;
                    tokio::time::sleep(Duration::from_secs(60))
                        .cancellable()
                        .await?;
                    Ok(())
                });
                forever().await?;
                Ok::<_, StreamError>(())
            }
        }),
    ));
    assert_eq!(out, None, "move_on_after caught its deadline");
    assert_eq!(alive.count(), 0);
    let out = run(fail_after(
        Duration::from_millis(20),
        task_group(|_group| async {
            forever().await?;
            Ok::<_, StreamError>(())
        }),
    ));
    assert_eq!(out, Err(TimedOut));
}

#[test]
fn a_dropped_group_drops_every_child_with_it() {
    let alive = Alive::default();
    run(async {
        let group = task_group(|group| {
            let alive = alive.clone();
            async move {
                for _ in 0..3 {
                    let guard = alive.guard();
                    group.spawn(async move {
                        let _guard = guard;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<(), StreamError>(())
                    });
                }
                forever().await?;
                Ok(())
            }
        });
        // Polled until its children run, then dropped (as a losing
        // `select!` branch would).
        let timed_out = tokio::time::timeout(Duration::from_millis(10), group).await;
        assert!(timed_out.is_err());
    });
    assert_eq!(alive.count(), 0, "no child outlives its group");
}

#[test]
fn nested_groups_and_shielded_cleanup() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let out = run(task_group(|outer| {
        let cleaned = Arc::clone(&cleaned);
        async move {
            outer.spawn(async move {
                let inner: Result<Option<()>, StreamError> = task_group(|inner| async move {
                    inner.spawn(async move {
                        let stopped = forever().await;
                        // Cleanup behind a shield runs to completion.
                        CancelScope::shielded()
                            .run(async {
                                checkpoint().await?;
                                tokio::time::sleep(Duration::from_millis(2)).await;
                                cleaned.fetch_add(1, Ordering::SeqCst);
                                Ok::<(), Cancelled>(())
                            })
                            .await?;
                        stopped
                    });
                    forever().await?;
                    Ok(())
                })
                .await;
                assert_eq!(
                    inner,
                    Err(StreamError::Cancelled),
                    "the outer group's cancel"
                );
                inner.map(drop)
            });
            tokio::time::sleep(Duration::from_millis(5)).await;
            outer.cancel();
            checkpoint().await?;
            Ok::<_, StreamError>(())
        }
    }));
    assert_eq!(out, Ok(None));
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
}

#[test]
fn a_spawned_tokio_task_carried_into_the_group_is_cancelled_with_it() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let start = Instant::now();
    let out = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            task_group(|group| async move {
                group.spawn(async {
                    let task = tokio::spawn(
                        async {
                            tokio::time::sleep(Duration::from_secs(60))
                                .cancellable()
                                .await?;
                            Ok::<(), StreamError>(())
                        }
                        .in_current_scope(),
                    );
                    task.await.expect("the task ran")
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
                group.cancel();
                Ok::<_, StreamError>(())
            }),
        )
        .await
    });
    assert_eq!(out.expect("watchdog"), Ok(Some(())));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the task's sleep was cancelled"
    );
}

#[test]
fn streams_inside_a_group_lose_nothing_when_it_is_cancelled() {
    // Producers and consumers in one group, cancelled midway: every item
    // sent is received, or came back to its sender.
    let (tx, rx) = memory_stream::<u32>(0);
    let received = Arc::new(AtomicUsize::new(0));
    let returned = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let out = run(task_group(|group| {
        let (received, returned, sent) = (received.clone(), returned.clone(), sent.clone());
        async move {
            for _ in 0..2 {
                let rx = rx.clone();
                let received = received.clone();
                group.spawn(async move {
                    loop {
                        rx.recv().await?;
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            for i in 0.. {
                match tx.send(i).await {
                    Ok(()) => sent.fetch_add(1, Ordering::SeqCst),
                    Err(err) => {
                        assert_eq!(err.into_inner(), i);
                        returned.fetch_add(1, Ordering::SeqCst);
                        return Err(StreamError::Cancelled);
                    }
                };
                if i == 100 {
                    group.cancel();
                }
            }
            Ok::<(), StreamError<u32>>(())
        }
    }));
    assert_eq!(out, Ok(None));
    assert_eq!(sent.load(Ordering::SeqCst), received.load(Ordering::SeqCst));
    assert_eq!(returned.load(Ordering::SeqCst), 1);
}
