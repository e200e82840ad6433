//! SPEC S10 and S12 at their edges: a `Stream` receive whose `next()` future
//! is dropped, an operation cancelled first and closed second, and the
//! finality of `EndOfStream`. Every sequence is driven by hand (no executor),
//! so a receive that would wait for ever fails its `ready()` instead of
//! hanging the test.

#![cfg(not(feature = "loom"))]

mod common;

use std::time::{Duration, Instant};

use common::{stream, DropLedger, Task, SIZES};
use futures::stream::FusedStream;
use futures::StreamExt;
use scopestream::{CancelScope, RecvError, SendError, TryRecvError};

/// Polls `rx.next()` once (it must be pending) and drops it, as a `select!`
/// branch that lost or a timeout would.
fn abandon_next<T>(rx: &mut scopestream::MemoryReceiver<T>) {
    let mut next = Task::new(rx.next());
    next.pending();
    next.drop_future();
}

/// The same, inside `scope`.
fn abandon_next_in<T>(scope: &CancelScope, rx: &mut scopestream::MemoryReceiver<T>) {
    let mut next = Task::new(scope.run(rx.next()));
    next.pending();
    next.drop_future();
}

// ── 1. A dropped `next()` leaves nothing behind ──────────────────────────

#[test]
fn abandoned_next_is_not_counted_in_statistics() {
    for size in SIZES {
        let (_tx, mut rx) = stream::<u32>(size);
        abandon_next(&mut rx);
        assert_eq!(rx.statistics().tasks_waiting_receive, 0, "size {size:?}");
        // Not even while it is pending: nothing is committed to it.
        let mut next = Task::new(rx.next());
        next.pending();
        assert_eq!(rx.statistics().tasks_waiting_receive, 0, "size {size:?}");
    }
}

#[test]
fn abandoned_next_takes_no_item_from_a_rendezvous_send() {
    let (tx, mut rx) = stream::<u32>(Some(0));
    abandon_next(&mut rx);
    // Nobody waits: a rendezvous has no taker.
    assert_eq!(
        tx.try_send(1),
        Err(scopestream::TrySendError::Full(1)),
        "handed to a receive nobody polls"
    );
    // The task's own receive on the same handle gets the next item.
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        abandon_next(&mut rx);
        let mut recv = Task::new(rx.recv());
        recv.pending();
        let mut send = Task::new(tx.send(7));
        assert!(send.poll(), "size {size:?}: the waiting recv takes it");
        assert_eq!(send.ready(), Ok(()));
        assert_eq!(recv.ready(), Ok(7), "size {size:?}");
    }
}

#[test]
fn abandoned_next_hides_no_item_from_try_recv() {
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        abandon_next(&mut rx);
        let mut send = Task::new(tx.send(3));
        send.poll();
        assert_eq!(rx.try_recv(), Ok(3), "size {size:?}");
        assert_eq!(send.ready(), Ok(()), "size {size:?}");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "size {size:?}");
    }
}

#[test]
fn abandoned_next_hides_no_item_from_recv_before_end_of_stream() {
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        abandon_next(&mut rx);
        let mut send = Task::new(tx.send(4));
        send.poll();
        assert_eq!(Task::new(rx.recv()).ready(), Ok(4), "size {size:?}");
        assert_eq!(send.ready(), Ok(()));
        drop(tx);
        assert_eq!(
            Task::new(rx.recv()).ready(),
            Err(RecvError::EndOfStream),
            "size {size:?}"
        );
    }
}

#[test]
fn abandoned_next_keeps_one_senders_order() {
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        abandon_next(&mut rx);
        let mut first = Task::new(tx.send(1));
        first.poll();
        let mut second = Task::new(tx.send(2));
        second.poll();
        assert_eq!(Task::new(rx.recv()).ready(), Ok(1), "size {size:?}");
        first.poll();
        second.poll();
        assert_eq!(Task::new(rx.recv()).ready(), Ok(2), "size {size:?}");
        assert_eq!((first.ready(), second.ready()), (Ok(()), Ok(())));
    }
}

#[test]
fn next_after_an_abandoned_one_ends_in_a_cancelled_scope() {
    for size in SIZES {
        let (_tx, mut rx) = stream::<u32>(size);
        abandon_next(&mut rx);
        let scope = CancelScope::new();
        scope.cancel();
        assert_eq!(
            Task::new(scope.run(rx.next())).ready(),
            None,
            "size {size:?}: a checkpoint of the scope current at this poll"
        );
    }
}

