//! Loom models of the interleavings that decide the crate's guarantees.
//!
//! Run with `cargo test --features loom` (everything the feature affects:
//! these models and the doc tests), or `cargo test --release --features loom
//! --test loom` for the models alone. Inside a model every primitive in
//! `src/sync.rs` is loom's, so these models check the real code. Each model
//! has two or three threads and at most two items,
//! asserts the exact set of outcomes it allows, and counts item drops so that
//! a lost or doubly dropped item fails it. Every model is exhaustive (no
//! preemption bound) unless a bound is stated next to it.

#![cfg(feature = "loom")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use loom::future::block_on;
use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use scopestream::{memory_stream, CancelScope, RecvError, SendError, TryRecvError, TrySendError};

/// An item that counts its drops in a shared ledger.
#[derive(Debug)]
struct Item {
    id: u32,
    drops: std::sync::Arc<AtomicUsize>,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[derive(Clone, Default)]
struct Ledger(std::sync::Arc<AtomicUsize>);

impl Ledger {
    fn item(&self, id: u32) -> Item {
        Item {
            id,
            drops: self.0.clone(),
        }
    }

    fn dropped(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Polls once with a waker that does nothing (the model re-polls by hand).
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(Waker::noop()))
}

/// Runs `f` exhaustively, with the crate's primitives loom's.
fn model(f: impl Fn() + Sync + Send + 'static) {
    scopestream::__loom::model(f);
}

// ── 1. Rendezvous hand-off ───────────────────────────────────────────────

fn send_vs_recv(size: usize) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(size);
        let item = ledger.item(1);
        let sender = thread::spawn(move || block_on(tx.send(item)));
        assert_eq!(block_on(rx.recv()).map(|i| i.id), Ok(1));
        assert!(sender.join().unwrap().is_ok());
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn hand_off_send_vs_recv_buffer_0() {
    send_vs_recv(0);
}

#[test]
fn hand_off_send_vs_recv_buffer_1() {
    send_vs_recv(1);
}

fn send_vs_try_recv(size: usize) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(size);
        let item = ledger.item(1);
        let sender = thread::spawn(move || block_on(tx.send(item)).is_ok());
        match rx.try_recv().map(|i| i.id) {
            Ok(1) => {}
            // The sender has not arrived yet: it is then received normally.
            Err(TryRecvError::Empty) => assert_eq!(block_on(rx.recv()).map(|i| i.id), Ok(1)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(sender.join().unwrap());
        assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn hand_off_send_vs_try_recv_buffer_0() {
    send_vs_try_recv(0);
}

#[test]
fn hand_off_send_vs_try_recv_buffer_1() {
    send_vs_try_recv(1);
}

// ── 2. Blocked recv cancelled from another thread, racing a send ─────────

#[derive(Clone, Copy, PartialEq, Eq)]
enum Race {
    /// One other thread cancels, then sends.
    CancelThenSend,
    /// One other thread sends, then cancels.
    SendThenCancel,
    /// The cancel and the send each on a thread of their own.
    Concurrent,
}

/// Exactly one of: received, or cancelled with the item still in the stream.
/// When the cancel comes first, delivery to the cancelled receiver is
/// forbidden (C6), so it must be cancelled.
fn cancelled_recv_vs_send(race: Race) {
    cancelled_recv_vs_send_by(race, CancelScope::new(), CancelScope::cancel);
}

/// How a model cancels: `cancel()`, or moving a far deadline into the past.
fn pass_deadline(scope: &CancelScope) {
    scope.set_deadline(Some(Instant::now()));
}

fn far_deadline() -> CancelScope {
    CancelScope::with_deadline(Instant::now() + Duration::from_secs(3600))
}

fn cancelled_recv_vs_send_by(race: Race, scope: CancelScope, cancel: fn(&CancelScope)) {
    let ledger = Ledger::default();
    let (tx, rx) = memory_stream(1);
    let item = ledger.item(1);
    let send = move || assert!(tx.try_send(item).is_ok());
    let mut others = Vec::new();
    match race {
        Race::Concurrent => {
            let scope = scope.clone();
            others.push(thread::spawn(move || cancel(&scope)));
            others.push(thread::spawn(send));
        }
        Race::CancelThenSend | Race::SendThenCancel => {
            let scope = scope.clone();
            others.push(thread::spawn(move || {
                if race == Race::CancelThenSend {
                    cancel(&scope);
                    send();
                } else {
                    send();
                    cancel(&scope);
                }
            }));
        }
    }
    let got = block_on(scope.run(rx.recv()));
    for other in others {
        other.join().unwrap();
    }
    match got {
        Ok(item) => {
            assert!(
                race != Race::CancelThenSend,
                "delivered to a receiver cancelled before the send"
            );
            assert_eq!(item.id, 1);
            assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
        }
        Err(RecvError::Cancelled) => assert_eq!(rx.try_recv().map(|i| i.id), Ok(1)),
        Err(other) => panic!("unexpected {other:?}"),
    }
    assert_eq!(ledger.dropped(), 1);
}

#[test]
fn cancel_then_send_vs_blocked_recv() {
    model(|| cancelled_recv_vs_send(Race::CancelThenSend));
}

#[test]
fn send_then_cancel_vs_blocked_recv() {
    model(|| cancelled_recv_vs_send(Race::SendThenCancel));
}

/// Bound: 5 preemptions, about 50 s here (4: 6 s; exhaustive: over 5 min).
/// The two models above cover both orders of cancel and send exhaustively.
#[test]
fn cancel_concurrent_with_send_vs_blocked_recv() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(5);
    scopestream::__loom::check(&model, || cancelled_recv_vs_send(Race::Concurrent));
}

/// The same races with a deadline that passes (moved into the past) instead
/// of `cancel()`: the delivery-time check must see the passed deadline even
/// though no timer has fired (C6), and the move must wake the receiver.
#[test]
fn deadline_then_send_vs_blocked_recv() {
    model(|| cancelled_recv_vs_send_by(Race::CancelThenSend, far_deadline(), pass_deadline));
}

#[test]
fn send_then_deadline_vs_blocked_recv() {
    model(|| cancelled_recv_vs_send_by(Race::SendThenCancel, far_deadline(), pass_deadline));
}

/// C4 for deadlines: a parent's deadline moved into the past from another
/// thread, and nothing else, must wake a receive blocked in a child scope
/// (a lost wake-up hangs the model).
#[test]
fn passed_parent_deadline_wakes_blocked_recv_in_child() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let parent = far_deadline();
        let child = parent.child();
        let mover = {
            let parent = parent.clone();
            thread::spawn(move || pass_deadline(&parent))
        };
        assert_eq!(block_on(child.run(rx.recv())), Err(RecvError::Cancelled));
        mover.join().unwrap();
        assert!(parent.is_cancel_called() && !child.is_cancel_called());
        drop(tx);
    });
}

