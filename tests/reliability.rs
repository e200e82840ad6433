//! Hostile callbacks, panics, re-entrancy, odd scope trees and teardown:
//! each test is named after what it shows. Anything that could hang runs
//! under a watchdog; what used to abort the process runs in a child process.

#![cfg(not(feature = "loom"))]

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{poll_once, stream, watchdog, Task, SIZES};
use scopestream::{
    checkpoint, memory_stream, CancelScope, MemoryReceiver, MemorySender, RecvError, SendError,
    TryRecvError, TrySendError,
};

/// A waker that panics whenever it is woken.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("hostile waker");
    }
}

fn panicking_waker() -> Waker {
    Waker::from(Arc::new(PanickingWaker))
}

fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

// ── Lost items and ghosts ────────────────────────────────────────────────

#[test]
fn panicking_peer_waker_in_first_poll_of_recv_leaves_no_ghost_receive() {
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    // A send blocked under a scope, with a waker that panics.
    let mut send = Box::pin(scope.run(tx.send(1)));
    assert!(poll_with(&mut send, &panicking_waker()).is_pending());
    // The cancel wakes it (and the panic propagates out of `cancel`).
    assert!(catch_unwind(AssertUnwindSafe(|| scope.cancel())).is_err());
    // A receive's first poll skips the cancelled sender and wakes it again:
    // that panic unwinds out of the receive's poll.
    let first_poll = catch_unwind(AssertUnwindSafe(|| {
        let mut recv = rx.recv();
        poll_once(&mut recv)
    }));
    assert!(
        first_poll.is_err(),
        "the peer's waker panicked inside our poll"
    );
    assert_eq!(
        rx.statistics().tasks_waiting_receive,
        0,
        "no ownerless slot"
    );
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)), "nobody waits");
    assert_eq!(
        poll_once(&mut send),
        Poll::Ready(Err(SendError::Cancelled(1)))
    );
    // The stream works on.
    let mut recv = Task::new(rx.recv());
    recv.pending();
    assert_eq!(tx.try_send(3), Ok(()));
    assert_eq!(recv.ready(), Ok(3));
}

#[test]
fn panicking_peer_waker_in_first_poll_of_send_leaves_no_ghost_send() {
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut recv = Box::pin(scope.run(rx.recv()));
    assert!(poll_with(&mut recv, &panicking_waker()).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| scope.cancel())).is_err());
    let first_poll = catch_unwind(AssertUnwindSafe(|| {
        let mut send = tx.send(1);
        poll_once(&mut send)
    }));
    assert!(first_poll.is_err());
    assert_eq!(tx.statistics().tasks_waiting_send, 0, "no ownerless slot");
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "the abandoned item is not delivered"
    );
    assert_eq!(poll_once(&mut recv), Poll::Ready(Err(RecvError::Cancelled)));
}

#[test]
fn panicking_peer_waker_when_an_item_is_received_loses_nothing() {
    // `try_recv` takes a waiting sender's item and wakes it; the waker
    // panics. The item is not lost: it is back at the head.
    for size in [Some(0), Some(1)] {
        let (tx, rx) = stream::<u32>(size);
        if size == Some(1) {
            tx.try_send(0).unwrap();
        }
        let mut send = Box::pin(tx.send(1));
        assert!(poll_with(&mut send, &panicking_waker()).is_pending());
        let received = catch_unwind(AssertUnwindSafe(|| rx.try_recv()));
        assert!(
            received.is_err(),
            "size {size:?}: the sender's waker panicked"
        );
        let mut got = Vec::new();
        while let Ok(item) = rx.try_recv() {
            got.push(item);
        }
        let expected: &[u32] = if size == Some(1) { &[0, 1] } else { &[1] };
        assert_eq!(
            got, expected,
            "size {size:?}: every item still there, in order"
        );
        assert_eq!(poll_once(&mut send), Poll::Ready(Ok(())));
    }
}

