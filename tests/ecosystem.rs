//! What users of async-channel, tokio, flume and crossbeam reach for: the
//! sink, fused futures, the "every receiver is gone" query and future,
//! blocking timeouts and iterators, owned futures and weak handles — each
//! with its cancel-safety and "nothing lost" behaviour.
//!
//! Tests that block a thread have a watchdog (`wait_for`, bounded joins);
//! the others are driven by hand, so a hang fails a `ready()` instead.

#![cfg(not(feature = "loom"))]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{stream, wait_for, DropLedger, Task, SIZES};
use futures::future::FusedFuture;
use futures::{SinkExt, StreamExt};
use scopestream::{
    memory_stream, unbounded_memory_stream, CancelScope, Cancelled, RecvError, RecvTimeoutError,
    SendError, SendTimeoutError, TryRecvError, TrySendError,
};

// ---------------------------------------------------------------- Sink

#[test]
fn a_sink_forwards_every_item_and_its_close_ends_the_stream() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let (tx2, rx2) = stream::<u32>(size);
        let source = futures::stream::iter(0..50).map(Ok);
        let forward = source.forward(tx.into_sink());
        let copy = async {
            // Forwards rx into a second stream, which then ends.
            let mut rx = rx;
            let moved = rx.by_ref().map(Ok).forward(tx2.into_sink());
            moved.await
        };
        let collect = rx2.collect::<Vec<_>>();
        let (a, b, got) =
            futures::executor::block_on(async { futures::join!(forward, copy, collect) });
        assert_eq!((a, b), (Ok(()), Ok(())), "size {size:?}");
        assert_eq!(got, (0..50).collect::<Vec<_>>(), "size {size:?}");
    }
}

#[test]
fn a_sink_in_a_cancelled_scope_hands_the_item_back() {
    let (tx, rx) = memory_stream::<String>(0);
    let scope = CancelScope::new();
    scope.cancel();
    let mut sink = tx.into_sink();
    let out = futures::executor::block_on(scope.run(sink.send("kept".to_owned())));
    assert_eq!(out, Err(SendError::Cancelled("kept".to_owned())));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.statistics().tasks_waiting_send, 0);
}

#[test]
fn a_sink_cancelled_while_its_item_waits_hands_it_back_or_sent_it() {
    // The item is in flight (a rendezvous, nobody receiving) when the scope
    // is cancelled: it comes back from the flush, and the stream is as before.
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut sink = tx.into_sink();
    let mut send = Task::new(scope.run(async move {
        let out = sink.send(7).await;
        (out, sink)
    }));
    send.pending();
    assert_eq!(rx.statistics().tasks_waiting_send, 1);
    scope.cancel();
    let (out, sink) = send.ready();
    assert_eq!(out, Err(SendError::Cancelled(7)));
    assert_eq!(rx.statistics().tasks_waiting_send, 0);
    // The sink is usable again outside the cancelled scope.
    let mut sink = sink;
    let mut again = Task::new(async move { sink.send(8).await });
    again.pending();
    assert_eq!(rx.try_recv(), Ok(8));
    assert_eq!(again.ready(), Ok(()));
}

/// Polls `sink`'s flush once inside `scope`, with `waker`.
fn flush_in<T>(
    scope: &CancelScope,
    sink: &mut scopestream::SendSink<T>,
    waker: &std::task::Waker,
) -> std::task::Poll<Result<(), SendError<T>>> {
    use std::future::Future;
    let once = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(futures::Sink::poll_flush(
            std::pin::Pin::new(&mut *sink),
            cx,
        ))
    });
    let mut scoped = std::pin::pin!(scope.run(once));
    match scoped
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    {
        std::task::Poll::Ready(poll) => poll,
        std::task::Poll::Pending => unreachable!("polls once"),
    }
}