/// C4 alone: a cancel from another thread, and nothing else, must wake a
/// blocked receive and a blocked send (a lost wake-up hangs the model).
#[test]
fn cancel_wakes_blocked_recv() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let scope = CancelScope::new();
        let canceller = {
            let scope = scope.clone();
            thread::spawn(move || scope.cancel())
        };
        assert_eq!(block_on(scope.run(rx.recv())), Err(RecvError::Cancelled));
        canceller.join().unwrap();
        drop(tx);
    });
}

#[test]
fn cancel_wakes_blocked_send() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(0);
        let scope = CancelScope::new();
        let canceller = {
            let scope = scope.clone();
            thread::spawn(move || scope.cancel())
        };
        match block_on(scope.run(tx.send(ledger.item(1)))) {
            Err(SendError::Cancelled(item)) => assert_eq!(item.id, 1),
            other => panic!("unexpected {other:?}"),
        }
        canceller.join().unwrap();
        assert_eq!(ledger.dropped(), 1);
        drop(rx);
    });
}

/// A cancel of the *parent* reaches a receive blocked in a child scope.
#[test]
fn parent_cancel_wakes_blocked_recv_in_child() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let parent = CancelScope::new();
        let child = parent.child();
        let canceller = thread::spawn(move || parent.cancel());
        assert_eq!(block_on(child.run(rx.recv())), Err(RecvError::Cancelled));
        canceller.join().unwrap();
        drop(tx);
    });
}