#[test]
fn next_after_an_abandoned_one_ignores_the_old_scope() {
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        let old = CancelScope::new();
        abandon_next_in(&old, &mut rx);
        old.cancel();
        let mut next = Task::new(rx.next());
        next.pending();
        let mut send = Task::new(tx.send(5));
        send.poll();
        assert!(
            next.wakes() > 0,
            "size {size:?}: told that an item is there"
        );
        assert_eq!(next.ready(), Some(5), "size {size:?}");
        assert_eq!(send.ready(), Ok(()));
    }
}

#[test]
fn each_poll_next_is_a_checkpoint_of_the_scope_current_then() {
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        let scope = CancelScope::new();
        // One `next()` future, polled first in a healthy scope, then in a
        // cancelled one, then outside any scope.
        let mut next = rx.next();
        let poll_in = |scope: &CancelScope, next: &mut futures::stream::Next<'_, _>| {
            let polled = Task::new(scope.run(std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::pin::Pin::new(&mut *next).poll(cx))
            })));
            polled.ready()
        };
        use std::future::Future;
        assert!(poll_in(&scope, &mut next).is_pending(), "size {size:?}");
        scope.cancel();
        assert_eq!(poll_in(&scope, &mut next), std::task::Poll::Ready(None));
        let mut send = Task::new(tx.send(6));
        send.poll();
        assert_eq!(
            poll_in(&CancelScope::current(), &mut next),
            std::task::Poll::Ready(Some(6)),
            "size {size:?}"
        );
        assert_eq!(send.ready(), Ok(()));
    }
}

#[test]
fn abandoned_next_then_dropped_handle_loses_nothing() {
    for size in SIZES {
        let ledger = DropLedger::default();
        let (tx, mut rx) = stream(size);
        let other = rx.clone();
        abandon_next(&mut rx);
        let mut send = Task::new(tx.send(ledger.item(1)));
        send.poll();
        drop(rx);
        assert_eq!(other.try_recv().map(|i| i.id), Ok(1), "size {size:?}");
        assert_eq!(send.ready(), Ok(()));
        assert_eq!(ledger.dropped(), 1);
    }
}

#[test]
fn pending_next_is_woken_by_every_event_that_ends_its_wait() {
    for size in SIZES {
        // An item: buffered, or a rendezvous sender starting to wait.
        let (tx, mut rx) = stream::<u32>(size);
        let mut next = Task::new(rx.next());
        next.pending();
        let mut send = Task::new(tx.send(1));
        send.poll();
        assert_eq!(next.wakes(), 1, "size {size:?}: an item");
        assert_eq!(next.ready(), Some(1));
        assert_eq!(send.ready(), Ok(()));

        // The last sender closing.
        let mut next = Task::new(rx.next());
        next.pending();
        drop(tx);
        assert_eq!(next.wakes(), 1, "size {size:?}: end of stream");
        assert_eq!(next.ready(), None);

        // Its own handle closing, and its scope being cancelled.
        let (_tx, rx) = stream::<u32>(size);
        let mut rx2 = rx.clone();
        let mut next = Task::new(async move { rx2.next().await });
        next.pending();
        rx.close(); // another handle: nothing to tell
        assert_eq!(next.wakes(), 0, "size {size:?}: another handle's close");
        let scope = CancelScope::new();
        let (_tx, mut rx) = stream::<u32>(size);
        let mut next = Task::new(scope.run(rx.next()));
        next.pending();
        scope.cancel();
        assert_eq!(next.wakes(), 1, "size {size:?}: cancelled");
        assert_eq!(next.ready(), None);
    }
}

#[test]
fn pending_next_is_woken_when_its_own_handle_closes() {
    for size in SIZES {
        let (_tx, rx) = stream::<u32>(size);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let closer = std::sync::Arc::clone(&rx);
        let mut next = Task::new(std::future::poll_fn(move |cx| {
            rx.lock().unwrap().poll_next_unpin(cx)
        }));
        next.pending();
        closer.lock().unwrap().close();
        assert_eq!(next.wakes(), 1, "size {size:?}");
        assert_eq!(next.ready(), None);
    }
}