#[test]
fn a_sinks_item_in_flight_follows_the_scope_of_each_poll() {
    // Started in the root, flushed inside a cancelled scope: the item comes
    // back at once, as every poll of the sink is a checkpoint of the scope
    // current at that poll (it used to stay pending for ever).
    let (tx, rx) = memory_stream::<u32>(0);
    let mut sink = tx.clone().into_sink();
    let root = CancelScope::current();
    let waker = std::task::Waker::noop();
    sink.start_send_unpin(1).unwrap();
    assert!(flush_in(&root, &mut sink, waker).is_pending());
    let cancelled = CancelScope::new();
    cancelled.cancel();
    assert_eq!(
        flush_in(&cancelled, &mut sink, waker),
        std::task::Poll::Ready(Err(SendError::Cancelled(1)))
    );
    assert_eq!(rx.statistics().tasks_waiting_send, 0);

    // Started in the root, then polled inside a live scope: that scope's
    // cancel wakes it, and its next poll hands the item back.
    let counter = Arc::new(common::WakeCounter::default());
    let counting = std::task::Waker::from(Arc::clone(&counter));
    sink.start_send_unpin(2).unwrap();
    assert!(flush_in(&root, &mut sink, &counting).is_pending());
    let scope = CancelScope::new();
    assert!(flush_in(&scope, &mut sink, &counting).is_pending());
    scope.cancel();
    assert_eq!(
        counter.count(),
        1,
        "the current scope's cancel wakes the sink"
    );
    assert_eq!(
        flush_in(&scope, &mut sink, &counting),
        std::task::Poll::Ready(Err(SendError::Cancelled(2)))
    );

    // And the other way: started in a scope, flushed in the root after that
    // scope was cancelled, the send goes on in the root and is delivered.
    let scope = CancelScope::new();
    sink.start_send_unpin(3).unwrap();
    assert!(flush_in(&scope, &mut sink, &counting).is_pending());
    scope.cancel();
    assert!(flush_in(&root, &mut sink, &counting).is_pending());
    assert_eq!(
        rx.try_recv(),
        Ok(3),
        "deliverable: it waits in the root now"
    );
    assert_eq!(
        flush_in(&root, &mut sink, &counting),
        std::task::Poll::Ready(Ok(()))
    );
    drop(tx);
}

#[test]
fn a_dropped_sink_withdraws_its_item_in_flight() {
    let ledger = DropLedger::default();
    let (tx, rx) = memory_stream(0);
    let mut sink = tx.into_sink();
    let mut task = Task::new(async {
        sink.feed(ledger.item(1)).await.unwrap();
        sink.flush().await
    });
    task.pending();
    assert_eq!(rx.statistics().tasks_waiting_send, 1);
    task.drop_future();
    drop(sink);
    assert_eq!(ledger.dropped(), 1, "withdrawn, and dropped exactly once");
    assert_eq!(rx.statistics().tasks_waiting_send, 0);
    assert_eq!(rx.try_recv().map(|_| ()), Err(TryRecvError::EndOfStream));
}

#[test]
fn start_send_with_an_item_in_flight_is_refused_loudly() {
    let (tx, _rx) = memory_stream::<u32>(0);
    let mut sink = tx.into_sink();
    let mut pinned = std::pin::Pin::new(&mut sink);
    futures::sink::Sink::start_send(pinned.as_mut(), 1).unwrap();
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::sink::Sink::start_send(pinned.as_mut(), 2)
    }));
    assert!(second.is_err(), "a second item in flight must panic");
}

// ---------------------------------------------------------------- Fused

#[test]
fn send_futures_are_fused_and_recv_futures_restart() {
    let (tx, rx) = memory_stream::<u32>(1);
    let mut send = tx.send(1);
    assert!(!send.is_terminated());
    let send = Task::new(async move {
        let out = (&mut send).await;
        (out, send.is_terminated())
    });
    assert_eq!(send.ready(), (Ok(()), true));
    // A `Recv` polled again starts a new receive, so it is never terminated.
    let recv = rx.recv();
    assert!(!recv.is_terminated());
    let owned = tx.send_owned(2);
    assert!(!owned.is_terminated());
}

