//! The required regression scenarios R1–R14, each across buffer sizes 0, 1
//! and unbounded where it makes sense. Most run single-threaded with futures
//! polled by hand, so each test decides exactly which step happens first;
//! R12 races real threads.

#![cfg(not(feature = "loom"))]

mod common;

use std::sync::Arc;
use std::sync::Weak;

use common::{stream, DropLedger, Task, SIZES};
use scopestream::{
    checkpoint, memory_stream, CancelScope, Cancelled, MemorySender, RecvError, SendError,
    Statistics, TryRecvError, TrySendError,
};

fn waiting(stats: Statistics) -> (usize, usize) {
    (stats.tasks_waiting_send, stats.tasks_waiting_receive)
}

// ── R1 ────────────────────────────────────────────────────────────────────

/// A receiver blocked behind a shield, its outer scope cancelled, then a send:
/// the receiver gets the item (the AnyIO #771 deadlock).
#[test]
fn r1_shielded_receiver_gets_item_after_outer_cancel() {
    for size in SIZES {
        for use_try_send in [false, true] {
            let (tx, rx) = stream::<u32>(size);
            let outer = CancelScope::new();
            let shield = CancelScope::shielded();
            let mut recv = Task::new(outer.run(shield.run(rx.recv())));
            recv.pending();
            outer.cancel();
            assert!(!shield.is_cancelled() && outer.is_cancelled());
            assert_eq!(
                waiting(tx.statistics()),
                (0, 1),
                "a shielded receiver stays deliverable"
            );

            if use_try_send {
                assert_eq!(tx.try_send(7), Ok(()), "size {size:?}");
            } else {
                let send = Task::new(tx.send(7));
                assert_eq!(
                    send.ready(),
                    Ok(()),
                    "a rendezvous send completes: size {size:?}"
                );
            }
            assert!(recv.wakes() > 0);
            assert_eq!(recv.ready(), Ok(7));
            assert_eq!(waiting(tx.statistics()), (0, 0));
            assert_eq!(tx.statistics().current_buffer_used, 0);
        }
    }
}

/// R1 variant: the shield is not the innermost scope.
#[test]
fn r1_shield_not_innermost() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        let inner = CancelScope::new();
        let mut recv = Task::new(outer.run(shield.run(inner.run(rx.recv()))));
        recv.pending();
        outer.cancel();
        assert!(!inner.is_cancelled());
        let send = Task::new(tx.send(9));
        assert_eq!(send.ready(), Ok(()));
        assert_eq!(recv.ready(), Ok(9));
        assert_eq!(waiting(rx.statistics()), (0, 0));
    }
}

// ── R2 ────────────────────────────────────────────────────────────────────

/// The task's own scope is cancelled; an operation fails with `Cancelled`;
/// then cleanup code under a new shielded scope receives, with the item
/// arriving while it waits (the AnyIO #832 variant) or already there.
#[test]
fn r2_shielded_cleanup_receive_after_own_cancel() {
    for size in SIZES {
        for item_first in [false, true] {
            let (tx, rx) = stream::<&str>(size);
            let scope = CancelScope::new();
            let rx = &rx;
            let mut task = Task::new(scope.run(async move {
                CancelScope::current().cancel();
                assert_eq!(rx.recv().await, Err(RecvError::Cancelled));
                assert_eq!(checkpoint().await, Err(Cancelled));
                CancelScope::shielded().run(rx.recv()).await
            }));
            let mut sender = Task::new(tx.send("final"));
            if item_first {
                // Buffered, or (rendezvous) a sender waiting with it.
                let _ = sender.poll();
                assert!(task.poll());
                assert_eq!(task.ready(), Ok("final"));
            } else {
                task.pending();
                assert_eq!(waiting(tx.statistics()), (0, 1));
                assert_eq!(
                    tx.try_send("final"),
                    Ok(()),
                    "the shielded receiver is deliverable"
                );
                assert_eq!(task.ready(), Ok("final"));
                sender.drop_future();
                continue;
            }
            assert_eq!(sender.ready(), Ok(()));
        }
    }
}