/// Two first polls of one scope's `run` futures race to bind it: one in the
/// root, one inside `outer`. The scope is bound exactly once — a parent
/// seen once is its parent for good — and when `outer` won, a later cancel
/// of `outer` from another thread wakes a receive blocked in the scope (the
/// child link was made).
#[test]
fn first_polls_race_to_bind_a_scope() {
    model(|| {
        let scope = CancelScope::new();
        let outer = CancelScope::new();
        let (in_scope, in_outer) = (scope.clone(), outer.clone());
        let binder = thread::spawn(move || {
            block_on(in_outer.run(in_scope.run(async {})));
            in_scope.parent().map(|p| p.same_scope(&in_outer))
        });
        block_on(scope.run(async {}));
        let seen_here = scope.parent().map(|p| p.same_scope(&outer));
        let seen_there = binder.join().unwrap();
        let under_outer = scope
            .parent()
            .map(|p| p.same_scope(&outer))
            .expect("bound by both polls");
        for seen in [seen_here, seen_there].into_iter().flatten() {
            assert_eq!(seen, under_outer, "the parent changed after it was seen");
        }
        if under_outer {
            let (tx, rx) = memory_stream::<u32>(0);
            let canceller = thread::spawn(move || outer.cancel());
            assert_eq!(block_on(scope.run(rx.recv())), Err(RecvError::Cancelled));
            canceller.join().unwrap();
            drop(tx);
        } else {
            assert!(scope.parent().is_some_and(|p| p.is_root()));
        }
    });
}

// ── 3. AnyIO #771: a shielded receiver, its outer scope cancelled ────────

fn shielded_receiver_vs_send(cancel_first: bool) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(0);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        let other = {
            let (outer, item) = (outer.clone(), ledger.item(7));
            thread::spawn(move || {
                if cancel_first {
                    outer.cancel();
                }
                let sent = block_on(tx.send(item)).is_ok();
                if !cancel_first {
                    outer.cancel();
                }
                sent
            })
        };
        assert_eq!(
            block_on(outer.run(shield.run(rx.recv()))).map(|i| i.id),
            Ok(7)
        );
        assert!(other.join().unwrap(), "the sender always completes");
        assert_eq!(ledger.dropped(), 1);
    });
}

/// The same with the cancel on a third thread, concurrent with the send.
#[test]
fn shielded_receiver_outer_cancel_concurrent_with_send() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(0);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        let canceller = {
            let outer = outer.clone();
            thread::spawn(move || outer.cancel())
        };
        let item = ledger.item(7);
        let sender = thread::spawn(move || block_on(tx.send(item)).is_ok());
        assert_eq!(
            block_on(outer.run(shield.run(rx.recv()))).map(|i| i.id),
            Ok(7)
        );
        assert!(sender.join().unwrap());
        canceller.join().unwrap();
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn shielded_receiver_outer_cancel_then_send() {
    shielded_receiver_vs_send(true);
}

#[test]
fn shielded_receiver_send_then_outer_cancel() {
    shielded_receiver_vs_send(false);
}

// ── 4. set_shield(false) racing a send ───────────────────────────────────