#[test]
fn futures_select_drives_recv_and_send_in_a_loop() {
    let (tx, rx) = memory_stream::<u32>(0);
    let (done_tx, done_rx) = memory_stream::<()>(0);
    let consumer = async {
        let mut got = Vec::new();
        let mut recv = rx.recv();
        let mut done = done_rx.recv();
        loop {
            futures::select! {
                item = recv => got.push(item.unwrap()),
                _ = done => break got,
            }
        }
    };
    let producer = async {
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        done_tx.send(()).await.unwrap();
    };
    let (got, ()) = futures::executor::block_on(async { futures::join!(consumer, producer) });
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

// ------------------------------------------------- every receiver gone

#[test]
fn broken_completes_when_the_last_receiver_closes_and_not_before() {
    let (tx, rx) = memory_stream::<u32>(0);
    let rx2 = rx.clone();
    let mut broken = Task::new(tx.broken());
    broken.pending();
    assert!(!tx.is_broken());
    drop(rx);
    broken.pending();
    assert_eq!(broken.wakes(), 0, "one receiver is still open");
    rx2.close(); // a close, not a drop
    assert!(broken.wakes() >= 1);
    assert!(tx.is_broken());
    assert_eq!(broken.ready(), Ok(()));
    // Final: a new `broken()` completes at once.
    assert_eq!(Task::new(tx.broken()).ready(), Ok(()));
}

#[test]
fn broken_is_a_checkpoint_and_a_dropped_one_leaves_nothing() {
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut waiting = Task::new(scope.run(tx.broken()));
    waiting.pending();
    scope.cancel();
    assert!(waiting.wakes() >= 1, "the cancel wakes it");
    assert_eq!(waiting.ready(), Err(Cancelled));
    // Many abandoned ones: the stream stays usable and the last receiver's
    // close still wakes a live one.
    for _ in 0..100 {
        let mut gone = Task::new(tx.broken());
        gone.pending();
        gone.drop_future();
    }
    let mut live = Task::new(tx.broken());
    live.pending();
    drop(rx);
    assert_eq!(live.ready(), Ok(()));
    // Broken wins over a cancelled scope: there is nothing left to wait for.
    assert_eq!(Task::new(scope.run(tx.broken())).ready(), Ok(()));
}

#[test]
fn broken_is_told_from_another_thread() {
    let (tx, rx) = memory_stream::<u32>(0);
    let mut broken = Task::new(tx.broken());
    // Waiting before the last receiver goes, so the wake-up is what is seen.
    broken.pending();
    thread::spawn(move || drop(rx)).join().unwrap();
    assert_eq!(broken.wakes(), 1, "told by the drop on the other thread");
    assert_eq!(broken.ready(), Ok(()));
}

// ------------------------------------------------- blocking timeouts

#[test]
fn a_timed_out_receive_changes_nothing() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        let stats = rx.statistics();
        assert_eq!(
            (stats.tasks_waiting_receive, stats.current_buffer_used),
            (0, 0)
        );
        // The next item goes to the next receive, not to the timed-out one.
        if size != Some(0) {
            tx.try_send(1).unwrap();
            assert_eq!(rx.try_recv(), Ok(1));
        }
        drop(tx);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::EndOfStream)
        );
        rx.close();
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Closed)
        );
    }
}

#[test]
fn a_timed_out_send_hands_its_item_back_and_changes_nothing() {
    let ledger = DropLedger::default();
    let (tx, rx) = memory_stream(0);
    let out = tx.send_timeout(ledger.item(1), Duration::from_millis(20));
    let Err(SendTimeoutError::Timeout(item)) = out else {
        panic!("expected a timeout, got {out:?}");
    };
    assert_eq!(ledger.dropped(), 0, "the item came back, not dropped");
    drop(item);
    assert_eq!(rx.statistics().tasks_waiting_send, 0);
    assert_eq!(rx.try_recv().map(|_| ()), Err(TryRecvError::Empty));
    drop(rx);
    let out = tx.send_deadline(ledger.item(2), Instant::now() + Duration::from_secs(5));
    assert!(matches!(out, Err(SendTimeoutError::Broken(_))));
    tx.close();
    let out = tx.send_timeout(ledger.item(3), Duration::ZERO);
    assert!(matches!(out, Err(SendTimeoutError::Closed(_))));
}

#[test]
fn a_zero_timeout_tries_once_and_meets_a_waiting_peer() {
    // A receive blocked on a rendezvous: a zero-timeout send hands over.
    let (tx, rx) = memory_stream::<u32>(0);
    thread::scope(|s| {
        let receiver = s.spawn(|| rx.recv_timeout(Duration::from_secs(20)));
        wait_for(|| tx.statistics().tasks_waiting_receive == 1);
        assert_eq!(tx.send_timeout(5, Duration::ZERO), Ok(()));
        assert_eq!(receiver.join().unwrap(), Ok(5));
    });
    // A send blocked on a rendezvous: a zero-timeout receive takes its item.
    thread::scope(|s| {
        let sender = s.spawn(|| tx.send_timeout(6, Duration::from_secs(20)));
        wait_for(|| rx.statistics().tasks_waiting_send == 1);
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(6));
        assert_eq!(sender.join().unwrap(), Ok(()));
    });
    // Nobody there: both give up at once.
    let start = Instant::now();
    assert_eq!(
        tx.send_deadline(7, start - Duration::from_millis(1)),
        Err(SendTimeoutError::Timeout(7))
    );
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_timeout_too_large_for_the_clock_waits_for_the_item() {
    let (tx, rx) = memory_stream::<u32>(0);
    let sender = thread::spawn(move || {
        // Only once the receive waits, so that it is the wait that is tested.
        wait_for(|| tx.statistics().tasks_waiting_receive == 1);
        tx.send_timeout(9, Duration::MAX)
    });
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(9));
    assert_eq!(sender.join().unwrap(), Ok(()));
}