/// R2, sending variant.
#[test]
fn r2_shielded_cleanup_send_after_own_cancel() {
    for size in SIZES {
        let (tx, rx) = stream::<&str>(size);
        let scope = CancelScope::new();
        let tx = &tx;
        let task = Task::new(scope.run(async move {
            scope_cancel_current();
            assert_eq!(tx.send("lost?").await, Err(SendError::Cancelled("lost?")));
            CancelScope::shielded().run(tx.send("final")).await
        }));
        let mut receiver = Task::new(rx.recv());
        receiver.pending();
        assert_eq!(task.ready(), Ok(()));
        assert_eq!(receiver.ready(), Ok("final"));
        assert_eq!(
            rx.try_recv(),
            Err(TryRecvError::Empty),
            "the cancelled send moved nothing"
        );
    }
}

fn scope_cancel_current() {
    CancelScope::current().cancel();
}

// ── R3 ────────────────────────────────────────────────────────────────────

/// A waiting receiver's scope is cancelled and `try_send` runs before the
/// receiver is polled again: the item is not given to it.
#[test]
fn r3_try_send_skips_cancelled_waiting_receiver() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let scope = CancelScope::new();
        let mut recv = Task::new(scope.run(rx.recv()));
        recv.pending();
        scope.cancel();
        assert!(recv.wakes() > 0, "cancel wakes the blocked receiver");
        assert_eq!(
            waiting(tx.statistics()),
            (0, 0),
            "a cancelled waiter is not counted"
        );
        match size {
            Some(0) => assert_eq!(tx.try_send(1), Err(TrySendError::Full(1))),
            _ => {
                assert_eq!(tx.try_send(1), Ok(()));
                assert_eq!(rx.try_recv(), Ok(1));
            }
        }
        assert_eq!(recv.ready(), Err(RecvError::Cancelled));
        assert_eq!(waiting(tx.statistics()), (0, 0));
    }
}

// ── R4 ────────────────────────────────────────────────────────────────────

/// Two waiting receivers, the first cancelled: the second gets the item.
#[test]
fn r4_second_receiver_gets_item_when_first_cancelled() {
    for size in SIZES {
        for use_try_send in [false, true] {
            let (tx, rx) = stream::<u32>(size);
            let first_scope = CancelScope::new();
            let mut first = Task::new(first_scope.run(rx.recv()));
            let mut second = Task::new(CancelScope::new().run(rx.recv()));
            first.pending();
            second.pending();
            assert_eq!(waiting(tx.statistics()), (0, 2));
            first_scope.cancel();
            assert_eq!(waiting(tx.statistics()), (0, 1));
            if use_try_send {
                assert_eq!(tx.try_send(5), Ok(()));
            } else {
                assert_eq!(Task::new(tx.send(5)).ready(), Ok(()));
            }
            assert_eq!(second.ready(), Ok(5));
            assert_eq!(first.ready(), Err(RecvError::Cancelled));
            assert_eq!(tx.statistics().current_buffer_used, 0);
        }
    }
}

// ── R5 ────────────────────────────────────────────────────────────────────

/// An item is committed to a waiting receiver, then its scope is cancelled
/// before it is polled: the receive returns the item and the next checkpoint
/// reports the cancellation.
#[test]
fn r5_committed_item_wins_over_later_cancel() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let scope = CancelScope::new();
        let rx = &rx;
        let mut task = Task::new(scope.run(async move {
            let got = rx.recv().await;
            (got, checkpoint().await, checkpoint().await)
        }));
        task.pending();
        assert_eq!(tx.try_send(11), Ok(()));
        scope.cancel();
        assert_eq!(task.ready(), (Ok(11), Err(Cancelled), Err(Cancelled)));
        assert_eq!(tx.statistics().current_buffer_used, 0);
    }
}

// ── R6 ────────────────────────────────────────────────────────────────────

/// As R5, but the receive future is dropped: the item goes back to the head.
#[test]
fn r6_dropped_receive_returns_item_to_head() {
    for size in SIZES {
        let ledger = DropLedger::default();
        let (tx, rx) = stream(size);
        let scope = CancelScope::new();
        let mut recv = Task::new(scope.run(rx.recv()));
        recv.pending();
        tx.try_send(ledger.item(1)).unwrap();
        scope.cancel();
        // A later item, behind it where the buffer allows.
        let later = tx.try_send(ledger.item(2));
        assert_eq!(later.is_err(), size == Some(0), "size {size:?}");
        recv.drop_future();
        assert_eq!(
            ledger.dropped(),
            0,
            "the committed item is not dropped with the future"
        );
        drop(later);

        let stats = tx.statistics();
        let expected_len = if size == Some(0) { 1 } else { 2 };
        assert_eq!(
            stats.current_buffer_used, expected_len,
            "may exceed capacity: {stats:?}"
        );
        assert_eq!(
            rx.try_recv().map(|t| t.id),
            Ok(1),
            "the returned item is at the head"
        );
        if size != Some(0) {
            assert_eq!(rx.try_recv().map(|t| t.id), Ok(2));
        }
        assert_eq!(rx.try_recv().map(|t| t.id), Err(TryRecvError::Empty));
        assert_eq!(ledger.dropped(), 2);
    }
}