fn unshield_vs_send(unshield_first: bool) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(1);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        outer.cancel();
        let other = {
            let (shield, item) = (shield.clone(), ledger.item(1));
            thread::spawn(move || {
                if unshield_first {
                    shield.set_shield(false);
                }
                assert!(tx.try_send(item).is_ok());
                if !unshield_first {
                    shield.set_shield(false);
                }
                tx
            })
        };
        let got = block_on(outer.run(shield.run(rx.recv()))).map(|i| i.id);
        let _tx = other.join().unwrap();
        match got {
            Ok(1) => {
                assert!(
                    !unshield_first,
                    "delivered to a receiver unshielded before the send"
                );
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            }
            Err(RecvError::Cancelled) => assert_eq!(rx.try_recv().map(|i| i.id), Ok(1)),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn unshield_then_send_vs_blocked_recv() {
    unshield_vs_send(true);
}

#[test]
fn send_then_unshield_vs_blocked_recv() {
    unshield_vs_send(false);
}

/// Lowering the shield alone must wake a receive blocked under a cancelled
/// outer scope.
#[test]
fn unshield_wakes_blocked_recv() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        outer.cancel();
        let unshielder = {
            let shield = shield.clone();
            thread::spawn(move || shield.set_shield(false))
        };
        assert_eq!(
            block_on(outer.run(shield.run(rx.recv()))),
            Err(RecvError::Cancelled)
        );
        unshielder.join().unwrap();
        drop(tx);
    });
}

/// An outer cancel racing a lowered shield: whichever comes second wakes the
/// receive (the shield is read under the node lock by both).
///
/// Bound: 5 preemptions, about 35 s here (4: 5 s; exhaustive: over 15 min).
#[test]
fn outer_cancel_vs_unshield_wakes_blocked_recv() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(5);
    scopestream::__loom::check(&model, || {
        let (tx, rx) = memory_stream::<u32>(0);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        let canceller = {
            let outer = outer.clone();
            thread::spawn(move || outer.cancel())
        };
        let unshielder = {
            let shield = shield.clone();
            thread::spawn(move || shield.set_shield(false))
        };
        assert_eq!(
            block_on(outer.run(shield.run(rx.recv()))),
            Err(RecvError::Cancelled)
        );
        canceller.join().unwrap();
        unshielder.join().unwrap();
        drop(tx);
    });
}

// ── 5. A recv future dropped while a sender commits to it ────────────────

fn dropped_recv_vs_commit(size: usize) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(size);
        let mut recv = rx.recv();
        assert!(poll_once(&mut recv).is_pending());
        let sender = {
            let item = ledger.item(1);
            thread::spawn(move || (tx.try_send(item).map_err(TrySendError::into_inner), tx))
        };
        drop(recv);
        let (sent, _tx) = sender.join().unwrap();
        match sent {
            // Committed to the dropped receive, or buffered: at the head now.
            Ok(()) => assert_eq!(rx.try_recv().map(|i| i.id), Ok(1)),
            // Rendezvous, and the receive was gone first: handed back.
            Err(item) => {
                assert_eq!(size, 0);
                assert_eq!(item.id, 1);
            }
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn dropped_recv_vs_commit_buffer_0() {
    dropped_recv_vs_commit(0);
}

#[test]
fn dropped_recv_vs_commit_buffer_1() {
    dropped_recv_vs_commit(1);
}

// ── 6. A cancelled, or dropped, send racing try_recv ─────────────────────

#[test]
fn cancelled_send_vs_try_recv() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(0);
        let scope = CancelScope::new();
        let send = scope.run(tx.send(ledger.item(1)));
        let mut send = std::pin::pin!(send);
        assert!(send
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        let receiver = thread::spawn(move || (rx.try_recv().map(|i| i.id), rx));
        scope.cancel();
        let sent = match send.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("a cancelled send must settle on its next poll"),
        };
        let (received, _rx) = receiver.join().unwrap();
        match (received, sent) {
            (Ok(1), Ok(())) => assert_eq!(ledger.dropped(), 1),
            (Err(TryRecvError::Empty), Err(SendError::Cancelled(item))) => {
                assert_eq!(item.id, 1);
                assert_eq!(ledger.dropped(), 0, "the item is returned, not dropped");
            }
            (received, sent) => panic!("received {received:?} and send {sent:?}"),
        }
    });
}