#[test]
fn panicking_waker_in_close_still_wakes_every_other_waiter() {
    let (tx, rx) = memory_stream::<u32>(0);
    let mut hostile = Box::pin(rx.recv());
    assert!(poll_with(&mut hostile, &panicking_waker()).is_pending());
    let rx2 = rx.clone();
    let blocked = std::thread::spawn(move || rx2.recv_blocking());
    common::wait_for(|| tx.statistics().tasks_waiting_receive == 2);
    // The last sender closing wakes both; the first waker panics.
    assert!(catch_unwind(AssertUnwindSafe(|| drop(tx))).is_err());
    let result = watchdog("the second receiver", move || blocked.join().unwrap());
    assert_eq!(result, Err(RecvError::EndOfStream));
    assert_eq!(
        poll_once(&mut hostile),
        Poll::Ready(Err(RecvError::EndOfStream))
    );
}

#[test]
fn panicking_waker_in_last_receiver_drop_still_wakes_every_other_waiter() {
    let (tx, rx) = memory_stream::<u32>(0);
    let mut hostile = Box::pin(tx.send(1));
    assert!(poll_with(&mut hostile, &panicking_waker()).is_pending());
    let tx2 = tx.clone();
    let blocked = std::thread::spawn(move || tx2.send_blocking(2));
    common::wait_for(|| tx.statistics().tasks_waiting_send == 2);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(rx))).is_err());
    let result = watchdog("the second sender", move || blocked.join().unwrap());
    assert_eq!(result, Err(SendError::Broken(2)));
    assert_eq!(
        poll_once(&mut hostile),
        Poll::Ready(Err(SendError::Broken(1)))
    );
}

#[test]
fn panicking_waker_in_cancel_still_wakes_every_other_waiter() {
    let (_tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut hostile = Box::pin(scope.run(rx.recv()));
    assert!(poll_with(&mut hostile, &panicking_waker()).is_pending());
    let mut other = Task::new(scope.run(rx.recv()));
    other.pending();
    assert!(catch_unwind(AssertUnwindSafe(|| scope.cancel())).is_err());
    assert_eq!(other.wakes(), 1, "woken although an earlier waker panicked");
    assert_eq!(other.ready(), Err(RecvError::Cancelled));
}

/// A waker that owns a sender of the stream it waits on: dropping it
/// closes that sender, which locks the stream.
struct OwningWaker {
    _owned: Mutex<Option<MemorySender<u32>>>,
}

impl Wake for OwningWaker {
    fn wake(self: Arc<Self>) {}
}

fn owning_waker(tx: &MemorySender<u32>) -> Waker {
    Waker::from(Arc::new(OwningWaker {
        _owned: Mutex::new(Some(tx.clone())),
    }))
}

#[test]
fn waker_dropped_by_a_dropped_recv_does_not_deadlock() {
    watchdog("dropping a blocked Recv", || {
        let (tx, rx) = memory_stream::<u32>(0);
        let mut recv = Box::pin(rx.recv());
        assert!(poll_with(&mut recv, &owning_waker(&tx)).is_pending());
        // The slot holds the last clone of the waker.
        drop(recv);
        assert_eq!(tx.statistics().open_send_streams, 1);
    });
}

#[test]
fn waker_replaced_between_polls_does_not_deadlock() {
    watchdog("re-polling with another waker", || {
        let (tx, rx) = memory_stream::<u32>(0);
        let mut recv = Box::pin(rx.recv());
        assert!(poll_with(&mut recv, &owning_waker(&tx)).is_pending());
        assert!(poll_once(&mut recv).is_pending());
        let (tx_full, _rx_full) = memory_stream::<u32>(0);
        let mut send = Box::pin(tx_full.send(1));
        assert!(poll_with(&mut send, &owning_waker(&tx_full)).is_pending());
        assert!(poll_once(&mut send).is_pending());
        drop(send);
        // Inside a scope too: the scope keeps its own copy of the waker.
        let scope = CancelScope::new();
        let mut scoped = Box::pin(scope.run(rx.recv()));
        assert!(poll_with(&mut scoped, &owning_waker(&tx)).is_pending());
        assert!(poll_once(&mut scoped).is_pending());
        drop(scoped);
        // And through the `Stream`.
        let mut rx2 = rx.clone();
        let mut next = futures::StreamExt::next(&mut rx2);
        assert!(poll_with(&mut next, &owning_waker(&tx)).is_pending());
        assert!(poll_once(&mut next).is_pending());
        drop(next);
        drop(rx2);
        assert_eq!(tx.try_send(2), Ok(()), "the first receive still waits");
        assert_eq!(poll_once(&mut recv), Poll::Ready(Ok(2)));
    });
}

#[test]
fn waker_dropped_when_a_close_settles_the_slot_does_not_deadlock() {
    watchdog("closing with a waiter whose waker owns a sender", || {
        let (tx, rx) = memory_stream::<u32>(0);
        let mut recv = Box::pin(rx.recv());
        assert!(poll_with(&mut recv, &owning_waker(&tx)).is_pending());
        rx.close();
        assert_eq!(poll_once(&mut recv), Poll::Ready(Err(RecvError::Closed)));
    });
}

// ── Scope tree ───────────────────────────────────────────────────────────

#[test]
fn concurrent_binds_into_each_others_children_form_no_cycle() {
    watchdog("binding two scopes into each other", || {
        for _ in 0..300 {
            let (p, q) = (CancelScope::new(), CancelScope::new());
            let barrier = Arc::new(Barrier::new(2));
            let one = {
                let (p, q, barrier) = (p.clone(), q.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    futures::executor::block_on(p.child().run(q.run(async {})));
                })
            };
            let (p2, q2) = (p.clone(), q.clone());
            barrier.wait();
            futures::executor::block_on(q2.child().run(p2.run(async {})));
            one.join().unwrap();
            // A cycle would make every chain walk loop for ever.
            assert!(!p.is_cancelled() && !q.is_cancelled());
            p.cancel();
            assert!(p.is_cancelled());
            q.cancel();
            assert!(q.is_cancelled());
        }
    });
}