/// R6 variant: another receiver is waiting; the returned item goes to it.
#[test]
fn r6_dropped_receive_hands_item_to_next_waiter() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let scope = CancelScope::new();
        let mut first = Task::new(scope.run(rx.recv()));
        let mut second = Task::new(rx.recv());
        first.pending();
        second.pending();
        tx.try_send(3).unwrap();
        first.drop_future();
        assert_eq!(second.ready(), Ok(3));
        assert_eq!(tx.statistics().current_buffer_used, 0);
    }
}

// ── R7 ────────────────────────────────────────────────────────────────────

/// A blocked send is cancelled: the item comes back, nothing is left behind.
#[test]
fn r7_cancelled_blocked_send_returns_item() {
    for size in [0, 1] {
        let (tx, rx) = memory_stream::<u32>(size);
        for filler in 0..size as u32 {
            tx.try_send(100 + filler).unwrap();
        }
        let scope = CancelScope::new();
        let mut send = Task::new(scope.run(tx.send(7)));
        send.pending();
        assert_eq!(waiting(tx.statistics()), (1, 0));
        scope.cancel();
        assert!(send.wakes() > 0);
        assert_eq!(waiting(tx.statistics()), (0, 0));
        assert_eq!(send.ready(), Err(SendError::Cancelled(7)));
        for filler in 0..size as u32 {
            assert_eq!(rx.try_recv(), Ok(100 + filler));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(waiting(tx.statistics()), (0, 0));
    }
}

/// R7, raced the other way: the sender is cancelled but a receiver's
/// `try_recv` comes first and must skip it.
#[test]
fn r7_try_recv_skips_cancelled_sender() {
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut send = Task::new(scope.run(tx.send(7)));
    send.pending();
    scope.cancel();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(send.ready(), Err(SendError::Cancelled(7)));
}

// ── R8 ────────────────────────────────────────────────────────────────────

/// A blocked sender's item is taken by `try_recv`, then its scope is
/// cancelled: the send still succeeds.
#[test]
fn r8_taken_item_wins_over_later_cancel() {
    for size in [0, 1] {
        let (tx, rx) = memory_stream::<u32>(size);
        if size == 1 {
            tx.try_send(1).unwrap();
        }
        let scope = CancelScope::new();
        let mut send = Task::new(scope.run(tx.send(2)));
        send.pending();
        let first = rx.try_recv().unwrap();
        scope.cancel();
        assert_eq!(send.ready(), Ok(()));
        let mut got = vec![first];
        got.extend(std::iter::from_fn(|| rx.try_recv().ok()));
        let expected: Vec<u32> = if size == 1 { vec![1, 2] } else { vec![2] };
        assert_eq!(got, expected);
    }
}

// ── R9 ────────────────────────────────────────────────────────────────────

/// `recv` in an already-cancelled scope while an item is ready: `Cancelled`,
/// nothing moves, again and again.
#[test]
fn r9_recv_in_cancelled_scope_moves_nothing() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let mut sender = Task::new(tx.send(1));
        let _ = sender.poll(); // buffered, or waiting (rendezvous)
        let stats = tx.statistics();
        let scope = CancelScope::new();
        scope.cancel();
        for _ in 0..3 {
            assert_eq!(
                Task::new(scope.run(rx.recv())).ready(),
                Err(RecvError::Cancelled)
            );
        }
        assert_eq!(tx.statistics(), stats);
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(sender.poll());
    }
}