#[test]
fn dropped_send_vs_try_recv() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(0);
        let mut send = tx.send(ledger.item(1));
        assert!(poll_once(&mut send).is_pending());
        let receiver = thread::spawn(move || (rx.try_recv().map(|i| i.id), rx));
        drop(send);
        let (received, rx) = receiver.join().unwrap();
        match received {
            Ok(1) | Err(TryRecvError::Empty) => {}
            other => panic!("unexpected {other:?}"),
        }
        // Received and dropped by the receiver, or withdrawn and dropped with
        // the future: exactly once either way, and never still in the stream.
        assert_eq!(ledger.dropped(), 1);
        assert_eq!(rx.try_recv().map(|i| i.id), Err(TryRecvError::Empty));
    });
}

// ── 7. The last sender closed racing a blocked recv ──────────────────────

#[test]
fn last_sender_drop_vs_blocked_recv() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(1);
        let item = ledger.item(1);
        let sender = thread::spawn(move || {
            assert!(tx.try_send(item).is_ok());
            drop(tx);
        });
        assert_eq!(
            rx.recv_blocking().map(|i| i.id),
            Ok(1),
            "the buffer drains first"
        );
        assert_eq!(rx.recv_blocking(), Err(RecvError::EndOfStream));
        sender.join().unwrap();
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn last_sender_close_vs_blocked_async_recv() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let sender = thread::spawn(move || tx.close());
        assert_eq!(block_on(rx.recv()), Err(RecvError::EndOfStream));
        sender.join().unwrap();
    });
}

// ── 8. The last receiver closed racing a blocked send ────────────────────

#[test]
fn last_receiver_drop_vs_blocked_send() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(1);
        tx.try_send(ledger.item(1)).unwrap();
        let sender = {
            let item = ledger.item(2);
            thread::spawn(move || tx.send_blocking(item).map_err(SendError::into_inner))
        };
        assert_eq!(rx.try_recv().map(|i| i.id), Ok(1));
        drop(rx);
        match sender.join().unwrap() {
            // Moved into the buffer (or buffered) before the close, which
            // then dropped it: `Ok`, never `Broken`.
            Ok(()) => {}
            Err(item) => assert_eq!(item.id, 2),
        }
        assert_eq!(ledger.dropped(), 2, "each item dropped exactly once");
    });
}

// ── 9. Blocking operations racing a close of their own handle ────────────

#[test]
fn recv_blocking_vs_close() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let rx = Arc::new(rx);
        let receiver = {
            let rx = rx.clone();
            thread::spawn(move || rx.recv_blocking())
        };
        rx.close();
        assert_eq!(receiver.join().unwrap(), Err(RecvError::Closed));
        drop(tx);
    });
}

#[test]
fn send_blocking_vs_close() {
    model(|| {
        let ledger = Ledger::default();
        let (tx, rx) = memory_stream(0);
        let tx = Arc::new(tx);
        let sender = {
            let (tx, item) = (tx.clone(), ledger.item(3));
            thread::spawn(move || tx.send_blocking(item))
        };
        tx.close();
        match sender.join().unwrap() {
            Err(SendError::Closed(item)) => assert_eq!(item.id, 3),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(ledger.dropped(), 1);
        drop(rx);
    });
}

// ── 10. Two waiting receivers, the first cancelled, racing a send ────────

#[test]
fn first_of_two_receivers_cancelled_vs_send() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let first_scope = CancelScope::new();
        let mut first = std::pin::pin!(first_scope.run(rx.recv()));
        let mut second = rx.recv();
        let noop = || Context::from_waker(Waker::noop());
        assert!(first.as_mut().poll(&mut noop()).is_pending());
        assert!(poll_once(&mut second).is_pending());
        let other = {
            let scope = first_scope.clone();
            thread::spawn(move || {
                scope.cancel();
                assert_eq!(tx.try_send(1), Ok(()));
                tx
            })
        };
        // The first receiver runs concurrently with the cancel and the send.
        let first_early = first.as_mut().poll(&mut noop());
        let _tx = other.join().unwrap();
        let first_result = match first_early {
            Poll::Ready(result) => result,
            Poll::Pending => match first.as_mut().poll(&mut noop()) {
                Poll::Ready(result) => result,
                Poll::Pending => panic!("the cancelled receiver never settled"),
            },
        };
        assert_eq!(first_result, Err(RecvError::Cancelled));
        assert_eq!(poll_once(&mut second), Poll::Ready(Ok(1)));
    });
}

