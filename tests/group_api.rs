//! The public API a task-group author needs: the catch rule, the parent
//! view, `?` across checkpoints, receives, sends and timeouts, the
//! cancellation-point combinator and carrying a scope into a spawned task.

#![cfg(not(feature = "loom"))]

mod common;

use std::time::Duration;

use common::Task;
// Some only for the scenarios that need async-io's timer.
#[cfg_attr(not(feature = "async-io"), allow(unused_imports))]
use scopestream::{
    checkpoint, fail_after, memory_stream, move_on_after, CancelScope, Cancelled, RecvError,
    ScopeExt, SendError, StreamError,
};

#[test]
fn catches_is_the_outermost_cancelled_scope_up_to_a_shield() {
    let a = CancelScope::new();
    let b = a.child();
    let c = b.child();
    assert!(
        !a.catches() && !b.catches() && !c.catches(),
        "nothing cancelled"
    );
    c.cancel();
    assert!(c.catches());
    b.cancel();
    assert!(!c.catches() && b.catches());
    a.cancel();
    assert!(!b.catches() && a.catches());
    b.set_shield(true);
    assert!(b.catches() && !c.catches());
    assert!(!CancelScope::current().catches(), "never the root");
}

#[test]
fn parent_shows_the_binding() {
    let group = CancelScope::new();
    assert!(group.parent().is_none(), "not bound before its first run");
    let task = group.child();
    assert!(task.parent().unwrap().same_scope(&group));
    futures::executor::block_on(group.run(async {}));
    let parent = group.parent().expect("bound at its first run");
    assert!(parent.is_root() && !group.is_root());
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    futures::executor::block_on(outer.run(inner.run(async {})));
    assert!(inner.parent().unwrap().same_scope(&outer));
}

// A deadline that must fire on `futures`' executor: needs async-io's timer.
#[cfg(feature = "async-io")]
#[test]
fn question_mark_works_across_checkpoints_receives_sends_and_timeouts() {
    async fn recv_only(scope: &CancelScope) -> Result<u32, RecvError> {
        scope.run(checkpoint()).await?; // Cancelled -> RecvError
        Ok(1)
    }
    let scope = CancelScope::new();
    scope.cancel();
    assert_eq!(
        futures::executor::block_on(recv_only(&scope)),
        Err(RecvError::Cancelled)
    );

    async fn mixed(tx: &scopestream::MemorySender<String>) -> Result<(), StreamError<String>> {
        checkpoint().await?;
        fail_after(
            Duration::from_millis(1),
            std::future::pending::<Result<(), Cancelled>>().cancellable(),
        )
        .await
        .map(drop)?; // TimedOut
        tx.send("kept".to_owned()).await?;
        Ok(())
    }
    let (tx, rx) = memory_stream::<String>(0);
    let out = futures::executor::block_on(mixed(&tx));
    assert_eq!(out, Err(StreamError::TimedOut));
    drop(rx);
    let out = futures::executor::block_on(async {
        tx.send("kept".to_owned()).await?;
        Ok::<(), StreamError<String>>(())
    });
    assert_eq!(
        out,
        Err(StreamError::Unsent(SendError::Broken("kept".to_owned())))
    );
    assert_eq!(out.unwrap_err().into_item().as_deref(), Some("kept"));
}

// A deadline that must fire on `futures`' executor: needs async-io's timer.
#[cfg(feature = "async-io")]
#[test]
fn stream_error_keeps_a_cancelled_sends_item_through_a_timeout_helper() {
    let (tx, _rx) = memory_stream::<u32>(0);
    let out = futures::executor::block_on(move_on_after(Duration::from_millis(10), async {
        tx.send(5).await?;
        Ok::<(), StreamError<u32>>(())
    }));
    // Not swallowed as "timed out": the item comes back.
    assert_eq!(out, Some(Err(StreamError::Unsent(SendError::Cancelled(5)))));
    assert!(out.unwrap().unwrap_err().is_cancelled());
}

#[test]
fn cancellable_gives_way_to_the_scope_and_drops_the_future() {
    struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let scope = CancelScope::new();
    let mut task = Task::new(
        scope.run(
            async move {
                let _flag = flag;
                std::future::pending::<u32>().await
            }
            .cancellable(),
        ),
    );
    task.pending();
    assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
    scope.cancel();
    assert!(task.wakes() >= 1, "the cancel wakes it");
    assert_eq!(task.ready(), Err(Cancelled));
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the future was dropped"
    );
    // Ready futures complete with their output; in the root, nothing cancels.
    assert_eq!(Task::new(async { 7 }.cancellable()).ready(), Ok(7));
    // A cancelled scope is checked first, as at every checkpoint.
    assert_eq!(
        Task::new(scope.run(async { 7 }.cancellable())).ready(),
        Err(Cancelled)
    );
}

#[test]
fn in_current_scope_carries_the_scope_into_a_spawned_task() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let group = CancelScope::new();
    let out = rt.block_on(async {
        let (task, plain) = group
            .run(async {
                let task = tokio::spawn(
                    tokio::time::sleep(Duration::from_secs(60))
                        .cancellable()
                        .in_current_scope(),
                );
                // Without it, a spawned task runs in the root.
                let plain = tokio::spawn(async { CancelScope::current().is_root() });
                (task, plain)
            })
            .await;
        group.cancel();
        let out = tokio::time::timeout(Duration::from_secs(20), task).await;
        (out.expect("watchdog").unwrap(), plain.await.unwrap())
    });
    assert_eq!(out, (Err(Cancelled), true));
}