/// `send` in an already-cancelled scope while a receiver waits: `Cancelled`,
/// the receiver is left waiting.
#[test]
fn r9_send_in_cancelled_scope_moves_nothing() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let mut recv = Task::new(rx.recv());
        recv.pending();
        let scope = CancelScope::new();
        scope.cancel();
        for _ in 0..3 {
            assert_eq!(
                Task::new(scope.run(tx.send(1))).ready(),
                Err(SendError::Cancelled(1))
            );
        }
        assert_eq!(waiting(tx.statistics()), (0, 1));
        assert_eq!(tx.statistics().current_buffer_used, 0);
        recv.pending();
        tx.try_send(2).unwrap();
        assert_eq!(recv.ready(), Ok(2));
    }
}

// ── R10 ───────────────────────────────────────────────────────────────────

/// A cancelled receive leaves no ghost: a later send succeeds only where a
/// real receiver or buffer room exists, and the item can then be received.
#[test]
fn r10_cancelled_receive_leaves_no_ghost() {
    for size in SIZES {
        for drop_instead in [false, true] {
            let (tx, rx) = stream::<u32>(size);
            let scope = CancelScope::new();
            let mut recv = Task::new(scope.run(rx.recv()));
            recv.pending();
            if drop_instead {
                recv.drop_future();
            } else {
                scope.cancel();
                assert_eq!(recv.ready(), Err(RecvError::Cancelled));
            }
            assert_eq!(waiting(tx.statistics()), (0, 0));
            match size {
                Some(0) => {
                    assert_eq!(
                        tx.try_send(1),
                        Err(TrySendError::Full(1)),
                        "no ghost receiver"
                    );
                    let mut again = Task::new(rx.recv());
                    again.pending();
                    assert_eq!(tx.try_send(1), Ok(()));
                    assert_eq!(again.ready(), Ok(1));
                }
                _ => {
                    assert_eq!(tx.try_send(1), Ok(()));
                    assert_eq!(
                        tx.statistics().current_buffer_used,
                        1,
                        "buffered, not given to a ghost"
                    );
                    assert_eq!(rx.try_recv(), Ok(1));
                }
            }
        }
    }
}

/// R10 with a real timeout on tokio (Trio's `test_553`).
#[tokio::test(start_paused = true)]
async fn r10_timed_out_receive_leaves_no_ghost() {
    let (tx, rx) = memory_stream::<&str>(1);
    let timed_out = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
    assert!(timed_out.is_err());
    assert_eq!(waiting(tx.statistics()), (0, 0));
    tx.send("Test for PR #553").await.unwrap();
    assert_eq!(rx.recv().await, Ok("Test for PR #553"));

    let (tx, rx) = memory_stream::<&str>(0);
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(tx.try_send("x"), Err(TrySendError::Full("x")));
}

// ── R11 ───────────────────────────────────────────────────────────────────

/// The shield drops while a receiver is blocked under a cancelled outer
/// scope: it is woken, no longer counted or deliverable, and returns
/// `Cancelled`.
#[test]
fn r11_shield_lowered_while_blocked() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        let mut recv = Task::new(outer.run(shield.run(rx.recv())));
        recv.pending();
        outer.cancel();
        assert_eq!(recv.wakes(), 0, "the shield keeps outer cancellation out");
        assert_eq!(waiting(tx.statistics()), (0, 1));
        shield.set_shield(false);
        assert!(recv.wakes() > 0, "lowering the shield wakes the receiver");
        assert_eq!(waiting(tx.statistics()), (0, 0));
        match size {
            Some(0) => assert_eq!(tx.try_send(1), Err(TrySendError::Full(1))),
            _ => assert_eq!(tx.try_send(1), Ok(())),
        }
        assert_eq!(recv.ready(), Err(RecvError::Cancelled));
    }
}

/// R11 from another thread: `set_shield(false)` on a different thread wakes a
/// receiver blocked on a runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_shield_lowered_from_another_thread() {
    let (tx, rx) = memory_stream::<u32>(0);
    let outer = CancelScope::new();
    let shield = CancelScope::shielded();
    let task = tokio::spawn({
        let (outer, shield, rx) = (outer.clone(), shield.clone(), rx.clone());
        async move { outer.run(shield.run(rx.recv())).await }
    });
    while tx.statistics().tasks_waiting_receive == 0 {
        tokio::task::yield_now().await;
    }
    outer.cancel();
    let shield2 = shield.clone();
    std::thread::spawn(move || shield2.set_shield(false))
        .join()
        .unwrap();
    assert_eq!(task.await.unwrap(), Err(RecvError::Cancelled));
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
}

