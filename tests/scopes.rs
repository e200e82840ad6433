//! Cancel-scope conformance: SPEC C1–C4 on their own and with streams.

#![cfg(not(feature = "loom"))]

mod common;

use std::time::Duration;

use common::{wait_for, watchdog, Task};
use futures::executor::block_on;
use scopestream::{checkpoint, memory_stream, CancelScope, Cancelled, RecvError};

#[test]
fn root_is_never_cancelled() {
    let root = CancelScope::current();
    assert_eq!(format!("{root:?}"), "CancelScope(root)");
    root.cancel();
    root.set_shield(true);
    assert!(!root.is_cancelled() && !root.is_cancel_called() && !root.is_shielded());
    assert_eq!(block_on(checkpoint()), Ok(()));
    assert!(CancelScope::current().same_scope(&root));
}

#[test]
fn run_makes_the_scope_current_and_restores_it() {
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (o, i) = (outer.clone(), inner.clone());
    let task = Task::new(outer.run(async move {
        assert!(CancelScope::current().same_scope(&o));
        inner
            .run(async { assert!(CancelScope::current().same_scope(&i)) })
            .await;
        assert!(CancelScope::current().same_scope(&o));
    }));
    task.ready();
    assert!(!CancelScope::current().same_scope(&CancelScope::default().child()));
    assert!(!CancelScope::current().is_cancelled());
    assert_eq!(format!("{:?}", CancelScope::current()), "CancelScope(root)");
}

#[test]
fn current_is_restored_when_the_inner_future_panics() {
    let scope = CancelScope::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut task = Task::new(scope.run(async { panic!("boom") }));
        task.poll();
    }));
    assert!(result.is_err());
    assert_eq!(format!("{:?}", CancelScope::current()), "CancelScope(root)");
}

#[test]
fn checkpoint_yields_once_then_completes() {
    let mut task = Task::new(checkpoint());
    task.pending();
    assert_eq!(task.wakes(), 1, "it asks to be polled again at once");
    assert_eq!(task.ready(), Ok(()));
}

#[test]
fn nested_cancellation_reaches_inner_scopes() {
    let outer = CancelScope::new();
    let middle = CancelScope::new();
    let inner = CancelScope::new();
    let (m, i) = (middle.clone(), inner.clone());
    let mut task = Task::new(outer.run(middle.run(inner.run(async move {
        checkpoint().await?;
        m.cancel();
        assert!(i.is_cancelled() && !i.is_cancel_called());
        checkpoint().await
    }))));
    task.pending();
    assert!(task.poll());
    drop(task);
    assert!(!outer.is_cancelled(), "cancellation does not flow outward");
    assert!(middle.is_cancel_called() && inner.is_cancelled());
}

#[test]
fn cancellation_is_level_triggered() {
    let scope = CancelScope::new();
    scope.cancel();
    scope.cancel(); // idempotent
    let (tx, rx) = memory_stream::<u8>(4);
    tx.try_send(1).unwrap();
    let task = Task::new(scope.run(async {
        let mut outcomes = Vec::new();
        for _ in 0..5 {
            outcomes.push(checkpoint().await);
            outcomes.push(rx.recv().await.map(|_| ()).map_err(|_| Cancelled));
        }
        outcomes
    }));
    assert_eq!(task.ready(), vec![Err(Cancelled); 10]);
    assert_eq!(rx.try_recv(), Ok(1), "no operation had an effect");
}

#[test]
fn shield_blocks_outer_cancel_and_own_cancel_pierces_own_shield() {
    let outer = CancelScope::new();
    let shield = CancelScope::shielded();
    assert!(shield.is_shielded());
    let s = shield.clone();
    let task = Task::new(outer.run(shield.run(async move {
        CancelScope::current().cancel(); // cancels `shield` itself
        let own = checkpoint().await;
        (own, s.is_cancel_called())
    })));
    assert_eq!(task.ready(), (Err(Cancelled), true));

    let outer = CancelScope::new();
    let shield = CancelScope::shielded();
    let o = outer.clone();
    let result = block_on(outer.run(async move {
        o.cancel();
        let outside = checkpoint().await;
        let inside = CancelScope::shielded().run(checkpoint()).await;
        let child_of_shield = shield.run(CancelScope::new().run(checkpoint())).await;
        (outside, inside, child_of_shield)
    }));
    assert_eq!(result, (Err(Cancelled), Ok(()), Ok(())));
}