// ── 11. Statistics never count a waiter whose operation has returned ─────

#[derive(Clone, Copy)]
enum End {
    Cancel,
    Drop,
    Close,
}

fn statistics_vs_ending_waiter(end: End) {
    model(move || {
        let (tx, rx) = memory_stream::<u32>(0);
        let scope = CancelScope::new();
        let returned = Arc::new(AtomicBool::new(false));
        let reader = {
            let (returned, tx) = (returned.clone(), tx.clone());
            thread::spawn(move || {
                let done = returned.load(loom::sync::atomic::Ordering::Acquire);
                let waiting = tx.statistics().tasks_waiting_receive;
                assert!(waiting <= 1);
                if done {
                    assert_eq!(waiting, 0, "a returned waiter is still counted");
                }
            })
        };
        {
            let rx2 = rx.clone();
            let mut recv = std::pin::pin!(scope.run(rx2.recv()));
            let noop = || Context::from_waker(Waker::noop());
            assert!(recv.as_mut().poll(&mut noop()).is_pending());
            match end {
                End::Cancel => {
                    scope.cancel();
                    assert_eq!(
                        recv.as_mut().poll(&mut noop()),
                        Poll::Ready(Err(RecvError::Cancelled))
                    );
                }
                End::Close => {
                    rx2.close();
                    assert_eq!(
                        recv.as_mut().poll(&mut noop()),
                        Poll::Ready(Err(RecvError::Closed))
                    );
                }
                End::Drop => {}
            }
        }
        returned.store(true, loom::sync::atomic::Ordering::Release);
        reader.join().unwrap();
        assert_eq!(tx.statistics().tasks_waiting_receive, 0);
        drop(rx);
    });
}

#[test]
fn statistics_vs_cancelled_waiter() {
    statistics_vs_ending_waiter(End::Cancel);
}

#[test]
fn statistics_vs_dropped_waiter() {
    statistics_vs_ending_waiter(End::Drop);
}

#[test]
fn statistics_vs_closed_waiter() {
    statistics_vs_ending_waiter(End::Close);
}

// ── 12. A `Stream` receive: told of an item, or abandoned while one comes ─

/// A pending `next()` is told of an item sent from another thread: no
/// lost wake-up between its registration and the send (rendezvous: the
/// sender waits, and the stream's next poll takes its item).
fn pending_next_vs_send(size: usize) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, mut rx) = memory_stream(size);
        let item = ledger.item(1);
        let sender = thread::spawn(move || block_on(tx.send(item)).is_ok());
        assert_eq!(
            block_on(futures::StreamExt::next(&mut rx)).map(|i| i.id),
            Some(1)
        );
        assert!(sender.join().unwrap());
        assert_eq!(block_on(futures::StreamExt::next(&mut rx)), None);
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn stream_pending_next_vs_send_buffer_0() {
    pending_next_vs_send(0);
}

#[test]
fn stream_pending_next_vs_send_buffer_1() {
    pending_next_vs_send(1);
}

/// A `next()` is polled once and dropped while a send runs on another
/// thread: whichever comes first, nothing was committed to it, the item goes
/// to the handle's next `recv`, and nothing is left waiting or counted.
fn abandoned_next_vs_send(size: usize) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, mut rx) = memory_stream(size);
        let stats = tx.clone();
        let item = ledger.item(1);
        let sender = thread::spawn(move || block_on(tx.send(item)).is_ok());
        {
            let mut next = futures::StreamExt::next(&mut rx);
            if let Poll::Ready(got) = poll_once(&mut next) {
                // The sender came first (buffered, or waiting to rendezvous).
                assert_eq!(got.map(|i| i.id), Some(1));
                drop(next);
                assert!(sender.join().unwrap());
                assert_eq!(ledger.dropped(), 1);
                return;
            }
        }
        assert_eq!(stats.statistics().tasks_waiting_receive, 0);
        assert_eq!(block_on(rx.recv()).map(|i| i.id), Ok(1));
        assert!(sender.join().unwrap());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn stream_abandoned_next_vs_send_buffer_0() {
    abandoned_next_vs_send(0);
}