// ── R12 ───────────────────────────────────────────────────────────────────

/// Cancellation racing hand-offs on a multi-thread runtime: every operation
/// has exactly one outcome and every item is accounted for exactly once.
#[test]
fn r12_cancellation_racing_hand_off() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // At least 3000 rounds, and on until every outcome (received, returned
    // by a cancelled send, left buffered) has been seen, so the race this
    // test is named for has happened (bounded: a missing outcome fails).
    let mut totals = [0usize; 3];
    let mut rounds = 0;
    let started = std::time::Instant::now();
    for iteration in 0..30_000u64 {
        let enough = totals.iter().all(|&n| n > 0) || started.elapsed().as_secs() > 120;
        if iteration >= 3000 && enough {
            break;
        }
        rounds += 1;
        let size = SIZES[(iteration % 3) as usize];
        let delays: Vec<u64> = (0..4).map(|_| next() % 4).collect();
        let outcome = runtime.block_on(async move {
            let ledger = DropLedger::default();
            let (tx, rx) = stream(size);
            let scopes: Vec<CancelScope> = (0..4).map(|_| CancelScope::new()).collect();
            // The canceller starts first, so cancellations land before, during
            // and after the hand-offs.
            let canceller = tokio::spawn({
                let scopes = scopes.clone();
                async move {
                    for (scope, delay) in scopes.iter().zip(delays) {
                        for _ in 0..delay {
                            tokio::task::yield_now().await;
                        }
                        scope.cancel();
                    }
                }
            });
            let mut handles = Vec::new();
            for (i, scope) in scopes.iter().enumerate() {
                let scope = scope.clone();
                if i < 2 {
                    let tx = tx.clone();
                    let item = ledger.item(iteration * 2 + i as u64);
                    handles.push(tokio::spawn(async move {
                        match scope.run(tx.send(item)).await {
                            Ok(()) => (None, None),
                            Err(SendError::Cancelled(item)) => (None, Some(item)),
                            Err(other) => panic!("unexpected send outcome {other:?}"),
                        }
                    }));
                } else {
                    let rx = rx.clone();
                    handles.push(tokio::spawn(async move {
                        match scope.run(rx.recv()).await {
                            Ok(item) => (Some(item), None),
                            Err(RecvError::Cancelled) => (None, None),
                            Err(other) => panic!("unexpected recv outcome {other:?}"),
                        }
                    }));
                }
            }
            let mut received = Vec::new();
            let mut returned = Vec::new();
            for handle in handles {
                let (got, back) = handle.await.unwrap();
                received.extend(got.map(|t| t.id));
                returned.extend(back.map(|t| t.id));
            }
            canceller.await.unwrap();
            let buffered: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
                .map(|t| t.id)
                .collect();
            assert_eq!(waiting(tx.statistics()), (0, 0));
            let mut all: Vec<u64> = received
                .iter()
                .chain(&returned)
                .chain(&buffered)
                .copied()
                .collect();
            all.sort_unstable();
            assert_eq!(all, [iteration * 2, iteration * 2 + 1], "conservation (S7)");
            assert_eq!(ledger.dropped(), 2, "each item dropped exactly once");
            [received.len(), returned.len(), buffered.len()]
        });
        for (total, n) in totals.iter_mut().zip(outcome) {
            *total += n;
        }
    }
    println!(
        "r12 totals: received {}, returned {}, buffered {}",
        totals[0], totals[1], totals[2]
    );
    assert_eq!(totals.iter().sum::<usize>(), 2 * rounds);
    assert!(
        totals.iter().all(|&n| n > 0),
        "an outcome never happened in {rounds} rounds: {totals:?}"
    );
}

// ── R13 ───────────────────────────────────────────────────────────────────