#[test]
fn shield_toggled_while_blocked() {
    let (tx, rx) = memory_stream::<u32>(0);
    let outer = CancelScope::new();
    let shield = CancelScope::new();
    let mut recv = Task::new(outer.run(shield.run(rx.recv())));
    recv.pending();
    shield.set_shield(true);
    outer.cancel();
    assert_eq!(recv.wakes(), 0);
    shield.set_shield(false);
    assert_eq!(
        recv.wakes(),
        1,
        "lowering the shield under a cancelled scope wakes"
    );
    // Raised again before the receiver ran: it is deliverable again and keeps waiting.
    shield.set_shield(true);
    recv.pending();
    assert_eq!(tx.statistics().tasks_waiting_receive, 1);
    tx.try_send(4).unwrap();
    assert_eq!(recv.ready(), Ok(4));
}

#[test]
fn raising_a_shield_wakes_nobody() {
    let (_tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut recv = Task::new(scope.run(rx.recv()));
    recv.pending();
    scope.set_shield(true);
    scope.set_shield(true);
    assert_eq!(recv.wakes(), 0);
    recv.pending();
}

#[test]
fn cancel_before_first_poll() {
    let (tx, rx) = memory_stream::<u32>(1);
    tx.try_send(1).unwrap();
    let scope = CancelScope::new();
    let fut = scope.run(rx.recv());
    scope.cancel();
    assert_eq!(Task::new(fut).ready(), Err(RecvError::Cancelled));
    assert_eq!(rx.try_recv(), Ok(1));
}

#[test]
fn new_scope_binds_its_parent_at_first_poll() {
    let outer = CancelScope::new();
    let inner = CancelScope::new(); // created outside, polled inside `outer`
    outer.cancel();
    assert!(!inner.is_cancelled(), "not bound yet");
    let task = Task::new(outer.run(inner.run(checkpoint())));
    assert_eq!(task.ready(), Err(Cancelled));
    assert!(inner.is_cancelled() && !inner.is_cancel_called());
    // Bound once: later runs elsewhere keep the first parent.
    assert_eq!(Task::new(inner.run(checkpoint())).ready(), Err(Cancelled));
}

#[test]
fn child_is_bound_at_creation() {
    let group = CancelScope::new();
    let child = group.child();
    let grandchild = child.child();
    assert!(!grandchild.is_cancelled());
    group.cancel();
    assert!(child.is_cancelled() && grandchild.is_cancelled());
    assert!(!child.is_cancel_called());
    // Even polled outside the group, the child stays under it.
    assert_eq!(Task::new(child.run(checkpoint())).ready(), Err(Cancelled));
}

#[test]
fn a_scope_cannot_become_its_own_ancestor() {
    let a = CancelScope::new();
    let b = a.child();
    // `a` is first polled inside `b`, its own child: refused, `a` hangs off
    // the root instead of forming a cycle.
    assert_eq!(block_on(b.run(a.run(checkpoint()))), Ok(()));
    assert!(!a.is_cancelled() && !b.is_cancelled());
    a.cancel();
    assert!(b.is_cancelled());
}

#[test]
fn cancel_from_another_thread_wakes_a_blocked_receive() {
    let (_tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let remote = scope.clone();
    let watch = rx.clone();
    let canceller = std::thread::spawn(move || {
        // Cancel only once the receive is blocked, so that the wake-up is
        // what this test sees (not a check at the receive's first poll).
        wait_for(|| watch.statistics().tasks_waiting_receive == 1);
        remote.cancel();
    });
    let result = block_on(scope.run(rx.recv()));
    canceller.join().unwrap();
    assert_eq!(result, Err(RecvError::Cancelled));
    assert_eq!(rx.statistics().tasks_waiting_receive, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_scopes_on_spawned_tasks() {
    let (tx, rx) = memory_stream::<u32>(0);
    let group = CancelScope::new();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let child = group.child();
        let rx = rx.clone();
        tasks.push(tokio::spawn(async move { child.run(rx.recv()).await }));
    }
    // A fifth task runs directly in the group's scope.
    let rx5 = rx.clone();
    let g = group.clone();
    tasks.push(tokio::spawn(async move { g.run(rx5.recv()).await }));
    while tx.statistics().tasks_waiting_receive < 5 {
        tokio::task::yield_now().await;
    }
    tx.send(1).await.unwrap();
    group.cancel();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| **o == Ok(1)).count(), 1);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Err(RecvError::Cancelled))
            .count(),
        4
    );
    assert_eq!(tx.statistics().tasks_waiting_receive, 0);
}

