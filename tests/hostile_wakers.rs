//! Wakers whose `clone` uses the very stream or scope that stores them.
//!
//! A waker is user code: its clone, wake and drop may take any lock of the
//! crate. None of them runs under one, so none of these can deadlock: each
//! test runs under a watchdog, and each checks that the operation still
//! ends as it should (nothing lost, nobody left waiting).

#![cfg(not(feature = "loom"))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use common::{cloning_hook_waker, poll_once, watchdog, WakeCounter};
use futures::StreamExt;
use scopestream::{memory_stream, CancelScope, MemoryReceiver, MemorySender, RecvError};

fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// A waker whose clone reads everything a handle can tell about its stream.
fn inspecting(tx: &MemorySender<u32>, rx: &MemoryReceiver<u32>) -> (Waker, Arc<WakeCounter>) {
    let (tx, rx) = (tx.clone(), rx.clone());
    cloning_hook_waker(move || {
        let _ = (tx.len(), rx.len(), tx.statistics(), rx.is_full());
    })
}

#[test]
fn clone_in_the_first_poll_of_a_blocking_recv_can_use_the_stream() {
    watchdog(
        "recv's first poll cloning a waker that uses the stream",
        || {
            let (tx, rx) = memory_stream::<u32>(0);
            let (waker, woken) = inspecting(&tx, &rx);
            let mut recv = Box::pin(rx.recv());
            assert!(poll_with(&mut recv, &waker).is_pending());
            assert_eq!(tx.statistics().tasks_waiting_receive, 1);
            assert_eq!(tx.try_send(5), Ok(()));
            assert_eq!(woken.count(), 1);
            assert_eq!(poll_with(&mut recv, &waker), Poll::Ready(Ok(5)));
        },
    );
}

#[test]
fn clone_that_sends_to_the_receive_being_queued_delivers_to_it() {
    // The clone runs after the receive joined the line and before its waker
    // is installed: the item it sends goes to that receive, which returns it
    // at once.
    watchdog("recv's waker clone sending to the receive itself", || {
        let (tx, rx) = memory_stream::<u32>(0);
        let sender = tx.clone();
        let (waker, _woken) = cloning_hook_waker(move || {
            let _ = sender.try_send(9);
        });
        let mut recv = Box::pin(rx.recv());
        assert_eq!(poll_with(&mut recv, &waker), Poll::Ready(Ok(9)));
        assert_eq!(tx.statistics().tasks_waiting_receive, 0);
        assert_eq!(rx.try_recv(), Err(scopestream::TryRecvError::Empty));
    });
}

#[test]
fn clone_in_the_first_poll_of_a_blocking_send_can_use_the_stream() {
    watchdog(
        "send's first poll cloning a waker that uses the stream",
        || {
            let (tx, rx) = memory_stream::<u32>(0);
            let (waker, woken) = inspecting(&tx, &rx);
            let mut send = Box::pin(tx.send(3));
            assert!(poll_with(&mut send, &waker).is_pending());
            assert_eq!(rx.try_recv(), Ok(3));
            assert_eq!(woken.count(), 1);
            assert_eq!(poll_with(&mut send, &waker), Poll::Ready(Ok(())));
        },
    );
}

#[test]
fn clone_that_receives_the_send_being_queued_completes_it() {
    watchdog("send's waker clone receiving from the send itself", || {
        let (tx, rx) = memory_stream::<u32>(0);
        let receiver = rx.clone();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&got);
        let (waker, _woken) = cloning_hook_waker(move || {
            if let Ok(item) = receiver.try_recv() {
                seen.lock().unwrap().push(item);
            }
        });
        let mut send = Box::pin(tx.send(4));
        assert_eq!(poll_with(&mut send, &waker), Poll::Ready(Ok(())));
        assert_eq!(*got.lock().unwrap(), [4]);
        assert_eq!(rx.statistics().tasks_waiting_send, 0);
    });
}