#[test]
fn two_pending_nexts_share_one_item_without_loss() {
    for size in SIZES {
        let (tx, mut a) = stream::<u32>(size);
        let mut b = a.clone();
        let mut next_a = Task::new(a.next());
        let mut next_b = Task::new(b.next());
        next_a.pending();
        next_b.pending();
        let mut send = Task::new(tx.send(9));
        send.poll();
        // Both are told; the first to poll takes it, the other waits on.
        assert_eq!((next_a.wakes(), next_b.wakes()), (1, 1), "size {size:?}");
        assert_eq!(next_b.ready(), Some(9));
        next_a.pending();
        assert_eq!(send.ready(), Ok(()));
        drop(tx);
        assert_eq!(next_a.wakes(), 2, "size {size:?}: end of stream");
        assert_eq!(next_a.ready(), None);
    }
}

#[test]
fn fused_stream_terminates_at_end_of_stream_and_close_not_on_cancel() {
    for size in SIZES {
        let (tx, mut rx) = stream::<u32>(size);
        assert!(!rx.is_terminated());
        let scope = CancelScope::new();
        scope.cancel();
        assert_eq!(Task::new(scope.run(rx.next())).ready(), None);
        assert!(!rx.is_terminated(), "a cancelled scope is not the end");
        drop(tx);
        assert_eq!(Task::new(rx.next()).ready(), None);
        assert!(rx.is_terminated(), "size {size:?}");

        let (_tx, mut rx) = stream::<u32>(size);
        rx.close();
        assert!(rx.is_terminated(), "size {size:?}: a closed handle");
        assert_eq!(Task::new(rx.next()).ready(), None);
    }
}

// ── 2. Cancelled first, closed second: `Cancelled` ───────────────────────

/// How a scope becomes cancelled: `cancel()`, or a deadline passing with
/// nobody looking (the close is the first to read it).
#[derive(Debug, Clone, Copy)]
enum CancelKind {
    Call,
    Deadline,
}

const CANCEL_KINDS: [CancelKind; 2] = [CancelKind::Call, CancelKind::Deadline];

fn cancellable(kind: CancelKind) -> CancelScope {
    match kind {
        CancelKind::Call => CancelScope::new(),
        CancelKind::Deadline => {
            CancelScope::with_deadline(Instant::now() + Duration::from_secs(3600))
        }
    }
}