#[test]
fn stream_abandoned_next_vs_send_buffer_1() {
    abandoned_next_vs_send(1);
}

/// As above, and the abandoning handle is then dropped while the send is
/// under way: its clone receives the item exactly once.
fn abandoned_next_then_handle_dropped_vs_send(size: usize) {
    model(move || {
        let ledger = Ledger::default();
        let (tx, mut rx) = memory_stream(size);
        let other = rx.clone();
        let item = ledger.item(1);
        let sender = thread::spawn(move || block_on(tx.send(item)).is_ok());
        let got = poll_once(&mut futures::StreamExt::next(&mut rx));
        drop(rx);
        let got = match got {
            Poll::Ready(got) => got.map(|i| i.id),
            Poll::Pending => block_on(other.recv()).ok().map(|i| i.id),
        };
        assert_eq!(got, Some(1));
        assert!(sender.join().unwrap());
        assert_eq!(other.try_recv(), Err(TryRecvError::EndOfStream));
        assert_eq!(ledger.dropped(), 1);
    });
}

#[test]
fn stream_abandoned_next_then_handle_dropped_vs_send_buffer_0() {
    abandoned_next_then_handle_dropped_vs_send(0);
}

#[test]
fn stream_abandoned_next_then_handle_dropped_vs_send_buffer_1() {
    abandoned_next_then_handle_dropped_vs_send(1);
}

/// `broken()` blocked while the last two receivers close on two other
/// threads: it is woken once the second closes, whichever that is (a lost
/// wake-up hangs the model), and never before.
#[test]
fn broken_told_when_the_last_receiver_closes() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let rx2 = rx.clone();
        let first = thread::spawn(move || drop(rx));
        let second = thread::spawn(move || rx2.close());
        assert_eq!(block_on(tx.broken()), Ok(()));
        assert!(tx.is_broken());
        first.join().unwrap();
        second.join().unwrap();
    });
}

/// A weak sender upgraded while the last sender closes on another thread:
/// either the upgrade wins, and its item is received before the end of the
/// stream, or it finds the stream ended and gets nothing. Never an open
/// sender on an ended stream.
#[test]
fn weak_upgrade_vs_last_sender_close() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(1);
        let weak = tx.downgrade();
        let closer = thread::spawn(move || drop(tx));
        let upgraded = weak.upgrade().map(|strong| strong.try_send(7));
        closer.join().unwrap();
        match upgraded {
            Some(sent) => {
                assert_eq!(sent, Ok(()));
                assert_eq!(rx.try_recv(), Ok(7));
            }
            None => assert!(weak.upgrade().is_none()),
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    });
}

/// A parent's cancel after a lazy read of a child's passed deadline, which
/// cancels the child without waking anyone (it may run under a stream
/// lock): the receive blocked in the child is woken by the parent's walk,
/// which descends into every child that has not walked its own subtree.
/// The deadline passes by the model's hand on the crate's clock.
#[test]
fn parent_cancel_after_lazy_expiry_wakes_blocked_recv_in_child() {
    model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let parent = CancelScope::new();
        let child = parent.child();
        let hour = Duration::from_secs(3600);
        child.set_deadline(Some(scopestream::__loom::now() + hour));
        let expired = child.clone();
        let canceller = thread::spawn(move || {
            scopestream::__loom::advance_clock(2 * hour);
            assert!(expired.is_cancel_called());
            parent.cancel();
        });
        assert_eq!(block_on(child.run(rx.recv())), Err(RecvError::Cancelled));
        canceller.join().unwrap();
        drop(tx);
    });
}