/// Closing one sender clone leaves the stream open; closing the last one lets
/// receivers drain and then see the end of the stream.
#[test]
fn r13_close_one_sender_clone_then_last() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let tx2 = tx.clone();
        tx.close();
        tx.close(); // idempotent
        assert!(tx.is_closed() && !tx2.is_closed());
        assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
        assert_eq!(Task::new(tx.send(1)).ready(), Err(SendError::Closed(1)));
        assert!(
            tx.clone().is_closed(),
            "a clone of a closed handle is closed"
        );
        assert_eq!(rx.statistics().open_send_streams, 1);

        let mut recv = Task::new(rx.recv());
        recv.pending();
        tx2.try_send(2).unwrap();
        assert_eq!(recv.ready(), Ok(2));
        if size != Some(0) {
            tx2.try_send(3).unwrap();
        }
        drop(tx2);
        assert_eq!(rx.statistics().open_send_streams, 0);
        if size != Some(0) {
            assert_eq!(
                Task::new(rx.recv()).ready(),
                Ok(3),
                "drained after the last close"
            );
        }
        assert_eq!(Task::new(rx.recv()).ready(), Err(RecvError::EndOfStream));
        assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    }
}

/// The last sender closing wakes a blocked receive with `EndOfStream`.
#[test]
fn r13_last_sender_close_wakes_blocked_receivers() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let mut a = Task::new(rx.recv());
        let mut b = Task::new(CancelScope::new().run(rx.recv()));
        a.pending();
        b.pending();
        drop(tx);
        assert!(a.wakes() > 0 && b.wakes() > 0);
        assert_eq!(a.ready(), Err(RecvError::EndOfStream));
        assert_eq!(b.ready(), Err(RecvError::EndOfStream));
    }
}

/// Closing a handle wakes the operations blocked on *that* handle with
/// `Closed`; operations on other clones carry on.
#[test]
fn r13_close_wakes_only_that_handles_operations() {
    let (tx1, rx1) = memory_stream::<&str>(0);
    let tx2 = tx1.clone();
    let rx2 = rx1.clone();
    let mut send1 = Task::new(tx1.send("nope"));
    let mut send2 = Task::new(tx2.send("ok"));
    send1.pending();
    send2.pending();
    tx1.close();
    assert_eq!(send1.ready(), Err(SendError::Closed("nope")));
    assert_eq!(waiting(rx1.statistics()), (1, 0));
    assert_eq!(rx1.try_recv(), Ok("ok"));
    assert_eq!(send2.ready(), Ok(()));

    let mut recv1 = Task::new(rx1.recv());
    let mut recv2 = Task::new(rx2.recv());
    recv1.pending();
    recv2.pending();
    rx1.close();
    assert_eq!(recv1.ready(), Err(RecvError::Closed));
    assert_eq!(Task::new(rx1.recv()).ready(), Err(RecvError::Closed));
    assert_eq!(rx1.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(tx2.try_send("still open"), Ok(()));
    assert_eq!(recv2.ready(), Ok("still open"));
}

/// The last receiver closing breaks blocked and later sends and drops the
/// buffered items at once.
#[test]
fn r13_last_receiver_close_breaks_sends_and_drops_buffer() {
    for size in [Some(0), Some(2), None] {
        let ledger = DropLedger::default();
        let (tx, rx) = stream(size);
        let rx2 = rx.clone();
        let buffered = size.unwrap_or(3);
        for i in 0..buffered {
            tx.try_send(ledger.item(i as u64)).unwrap();
        }
        // Bounded streams are full now: this send blocks.
        let mut blocked = size.map(|_| Task::new(tx.send(ledger.item(99))));
        if let Some(blocked) = &mut blocked {
            blocked.pending();
        }
        rx.close();
        assert_eq!(ledger.dropped(), 0, "another receiver is still open");
        drop(rx2);
        assert_eq!(
            ledger.dropped(),
            buffered,
            "buffered items are dropped at once"
        );
        assert_eq!(tx.statistics().current_buffer_used, 0);
        if let Some(blocked) = blocked {
            assert!(blocked.wakes() > 0);
            match blocked.ready() {
                Err(SendError::Broken(item)) => assert_eq!(item.id, 99),
                other => panic!("expected Broken, got {other:?}"),
            }
        }
        assert!(matches!(
            tx.try_send(ledger.item(5)),
            Err(TrySendError::Broken(_))
        ));
        assert!(matches!(
            Task::new(tx.send(ledger.item(6))).ready(),
            Err(SendError::Broken(_))
        ));
        let created = buffered + 2 + usize::from(size.is_some());
        assert_eq!(ledger.dropped(), created, "every item dropped exactly once");
    }
}

/// An item that owns a sender of its own stream is freed as soon as the last
/// receiver closes: the cycle stream → buffer → item → sender → stream is
/// broken by the close, not left to leak.
#[test]
fn r13_last_receiver_close_breaks_item_cycle() {
    struct Cyclic {
        _own_sender: MemorySender<Cyclic>,
        _probe: Arc<()>,
    }
    for size in [Some(1), None] {
        let (tx, rx) = stream::<Cyclic>(size);
        let probe = Arc::new(());
        let weak: Weak<()> = Arc::downgrade(&probe);
        tx.try_send(Cyclic {
            _own_sender: tx.clone(),
            _probe: probe,
        })
        .unwrap();
        drop(tx);
        assert!(weak.upgrade().is_some(), "the item is buffered");
        assert_eq!(
            rx.statistics().open_send_streams,
            1,
            "held by the item itself"
        );
        drop(rx);
        assert!(
            weak.upgrade().is_none(),
            "freed when the last receiver closed"
        );
    }
}

/// Zero-sized items are counted and conserved like any other.
#[test]
fn r13_zero_sized_items() {
    for size in SIZES {
        let (tx, rx) = stream::<()>(size);
        let mut recv = Task::new(rx.recv());
        recv.pending();
        tx.try_send(()).unwrap();
        assert_eq!(recv.ready(), Ok(()));
        if size != Some(0) {
            tx.try_send(()).unwrap();
            assert_eq!(rx.statistics().current_buffer_used, 1);
        }
        drop(tx);
        if size != Some(0) {
            assert_eq!(rx.try_recv(), Ok(()));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    }
}

/// A send whose item was taken just before the last receiver closed returns
/// `Ok`, never `Broken`.
#[test]
fn r13_taken_just_before_last_receiver_closed() {
    for size in [0, 1] {
        let (tx, rx) = memory_stream::<u32>(size);
        if size == 1 {
            tx.try_send(1).unwrap();
        }
        let mut send = Task::new(tx.send(2));
        send.pending();
        let _ = rx.try_recv().unwrap();
        rx.close();
        assert_eq!(send.ready(), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Broken(3)));
    }
}

// ── R14 ───────────────────────────────────────────────────────────────────

/// Fairness, receive side: a waiting receiver owns a new item; a concurrent
/// `try_recv` cannot steal it.
#[test]
fn r14_waiting_receiver_owns_new_item() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let mut waiters: Vec<_> = (0..3).map(|_| Task::new(rx.recv())).collect();
        for waiter in &mut waiters {
            waiter.pending();
        }
        for i in 0..3 {
            tx.try_send(i).unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "no stealing");
        }
        let got: Vec<_> = waiters.into_iter().map(|w| w.ready().unwrap()).collect();
        assert_eq!(got, [0, 1, 2], "oldest receiver first");
    }
}