#[test]
fn deep_child_chain_of_100_000_is_built_and_dropped_on_a_2_mib_thread() {
    // In a child process: the failure this guards against is a stack
    // overflow, which aborts.
    if !in_child_process("deep_child_chain_of_100_000_is_built_and_dropped_on_a_2_mib_thread") {
        return;
    }
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let outer = CancelScope::new();
            let mut inner = outer.child();
            for _ in 0..100_000 {
                inner = inner.child();
            }
            assert!(!inner.is_cancelled());
            outer.cancel();
            assert!(inner.is_cancelled(), "the chain is intact");
            drop(outer);
            drop(inner); // drops the whole chain, iteratively
        })
        .unwrap()
        .join()
        .expect("a deep chain drops without overflowing the stack");
    println!("{CHILD_DONE}");
}

#[test]
fn default_scope_is_a_new_scope_not_the_root() {
    let scope = CancelScope::default();
    scope.cancel();
    assert!(scope.is_cancel_called(), "a default scope can be cancelled");
    let outer = CancelScope::new();
    outer.cancel();
    let escaped = futures::executor::block_on(outer.run(CancelScope::default().run(checkpoint())));
    assert!(
        escaped.is_err(),
        "inside a cancelled scope, a default scope is cancelled"
    );
}

#[test]
fn cancelled_awaited_before_first_run_is_woken_by_binding_under_a_cancelled_parent() {
    let scope = CancelScope::new();
    let mut waiting = Task::new(scope.cancelled());
    waiting.pending();
    let outer = CancelScope::new();
    outer.cancel();
    futures::executor::block_on(outer.run(scope.run(async {})));
    assert!(
        waiting.wakes() > 0,
        "binding under a cancelled parent wakes it"
    );
    waiting.ready();
}