#[test]
fn clone_on_a_repoll_with_a_new_waker_can_use_the_stream() {
    watchdog("re-polls cloning a new waker that uses the stream", || {
        let (tx, rx) = memory_stream::<u32>(0);
        let mut recv = Box::pin(rx.recv());
        assert!(poll_once(&mut recv).is_pending());
        let (waker, woken) = inspecting(&tx, &rx);
        assert!(poll_with(&mut recv, &waker).is_pending());
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(woken.count(), 1, "the new waker is the one woken");
        assert_eq!(poll_once(&mut recv), Poll::Ready(Ok(1)));

        let mut send = Box::pin(tx.send(2));
        assert!(poll_once(&mut send).is_pending());
        let (waker, woken) = inspecting(&tx, &rx);
        assert!(poll_with(&mut send, &waker).is_pending());
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(woken.count(), 1, "the new waker is the one woken");
        assert_eq!(poll_once(&mut send), Poll::Ready(Ok(())));
    });
}

#[test]
fn clone_in_a_stream_receive_and_in_broken_can_use_the_stream() {
    watchdog(
        "next() and broken() cloning a waker that uses the stream",
        || {
            let (tx, rx) = memory_stream::<u32>(0);
            let (waker, woken) = inspecting(&tx, &rx);
            let mut listener = rx.clone();
            let mut next = listener.next();
            assert!(poll_with(&mut next, &waker).is_pending());
            // A new waker on a re-poll, too.
            let (waker2, woken2) = inspecting(&tx, &rx);
            assert!(poll_with(&mut next, &waker2).is_pending());
            let mut send = Box::pin(tx.send(6));
            assert!(poll_once(&mut send).is_pending());
            assert_eq!((woken.count(), woken2.count()), (0, 1));
            assert_eq!(poll_with(&mut next, &waker2), Poll::Ready(Some(6)));
            assert_eq!(poll_once(&mut send), Poll::Ready(Ok(())));
            drop(next);

            // The wakers above own receivers: drop them so the stream can break.
            drop((waker, waker2));
            let sender = tx.clone();
            let (waker, woken) = cloning_hook_waker(move || {
                let _ = (sender.statistics(), sender.is_broken());
            });
            let mut broken = Box::pin(tx.broken());
            assert!(poll_with(&mut broken, &waker).is_pending());
            drop((listener, rx));
            assert_eq!(woken.count(), 1);
            assert_eq!(poll_with(&mut broken, &waker), Poll::Ready(Ok(())));
        },
    );
}

#[test]
fn clone_that_binds_a_child_of_the_scope_it_waits_in_does_not_deadlock() {
    watchdog(
        "a scope registration cloning a waker that uses the scope",
        || {
            let scope = CancelScope::new();
            let (_tx, rx) = memory_stream::<u32>(0);
            let in_clone = scope.clone();
            let (waker, woken) = cloning_hook_waker(move || {
                let _child = in_clone.child();
                let _ = in_clone.is_cancelled();
            });
            let mut recv = Box::pin(scope.run(rx.recv()));
            assert!(poll_once(&mut recv).is_pending());
            // A new waker: the registration replaces the stored one.
            assert!(poll_with(&mut recv, &waker).is_pending());
            // The cancel walk wakes the registered waker without cloning it.
            scope.cancel();
            assert_eq!(woken.count(), 1);
            assert_eq!(
                poll_with(&mut recv, &waker),
                Poll::Ready(Err(RecvError::Cancelled))
            );
        },
    );
}

#[test]
fn a_scope_walk_and_a_repoll_after_it_keep_the_registration_working() {
    // A walk that does not cancel (a lowered shield under no cancellation, a
    // moved deadline) takes the waker to wake it; the re-poll puts it back,
    // so a later cancel still wakes the operation.
    watchdog("walk, re-poll, then cancel", || {
        let outer = CancelScope::new();
        let inner = CancelScope::shielded();
        let (_tx, rx) = memory_stream::<u32>(0);
        let in_clone = inner.clone();
        let (waker, woken) = cloning_hook_waker(move || {
            let _ = in_clone.child();
        });
        let mut recv = Box::pin(outer.run(inner.run(rx.recv())));
        assert!(poll_with(&mut recv, &waker).is_pending());
        inner.set_deadline(Some(
            std::time::Instant::now() + std::time::Duration::from_secs(3600),
        ));
        assert_eq!(
            woken.count(),
            1,
            "a moved deadline wakes the operation to re-arm"
        );
        assert!(poll_with(&mut recv, &waker).is_pending());
        inner.cancel();
        assert_eq!(woken.count(), 2, "the re-poll put the waker back");
        assert_eq!(
            poll_with(&mut recv, &waker),
            Poll::Ready(Err(RecvError::Cancelled))
        );
    });
}