/// Fairness, send side: blocked senders are served in order, and freed room
/// goes to them before any new `try_send`.
#[test]
fn r14_waiting_senders_are_served_in_order() {
    for size in [0, 1] {
        let (tx, rx) = memory_stream::<u32>(size);
        if size == 1 {
            tx.try_send(0).unwrap();
        }
        let mut senders: Vec<_> = (1..=3).map(|i| Task::new(tx.send(i))).collect();
        for sender in &mut senders {
            sender.pending();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.try_recv().unwrap());
            assert_eq!(
                tx.try_send(9),
                Err(TrySendError::Full(9)),
                "room goes to waiting senders"
            );
        }
        got.extend(std::iter::from_fn(|| rx.try_recv().ok()));
        let expected: Vec<u32> = if size == 1 {
            vec![0, 1, 2, 3]
        } else {
            vec![1, 2, 3]
        };
        assert_eq!(got, expected);
        for sender in senders {
            assert_eq!(sender.ready(), Ok(()));
        }
    }
}

/// Fairness with cancellation: a cancelled sender in the middle of the line
/// is skipped, the order of the others kept.
#[test]
fn r14_cancelled_sender_skipped_order_kept() {
    let (tx, rx) = memory_stream::<u32>(0);
    let middle = CancelScope::new();
    let mut a = Task::new(tx.send(1));
    let mut b = Task::new(middle.run(tx.send(2)));
    let mut c = Task::new(tx.send(3));
    a.pending();
    b.pending();
    c.pending();
    middle.cancel();
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(b.ready(), Err(SendError::Cancelled(2)));
    assert_eq!((a.ready(), c.ready()), (Ok(()), Ok(())));
}