// A deadline that must fire on `futures`' executor: needs async-io's timer.
#[cfg(feature = "async-io")]
#[test]
fn cancelled_awaited_before_first_run_arms_a_timer_for_its_new_parents_deadline() {
    let scope = CancelScope::new();
    let mut waiting = Task::new(scope.cancelled());
    waiting.pending();
    let outer = CancelScope::with_deadline(std::time::Instant::now() + Duration::from_millis(30));
    futures::executor::block_on(outer.run(scope.run(async {})));
    assert!(waiting.wakes() > 0, "woken to arm a timer for the deadline");
    // From here only the timer can wake it.
    let started = std::time::Instant::now();
    loop {
        let wakes = waiting.wakes();
        if waiting.poll() {
            break;
        }
        while waiting.wakes() == wakes {
            assert!(started.elapsed() < Duration::from_secs(20), "never woken");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

// ── Teardown and memory ──────────────────────────────────────────────────

/// Uses the crate from a thread-local's destructor, after the crate's own
/// thread-locals are gone.
struct UsesStreamOnDrop(Option<(MemorySender<u32>, MemoryReceiver<u32>)>);

static TLS_DESTRUCTOR_RAN: AtomicBool = AtomicBool::new(false);

impl Drop for UsesStreamOnDrop {
    fn drop(&mut self) {
        let Some((tx, rx)) = self.0.take() else {
            return;
        };
        tx.send_blocking(1).unwrap();
        assert_eq!(rx.recv_blocking(), Ok(1));
        // A scoped operation: the scope cannot be made current any more, so
        // it runs in the root.
        tx.try_send(2).unwrap();
        let scope = CancelScope::new();
        assert_eq!(
            poll_once(&mut Box::pin(scope.run(rx.recv()))),
            Poll::Ready(Ok(2))
        );
        TLS_DESTRUCTOR_RAN.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static USER: RefCell<UsesStreamOnDrop> = const { RefCell::new(UsesStreamOnDrop(None)) };
}

const CHILD: &str = "SCOPESTREAM_RELIABILITY_CHILD";
const CHILD_DONE: &str = "child process: done";

/// Runs the test `name` again in a child process, for what would abort the
/// process, and checks that it finished. Returns `true` in the child (go on
/// with the test), `false` in the parent (checked: done).
fn in_child_process(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(CHILD_DONE),
        "child process of {name}: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

#[test]
fn crate_used_from_a_thread_local_destructor_works() {
    // The failure this guards against is an abort.
    if !in_child_process("crate_used_from_a_thread_local_destructor_works") {
        return;
    }
    std::thread::spawn(|| {
        // Registered first, so destroyed after the crate's thread-locals.
        USER.with(|user| user.borrow_mut().0 = Some(memory_stream(1)));
        let (tx, rx) = memory_stream::<u32>(1);
        tx.send_blocking(0).unwrap();
        assert_eq!(rx.recv_blocking(), Ok(0));
        let scope = CancelScope::new();
        futures::executor::block_on(scope.run(checkpoint())).unwrap();
    })
    .join()
    .unwrap();
    assert!(TLS_DESTRUCTOR_RAN.load(Ordering::SeqCst));
    println!("{CHILD_DONE}");
}

#[test]
fn handles_and_scopes_are_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>(_: &T) {}
    let (tx, rx) = memory_stream::<Vec<u8>>(1);
    let scope = CancelScope::new();
    unwind_safe(&tx);
    unwind_safe(&rx);
    unwind_safe(&scope);
    // Weak handles, iterators, the sink and every future, as the peers'
    // (those that own an item or a future are unwind-safe as it is).
    unwind_safe(&tx.downgrade());
    unwind_safe(&rx.downgrade());
    unwind_safe(&tx.send(vec![]));
    unwind_safe(&tx.send_owned(vec![]));
    unwind_safe(&tx.broken());
    unwind_safe(&tx.clone().into_sink());
    unwind_safe(&rx.recv());
    unwind_safe(&rx.recv_owned());
    unwind_safe(&rx.iter());
    unwind_safe(&rx.try_iter());
    unwind_safe(&rx.clone().into_iter());
    unwind_safe(&scope.cancelled());
    unwind_safe(&scope.run(std::future::ready(())));
    unwind_safe(&scopestream::ScopeExt::cancellable(std::future::ready(())));
    unwind_safe(&scopestream::move_on_after(Duration::ZERO, rx.recv()));
    unwind_safe(&scopestream::fail_after(Duration::ZERO, rx.recv()));
    unwind_safe(&checkpoint());
    let rx2 = rx.clone();
    assert!(catch_unwind(move || drop(rx2)).is_ok());
    // Used again after a caught panic, the stream is consistent.
    let caught = catch_unwind(|| {
        tx.try_send(vec![1]).unwrap();
        panic!("after a send");
    });
    assert!(caught.is_err());
    assert_eq!(rx.try_recv(), Ok(vec![1]));
    assert!(catch_unwind(|| scope.cancel()).is_ok());
}

// ── Documented outcomes ──────────────────────────────────────────────────

#[test]
fn item_whose_drop_panics_is_dropped_outside_the_lock_and_the_stream_goes_on() {
    struct PanicsOnDrop(u32, Arc<AtomicUsize>);
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
            if self.0 == 1 {
                panic!("hostile item");
            }
        }
    }
    for size in SIZES {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = stream(size);
        let mut send = Box::pin(tx.send(PanicsOnDrop(1, Arc::clone(&drops))));
        let _ = poll_once(&mut send); // buffered, or waiting
        if size == Some(0) {
            // Withdrawn with its future: it panics as it drops.
            assert!(catch_unwind(AssertUnwindSafe(|| drop(send))).is_err());
        } else {
            drop(send);
            // The last receiver closing drops the buffered items.
            let rx2 = rx.clone();
            drop(rx);
            assert!(catch_unwind(AssertUnwindSafe(|| drop(rx2))).is_err());
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            continue;
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // Nothing is wedged or left waiting.
        assert_eq!(tx.statistics().tasks_waiting_send, 0);
        assert_eq!(
            tx.try_send(PanicsOnDrop(2, Arc::clone(&drops)))
                .map_err(|e| e.into_inner().0),
            Err(2)
        );
        drop(rx);
    }
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_runtime_without_time_panics_when_a_timer_is_armed_and_leaves_nothing_behind() {
    // Documented: tokio's timer needs `enable_time`. The panic comes from
    // the poll that arms it; nothing of that receive stays in the stream.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::with_deadline(std::time::Instant::now() + Duration::from_secs(3600));
    let armed = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let mut recv = Box::pin(scope.run(rx.recv()));
            std::future::poll_fn(|cx| {
                let _ = recv.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await
        })
    }));
    assert!(armed.is_err(), "tokio refuses a timer without enable_time");
    assert_eq!(rx.statistics().tasks_waiting_receive, 0);
    assert_eq!(
        tx.try_send(1),
        Err(TrySendError::Full(1)),
        "no ghost takes it"
    );
}

/// The names of this process's threads (Linux).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn only_a_deadline_that_blocks_starts_the_timer_backends_thread() {
    // As the README says: the crate starts no thread; with the async-io
    // backend the first deadline an operation blocks under starts
    // async-io's reactor thread. In a child process, so that no other test
    // has started it already.
    if !std::path::Path::new("/proc/self/task").exists()
        || !in_child_process("only_a_deadline_that_blocks_starts_the_timer_backends_thread")
    {
        return;
    }
    let reactor = || thread_names().iter().any(|name| name == "async-io");
    let (tx, rx) = memory_stream::<u32>(1);
    tx.send_blocking(1).unwrap();
    assert_eq!(rx.recv_blocking(), Ok(1));
    let scope = CancelScope::new();
    futures::executor::block_on(scope.run(checkpoint())).unwrap();
    // A deadline that never blocks arms no timer.
    let ready = futures::executor::block_on(scopestream::move_on_after(
        Duration::from_millis(1),
        async { rx.try_recv().map_err(|_| RecvError::Closed) },
    ));
    assert_eq!(ready, Some(Err(RecvError::Closed)));
    assert!(
        !reactor(),
        "a thread was started before any deadline blocked"
    );
    if !cfg!(feature = "async-io") {
        // No backend outside tokio: nothing could end a blocked wait.
        println!("{CHILD_DONE}");
        return;
    }
    let timed_out = futures::executor::block_on(scopestream::move_on_after(
        Duration::from_millis(1),
        rx.recv(),
    ));
    assert_eq!(timed_out, None);
    assert!(reactor(), "async-io's reactor thread drives the timer");
    println!("{CHILD_DONE}");
}
