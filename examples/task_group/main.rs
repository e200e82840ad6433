//! A Trio-style task group on tokio, built only on scopestream's public API
//! (`group.rs`), showing what it does:
//!
//! ```sh
//! cargo run --example task_group
//! ```

mod group;

use std::time::Duration;

use group::task_group;
use scopestream::{memory_stream, move_on_after, CancelScope, ScopeExt, StreamError};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // 1. Three workers share one stream; one fails: its siblings and the body
    //    are cancelled, and the group returns the first failure.
    let (tx, rx) = memory_stream::<u32>(0);
    let out: Result<Option<()>, StreamError<u32>> = task_group(|group| async move {
        for id in 0..3 {
            let rx = rx.clone();
            group.spawn(async move {
                loop {
                    let job = rx.recv().await?;
                    if job == 3 {
                        println!("  worker {id}: job {job} fails");
                        return Err(StreamError::Closed);
                    }
                    println!("  worker {id}: job {job} done");
                }
            });
        }
        for job in 0.. {
            tx.send(job).await?; // cancelled once a worker fails
        }
        Ok(())
    })
    .await;
    println!("1. first failure wins: {out:?}");

    // 2. A sleeping child (a foreign future) is a cancellation point with
    //    `.cancellable()`; a deadline around the group stops everything.
    let start = std::time::Instant::now();
    let out = move_on_after(
        Duration::from_millis(50),
        task_group(|group| async move {
            group.spawn(async {
                tokio::time::sleep(Duration::from_secs(60))
                    .cancellable()
                    .await?;
                Ok::<(), StreamError>(())
            });
            std::future::pending::<()>().cancellable().await?;
            Ok(())
        }),
    )
    .await;
    println!(
        "2. deadline around the group: {out:?} after {:?}",
        start.elapsed()
    );

    // 3. The group's own cancel is caught; cleanup behind a shield still runs.
    let out = task_group(|group| async move {
        let cleanup = group.clone();
        group.spawn(async move {
            let stopped = scopestream::checkpoint().await;
            let waited = tokio::time::sleep(Duration::from_secs(60))
                .cancellable()
                .await;
            CancelScope::shielded()
                .run(async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    println!("  shielded cleanup ran ({stopped:?}, {waited:?})");
                })
                .await;
            waited.map_err(StreamError::from)
        });
        tokio::task::yield_now().await;
        cleanup.cancel();
        scopestream::checkpoint().await?; // the body stops here
        Ok::<_, StreamError>(())
    })
    .await;
    println!("3. own cancellation caught: {out:?}");

    // 4. Nested groups, and a spawned tokio task carried into the scope.
    let outer = CancelScope::new();
    let canceller = outer.clone();
    let out = outer
        .run(task_group(|group| async move {
            group.spawn(async {
                task_group(|inner| async move {
                    inner.spawn(async {
                        let task = tokio::spawn(
                            tokio::time::sleep(Duration::from_secs(60))
                                .cancellable()
                                .in_current_scope(),
                        );
                        let out = task.await.expect("the task ran");
                        println!("  spawned task in the inner group: {out:?}");
                        Ok(out?)
                    });
                    Ok::<_, StreamError>(())
                })
                .await?;
                Ok(())
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
            canceller.cancel(); // from outside both groups
            scopestream::checkpoint().await?;
            Ok::<_, StreamError>(())
        }))
        .await;
    println!("4. outer cancellation passes through: {out:?}");

    // 5. A panicking child cancels the group and is re-raised at its exit.
    let out = tokio::spawn(task_group(|group| async move {
        group.spawn(async { panic!("child panics") });
        std::future::pending::<()>().cancellable().await?;
        Ok::<_, StreamError>(())
    }))
    .await;
    println!("5. panic re-raised: {}", out.is_err_and(|e| e.is_panic()));
}