#[test]
fn timeouts_racing_peers_lose_and_duplicate_nothing() {
    // Short timeouts on both sides, retried until each item is through: every
    // item arrives exactly once, in order for one producer and one consumer.
    const ITEMS: u32 = 300;
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        let timeouts = Arc::new(AtomicUsize::new(0));
        let producer = {
            let timeouts = Arc::clone(&timeouts);
            thread::spawn(move || {
                for i in 0..ITEMS {
                    let mut item = i;
                    loop {
                        match tx.send_timeout(item, Duration::from_micros(50)) {
                            Ok(()) => break,
                            Err(SendTimeoutError::Timeout(back)) => {
                                assert_eq!(back, i);
                                item = back;
                                timeouts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => panic!("unexpected {err:?}"),
                        }
                    }
                }
            })
        };
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_micros(50)) {
                Ok(item) => got.push(item),
                Err(RecvTimeoutError::Timeout) => {
                    timeouts.fetch_add(1, Ordering::Relaxed);
                }
                Err(RecvTimeoutError::EndOfStream) => break,
                Err(err) => panic!("unexpected {err:?}"),
            }
            assert!(Instant::now() < deadline, "watchdog: stuck at {got:?}");
        }
        producer.join().unwrap();
        assert_eq!(got, (0..ITEMS).collect::<Vec<_>>(), "size {size:?}");
        assert_eq!(rx.statistics().tasks_waiting_send, 0);
    }
}

// ------------------------------------------------- blocking iterators

#[test]
fn iterators_block_take_what_is_there_and_end_with_the_stream() {
    let (tx, rx) = unbounded_memory_stream();
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(rx.try_iter().next(), None, "empty now, senders open");
    thread::scope(|s| {
        s.spawn(|| {
            for i in 3..6 {
                tx.send_blocking(i).unwrap();
            }
            tx.close();
        });
        let mut seen = Vec::new();
        for item in &rx {
            seen.push(item);
        }
        assert_eq!(seen, [3, 4, 5]);
    });
    let mut iter = rx.iter();
    assert_eq!((iter.next(), iter.next()), (None, None), "fused");
}

#[test]
fn an_iterator_ends_when_its_handle_is_closed_from_another_thread() {
    let (_tx, rx) = memory_stream::<u32>(0);
    thread::scope(|s| {
        let iterating = s.spawn(|| rx.iter().count());
        wait_for(|| rx.statistics().tasks_waiting_receive == 1);
        rx.close();
        assert_eq!(iterating.join().unwrap(), 0);
    });
}

#[test]
fn an_owned_iterator_drains_and_ends() {
    let (tx, rx) = memory_stream(4);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    drop(tx);
    let all: BTreeSet<_> = rx.into_iter().collect();
    assert_eq!(all, BTreeSet::from([1, 2]));
}

// ------------------------------------------------- owned futures

#[test]
fn owned_futures_can_be_spawned() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, rx) = memory_stream::<String>(0);
        let receiving = tokio::spawn(rx.recv_owned());
        let sending = tokio::spawn(tx.send_owned("moved".to_owned()));
        drop((tx, rx));
        let got = tokio::time::timeout(Duration::from_secs(20), receiving)
            .await
            .expect("watchdog")
            .unwrap();
        assert_eq!(got.as_deref(), Ok("moved"));
        assert_eq!(sending.await.unwrap(), Ok(()));
    });
}

#[test]
fn owned_futures_keep_the_guarantees_of_the_borrowed_ones() {
    // A cancelled owned send hands its item back.
    let (tx, rx) = memory_stream::<u32>(0);
    let scope = CancelScope::new();
    let mut send = Task::new(scope.run(tx.send_owned(3)));
    send.pending();
    scope.cancel();
    assert_eq!(send.ready(), Err(SendError::Cancelled(3)));
    // An owned receive dropped after an item was committed to it puts the
    // item back at the head.
    let mut recv = Task::new(rx.recv_owned());
    recv.pending();
    assert_eq!(tx.try_send(4), Ok(()), "committed to the owned receive");
    recv.drop_future();
    assert_eq!(rx.try_recv(), Ok(4));
    // A clone of a closed handle is closed.
    tx.close();
    assert_eq!(
        Task::new(tx.send_owned(5)).ready(),
        Err(SendError::Closed(5))
    );
    rx.close();
    assert_eq!(Task::new(rx.recv_owned()).ready(), Err(RecvError::Closed));
}