fn cancel(scope: &CancelScope, kind: CancelKind) {
    match kind {
        CancelKind::Call => scope.cancel(),
        CancelKind::Deadline => {
            // A deadline that passes on its own, read by nobody until the
            // close: set it a moment ahead and let the moment go by.
            let at = Instant::now() + Duration::from_millis(2);
            scope.set_deadline(Some(at));
            while Instant::now() <= at {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[test]
fn cancelled_then_own_handle_closed_recv_reports_cancelled() {
    for kind in CANCEL_KINDS {
        for size in SIZES {
            let (_tx, rx) = stream::<u32>(size);
            let scope = cancellable(kind);
            let mut recv = Task::new(scope.run(rx.recv()));
            recv.pending();
            cancel(&scope, kind);
            rx.close();
            assert_eq!(recv.ready(), Err(RecvError::Cancelled), "{kind:?} {size:?}");
        }
    }
}

#[test]
fn cancelled_then_last_sender_closed_recv_reports_cancelled() {
    for kind in CANCEL_KINDS {
        for size in SIZES {
            let (tx, rx) = stream::<u32>(size);
            let scope = cancellable(kind);
            let mut recv = Task::new(scope.run(rx.recv()));
            recv.pending();
            cancel(&scope, kind);
            drop(tx);
            assert_eq!(recv.ready(), Err(RecvError::Cancelled), "{kind:?} {size:?}");
        }
    }
}

#[test]
fn cancelled_then_own_handle_closed_send_reports_cancelled_with_its_item() {
    for kind in CANCEL_KINDS {
        for size in [Some(0), Some(1)] {
            let (tx, _rx) = stream::<u32>(size);
            tx.try_send(0).ok(); // fill a buffer of 1
            let scope = cancellable(kind);
            let mut send = Task::new(scope.run(tx.send(1)));
            send.pending();
            cancel(&scope, kind);
            tx.close();
            assert_eq!(
                send.ready(),
                Err(SendError::Cancelled(1)),
                "{kind:?} {size:?}"
            );
        }
    }
}

#[test]
fn cancelled_then_last_receiver_closed_send_reports_cancelled_with_its_item() {
    for kind in CANCEL_KINDS {
        for size in [Some(0), Some(1)] {
            let (tx, rx) = stream::<u32>(size);
            tx.try_send(0).ok();
            let scope = cancellable(kind);
            let mut send = Task::new(scope.run(tx.send(1)));
            send.pending();
            cancel(&scope, kind);
            drop(rx);
            assert_eq!(
                send.ready(),
                Err(SendError::Cancelled(1)),
                "{kind:?} {size:?}"
            );
        }
    }
}

#[test]
fn closed_then_cancelled_reports_the_close() {
    // The first event wins, as in Trio: the close woke the operation before
    // the cancel came.
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let scope = CancelScope::new();
        let mut recv = Task::new(scope.run(rx.recv()));
        recv.pending();
        drop(tx);
        scope.cancel();
        assert_eq!(recv.ready(), Err(RecvError::EndOfStream), "size {size:?}");
    }
    let (tx, rx) = stream::<u32>(Some(0));
    let scope = CancelScope::new();
    let mut send = Task::new(scope.run(tx.send(1)));
    send.pending();
    drop(rx);
    scope.cancel();
    assert_eq!(send.ready(), Err(SendError::Broken(1)));
}

#[test]
fn cancelled_then_closed_after_a_commit_still_returns_the_item() {
    for kind in CANCEL_KINDS {
        for size in SIZES {
            let (tx, rx) = stream::<u32>(size);
            let scope = cancellable(kind);
            let mut recv = Task::new(scope.run(rx.recv()));
            recv.pending();
            tx.try_send(8).unwrap(); // committed to the waiting receive
            cancel(&scope, kind);
            drop(tx);
            rx.close();
            assert_eq!(recv.ready(), Ok(8), "{kind:?} {size:?}");
        }
    }
}

// ── 3. `EndOfStream` is final ────────────────────────────────────────────

#[test]
fn end_of_stream_waits_for_an_item_committed_to_a_live_receive() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let other = rx.clone();
        let mut first = Task::new(rx.recv());
        first.pending();
        tx.try_send(1).unwrap(); // committed to `first`
        drop(tx);
        assert_eq!(
            other.try_recv(),
            Err(TryRecvError::Empty),
            "size {size:?}: an item may still come back"
        );
        let mut waiting = Task::new(other.recv());
        waiting.pending();
        // `first` is dropped: its item comes back, to the receive waiting.
        first.drop_future();
        assert_eq!(waiting.ready(), Ok(1), "size {size:?}");
        assert_eq!(other.try_recv(), Err(TryRecvError::EndOfStream));
        assert_eq!(Task::new(rx.recv()).ready(), Err(RecvError::EndOfStream));
    }
}

#[test]
fn end_of_stream_reaches_waiting_receives_once_the_committed_item_is_taken() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let other = rx.clone();
        let mut first = Task::new(rx.recv());
        first.pending();
        tx.try_send(1).unwrap();
        drop(tx);
        let mut waiting = Task::new(other.recv());
        waiting.pending();
        let mut next_rx = other.clone();
        let mut next = Task::new(next_rx.next());
        next.pending();
        assert_eq!(first.ready(), Ok(1));
        assert!(waiting.wakes() > 0 && next.wakes() > 0, "size {size:?}");
        assert_eq!(waiting.ready(), Err(RecvError::EndOfStream));
        assert_eq!(next.ready(), None);
    }
}

#[test]
fn end_of_stream_is_never_followed_by_an_item() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let mut other = rx.clone();
        let mut first = Task::new(rx.recv());
        first.pending();
        tx.try_send(1).unwrap();
        drop(tx);
        let mut next = Task::new(other.next());
        next.pending();
        first.drop_future();
        // The item came back to the head: the stream yields it, then ends.
        assert_eq!(next.ready(), Some(1), "size {size:?}");
        assert_eq!(Task::new(other.next()).ready(), None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    }
}

#[test]
fn committed_item_of_a_dropped_receive_is_dropped_once_when_every_receiver_is_closed() {
    for size in SIZES {
        let ledger = DropLedger::default();
        let (tx, rx) = stream(size);
        let mut first = Task::new(rx.recv());
        first.pending();
        tx.try_send(ledger.item(1)).unwrap();
        rx.close();
        assert_eq!(ledger.dropped(), 0, "committed: still the receive's");
        first.drop_future();
        assert_eq!(ledger.dropped(), 1, "size {size:?}");
    }
}