#[test]
fn many_tasks_share_one_scope() {
    let (_tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut tasks: Vec<_> = (0..10).map(|_| Task::new(scope.run(rx.recv()))).collect();
    for task in &mut tasks {
        task.pending();
    }
    scope.cancel();
    for task in tasks {
        assert_eq!(task.wakes(), 1);
        assert_eq!(task.ready(), Err(RecvError::Cancelled));
    }
}

/// Waiters come and go in one scope (the first one's registration slot is
/// special-cased): after the first and a middle one leave and a newcomer
/// arrives, a cancel wakes exactly the live ones, once each.
#[test]
fn waiters_leaving_and_joining_one_scope() {
    let (_tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut tasks: Vec<_> = (0..4).map(|_| Task::new(scope.run(rx.recv()))).collect();
    for task in &mut tasks {
        task.pending();
    }
    let third = tasks.remove(2);
    let first = tasks.remove(0);
    let (first_wakes, third_wakes) = (first.wakes(), third.wakes());
    first.drop_future();
    third.drop_future();
    let mut newcomer = Task::new(scope.run(rx.recv()));
    newcomer.pending();
    tasks.push(newcomer);
    assert_eq!(rx.statistics().tasks_waiting_receive, 3);
    scope.cancel();
    assert_eq!((first_wakes, third_wakes), (0, 0));
    for task in tasks {
        assert_eq!(task.wakes(), 1);
        assert_eq!(task.ready(), Err(RecvError::Cancelled));
    }
    assert_eq!(rx.statistics().tasks_waiting_receive, 0);
}

#[test]
fn cancel_wakes_only_the_affected_subtree() {
    let (_tx, rx) = memory_stream::<u32>(0);
    let a = CancelScope::new();
    let b = CancelScope::new();
    let shielded_in_a = a.child();
    shielded_in_a.set_shield(true);
    let mut in_a = Task::new(a.run(CancelScope::new().run(rx.recv())));
    let mut in_b = Task::new(b.run(rx.recv()));
    let mut behind_shield = Task::new(shielded_in_a.run(rx.recv()));
    in_a.pending();
    in_b.pending();
    behind_shield.pending();
    a.cancel();
    assert_eq!(
        (in_a.wakes(), in_b.wakes(), behind_shield.wakes()),
        (1, 0, 0)
    );
    assert_eq!(in_a.ready(), Err(RecvError::Cancelled));
    in_b.pending();
    behind_shield.pending();
}

#[test]
fn debug_shows_the_flags() {
    let scope = CancelScope::shielded();
    scope.cancel();
    assert_eq!(
        format!("{scope:?}"),
        "CancelScope { cancel_called: true, shielded: true, cancelled: true, deadline: None }"
    );
    let scoped = scope.run(async {});
    assert!(format!("{scoped:?}").starts_with("Scoped { scope: CancelScope"));
    assert_eq!(Cancelled.to_string(), "cancelled by its cancel scope");
}

#[test]
fn scopes_and_scoped_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CancelScope>();
    send_sync::<scopestream::Scoped<std::future::Ready<()>>>();
}

#[test]
fn parent_cancel_wakes_a_child_whose_passed_deadline_was_read_without_waking() {
    let parent = CancelScope::new();
    let child = parent.child();
    let (_tx, rx) = memory_stream::<u32>(0);
    let mut task = Task::new(parent.run(child.run(rx.recv())));
    task.pending();
    // The deadline wakes the receive, which re-registers and arms a timer
    // (where a backend is built in). Whatever that timer does, it does it
    // before `before` is read below: after that, only the walk of
    // `parent.cancel()` can wake the task.
    child.set_deadline(Some(std::time::Instant::now() + Duration::from_millis(5)));
    task.pending();
    std::thread::sleep(Duration::from_millis(20));
    // A read of the passed deadline cancels the child, waking nobody.
    assert!(child.is_cancel_called());
    let before = task.wakes();
    parent.cancel();
    assert!(
        task.wakes() > before,
        "the parent's cancel skipped a child cancelled by a lazily read deadline"
    );
    assert_eq!(task.ready(), Err(RecvError::Cancelled));
}

#[test]
fn a_blocked_receive_in_a_child_is_woken_by_the_parents_cancel_after_a_lazy_expiry() {
    // The same on real threads, with whatever timer backend is built in.
    // With none (`--no-default-features`) only the parent's cancel can end
    // the receive; with one, its timer may end it first. Either way it ends.
    watchdog("receive in a lazily expired child", || {
        let parent = CancelScope::new();
        let child = parent.child();
        let (_tx, rx) = memory_stream::<u32>(0);
        let watch = rx.clone();
        let (c, p) = (child.clone(), parent.clone());
        let canceller = std::thread::spawn(move || {
            wait_for(|| watch.statistics().tasks_waiting_receive == 1);
            c.set_deadline(Some(std::time::Instant::now() + Duration::from_millis(30)));
            std::thread::sleep(Duration::from_millis(60));
            assert!(c.is_cancel_called());
            p.cancel();
        });
        let result = block_on(parent.run(child.run(rx.recv())));
        canceller.join().unwrap();
        assert_eq!(result, Err(RecvError::Cancelled));
    });
}