#[test]
fn an_owned_send_keeps_the_stream_open_while_it_lives() {
    let (tx, rx) = memory_stream::<u32>(0);
    let mut send = Task::new(tx.send_owned(1));
    drop(tx);
    send.pending();
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(send.ready(), Ok(()));
    assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
}

// ------------------------------------------------- weak handles

#[test]
fn weak_senders_do_not_keep_the_stream_open() {
    let (tx, rx) = memory_stream::<u32>(1);
    let weak = tx.downgrade();
    let strong = weak.upgrade().expect("a sender is open");
    strong.try_send(1).unwrap();
    drop((tx, strong));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    assert!(weak.upgrade().is_none(), "the end of the stream is final");
    assert!(weak.clone().upgrade().is_none());
}

#[test]
fn weak_receivers_do_not_keep_the_stream_open() {
    let ledger = DropLedger::default();
    let (tx, rx) = memory_stream(2);
    let weak = rx.downgrade();
    tx.try_send(ledger.item(1)).unwrap();
    let strong = weak.upgrade().expect("a receiver is open");
    drop(rx);
    assert!(!tx.is_broken());
    drop(strong);
    assert!(tx.is_broken());
    assert_eq!(
        ledger.dropped(),
        1,
        "the buffered item went with the last receiver"
    );
    assert!(matches!(
        tx.try_send(ledger.item(2)),
        Err(TrySendError::Broken(_))
    ));
    assert!(weak.upgrade().is_none(), "a broken stream stays broken");
}

#[test]
fn a_weak_sender_upgraded_while_a_receive_waits_delivers_to_it() {
    let (tx, rx) = memory_stream::<u32>(0);
    let weak = tx.downgrade();
    let mut recv = Task::new(rx.recv());
    recv.pending();
    let strong = weak.upgrade().unwrap();
    drop(tx);
    recv.pending();
    assert_eq!(strong.try_send(2), Ok(()));
    assert_eq!(recv.ready(), Ok(2));
    drop(strong);
    assert_eq!(Task::new(rx.recv()).ready(), Err(RecvError::EndOfStream));
}

#[test]
fn iterators_are_debug_for_any_item_and_checkpoint_is_unpin() {
    struct NotDebug;
    let (_tx, rx) = memory_stream::<NotDebug>(1);
    assert!(format!("{:?}", rx.iter()).starts_with("Iter"));
    assert!(format!("{:?}", rx.try_iter()).starts_with("TryIter"));
    assert!(format!("{:?}", rx.into_iter()).starts_with("IntoIter"));
    // A checkpoint can be polled in place, without pinning it first.
    fn unpin<F: Unpin + std::future::Future>(_: &F) {}
    let mut point = scopestream::checkpoint();
    unpin(&point);
    assert!(common::poll_once(&mut point).is_pending(), "it yields once");
    assert_eq!(
        common::poll_once(&mut point),
        std::task::Poll::Ready(Ok(()))
    );
}

#[test]
fn handle_counts_and_the_senders_gone_seen_from_a_receiver() {
    let (tx, rx) = memory_stream::<u32>(1);
    let weak = tx.downgrade();
    let owned = tx.send_owned(1);
    assert_eq!(
        (tx.sender_count(), tx.receiver_count()),
        (2, 1),
        "the owned send holds one"
    );
    let rx2 = rx.clone();
    assert_eq!(rx2.receiver_count(), 2);
    rx2.close();
    assert_eq!(rx.receiver_count(), 1, "a closed clone is not counted");
    assert_eq!(futures::executor::block_on(owned), Ok(()));
    assert_eq!(rx.sender_count(), 1);
    assert!(!rx.is_disconnected());
    drop(tx);
    assert!(weak.upgrade().is_none());
    assert!(rx.is_disconnected(), "every sender is gone");
    assert_eq!(rx.sender_count(), 0);
    assert_eq!(rx.try_recv(), Ok(1), "what was sent is still there");
    assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
}
