//! Stream behaviour, covering what AnyIO's memory-object-stream tests and
//! Trio's memory-channel tests check, in this crate's own terms.

#![cfg(not(feature = "loom"))]

mod common;

use common::{stream, Task, SIZES};
use futures::executor::block_on;
use futures::StreamExt;
use scopestream::{
    memory_stream, unbounded_memory_stream, CancelScope, MemoryReceiver, MemorySender, RecvError,
    RecvFuture, SendError, SendFuture, Statistics, TryRecvError, TrySendError,
};

#[test]
fn receive_then_send_rendezvous() {
    let (tx, rx) = memory_stream::<&str>(0);
    let mut recv = Task::new(async {
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        vec![first, second]
    });
    recv.pending();
    assert_eq!(Task::new(tx.send("hello")).ready(), Ok(()));
    let mut second = Task::new(tx.send("scopestream"));
    second.pending();
    assert_eq!(recv.ready(), vec!["hello", "scopestream"]);
    assert_eq!(second.ready(), Ok(()));
}

#[test]
fn send_then_receive_rendezvous() {
    let (tx, rx) = memory_stream::<&str>(0);
    let mut send = Task::new(tx.send("hello"));
    send.pending();
    assert_eq!(
        tx.statistics().current_buffer_used,
        0,
        "a rendezvous buffers nothing"
    );
    assert_eq!(Task::new(rx.recv()).ready(), Ok("hello"));
    assert!(send.wakes() > 0);
    assert_eq!(send.ready(), Ok(()));
}

#[test]
fn two_receivers_then_try_send() {
    let (tx, rx) = memory_stream::<&str>(0);
    let mut a = Task::new(rx.recv());
    let mut b = Task::new(rx.recv());
    a.pending();
    b.pending();
    tx.try_send("hello").unwrap();
    tx.try_send("world").unwrap();
    assert_eq!((a.ready(), b.ready()), (Ok("hello"), Ok("world")));
}

#[test]
fn send_then_try_recv_rendezvous() {
    let (tx, rx) = memory_stream::<&str>(0);
    assert_eq!(tx.try_send("x"), Err(TrySendError::Full("x")));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let mut send = Task::new(tx.send("hello"));
    send.pending();
    assert_eq!(rx.try_recv(), Ok("hello"));
    assert_eq!(send.ready(), Ok(()));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn try_recv_pulls_blocked_senders_item_into_buffer() {
    let (tx, rx) = memory_stream::<&str>(1);
    tx.try_send("hello").unwrap();
    let mut send = Task::new(tx.send("world"));
    send.pending();
    assert_eq!(rx.try_recv(), Ok("hello"));
    assert_eq!(
        tx.statistics().current_buffer_used,
        1,
        "the sender's item moved into the buffer"
    );
    assert_eq!(send.ready(), Ok(()));
    assert_eq!(rx.try_recv(), Ok("world"));
}

#[test]
fn fifo_through_a_buffer() {
    for size in [Some(1), Some(3), Some(64), None] {
        let (tx, rx) = stream::<u32>(size);
        let sent: Vec<u32> = (0..200).collect();
        let received = block_on(async {
            let producing = async {
                for &i in &sent {
                    tx.send(i).await.unwrap();
                }
                tx.close();
            };
            let consuming = async { rx.clone().collect::<Vec<_>>().await };
            futures::join!(producing, consuming).1
        });
        assert_eq!(received, sent);
    }
}

#[test]
fn iteration_ends_at_end_of_stream() {
    let (tx, rx) = unbounded_memory_stream::<&str>();
    let mut rx = rx;
    let received = block_on(async {
        let producing = async {
            tx.send("hello").await.unwrap();
            tx.send("world").await.unwrap();
            drop(tx);
        };
        let consuming = async { (&mut rx).collect::<Vec<_>>().await };
        futures::join!(producing, consuming).1
    });
    assert_eq!(received, ["hello", "world"]);
    assert_eq!(block_on(rx.next()), None, "stays ended");
}

#[test]
fn iteration_ends_on_close_and_on_cancel() {
    let (tx, mut rx) = memory_stream::<u32>(4);
    tx.try_send(1).unwrap();
    let scope = CancelScope::new();
    let s = scope.clone();
    let got = block_on(scope.run(async {
        let first = rx.next().await;
        s.cancel();
        let second = rx.next().await;
        (first, second)
    }));
    assert_eq!(got, (Some(1), None), "a cancelled scope ends iteration");
    tx.try_send(2).unwrap();
    assert_eq!(block_on(rx.next()), Some(2), "outside the scope it goes on");

    // Waiting for the next item, the iteration ends when the last sender goes.
    let other = rx.clone();
    let mut next = Task::new(async move { (rx.next().await, rx) });
    next.pending();
    drop(other); // another receiver clone closing changes nothing
    next.pending();
    drop(tx);
    assert!(next.wakes() > 0);
    let (item, mut rx) = next.ready();
    assert_eq!(item, None);
    // A closed handle ends the iteration at once.
    let (tx, rx2) = memory_stream::<u32>(1);
    tx.try_send(1).unwrap();
    let mut rx2 = rx2;
    rx2.close();
    assert_eq!(block_on(rx2.next()), None);
    assert_eq!(block_on(rx.next()), None);
}

#[test]
fn send_and_receive_on_a_closed_send_stream() {
    let (tx, rx) = unbounded_memory_stream::<()>();
    tx.close();
    assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    assert_eq!(block_on(tx.send(())), Err(SendError::Closed(())));
    assert_eq!(tx.try_send(()), Err(TrySendError::Closed(())));
}

#[test]
fn send_and_receive_on_a_closed_receive_stream() {
    let (tx, rx) = unbounded_memory_stream::<()>();
    rx.close();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
    assert_eq!(block_on(tx.send(())), Err(SendError::Broken(())));
}

#[test]
fn cancelled_receive_leaves_nothing_behind() {
    let (tx, rx) = memory_stream::<&str>(0);
    let group = CancelScope::new();
    let mut recv = Task::new(group.run(rx.recv()));
    recv.pending();
    group.cancel();
    assert_eq!(recv.ready(), Err(RecvError::Cancelled));
    assert_eq!(tx.try_send("hello"), Err(TrySendError::Full("hello")));
}

#[test]
fn cancelled_send_leaves_nothing_behind() {
    let (tx, rx) = memory_stream::<&str>(0);
    let group = CancelScope::new();
    let mut send = Task::new(group.run(tx.send("hello")));
    send.pending();
    group.cancel();
    assert_eq!(send.ready(), Err(SendError::Cancelled("hello")));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn receive_in_cancelled_scope_keeps_senders_order() {
    let (tx, rx) = memory_stream::<&str>(0);
    let mut hello = Task::new(tx.send("hello"));
    let mut world = Task::new(tx.send("world"));
    hello.pending();
    world.pending();
    let scope = CancelScope::new();
    scope.cancel();
    assert_eq!(block_on(scope.run(rx.recv())), Err(RecvError::Cancelled));
    assert_eq!(block_on(rx.recv()), Ok("hello"));
    assert_eq!(block_on(rx.recv()), Ok("world"));
    assert_eq!((hello.ready(), world.ready()), (Ok(()), Ok(())));
}

#[test]
fn send_in_cancelled_scope_does_not_reach_waiting_receiver() {
    let (tx, rx) = memory_stream::<&str>(0);
    let mut recv = Task::new(rx.recv());
    recv.pending();
    let scope = CancelScope::new();
    scope.cancel();
    assert_eq!(
        block_on(scope.run(tx.send("hello"))),
        Err(SendError::Cancelled("hello"))
    );
    assert_eq!(block_on(tx.send("world")), Ok(()));
    assert_eq!(recv.ready(), Ok("world"));
}

#[test]
fn clones_close_independently() {
    let (tx1, rx1) = memory_stream::<&str>(1);
    let tx2 = tx1.clone();
    let rx2 = rx1.clone();
    tx1.close();
    rx1.close();
    tx2.try_send("hello").unwrap();
    assert_eq!(rx2.try_recv(), Ok("hello"));
    let tx3 = tx1.clone();
    let rx3 = rx1.clone();
    assert!(
        tx3.is_closed() && rx3.is_closed(),
        "clones of closed handles are closed"
    );
    assert_eq!(tx3.try_send("x"), Err(TrySendError::Closed("x")));
    assert_eq!(rx3.try_recv(), Err(TryRecvError::Closed));
    let stats = tx2.statistics();
    assert_eq!(
        (stats.open_send_streams, stats.open_receive_streams),
        (1, 1)
    );
}

#[test]
fn receive_handles_clone_and_close() {
    let (tx, rx) = memory_stream::<()>(10);
    let rx2 = rx.clone();
    let rx3 = rx.clone();
    tx.try_send(()).unwrap();
    rx.close();
    drop(rx2);
    tx.try_send(()).unwrap(); // rx3 is still open
    rx3.close();
    assert_eq!(tx.try_send(()), Err(TrySendError::Broken(())));
    assert_eq!(tx.statistics().current_buffer_used, 0);
}

#[test]
fn close_while_blocked_on_both_sides() {
    for size in SIZES {
        // Receiver blocked, its own handle closed.
        let (_tx, rx) = stream::<()>(size);
        let mut recv = Task::new(rx.recv());
        recv.pending();
        rx.close();
        assert_eq!(recv.ready(), Err(RecvError::Closed));

        // Receiver blocked, last sender closed.
        let (tx, rx) = stream::<()>(size);
        let mut recv = Task::new(rx.recv());
        recv.pending();
        tx.close();
        assert_eq!(recv.ready(), Err(RecvError::EndOfStream));
    }
    for size in [0, 1] {
        // Sender blocked, its own handle closed.
        let (tx, _rx) = memory_stream::<u8>(size);
        if size == 1 {
            tx.try_send(0).unwrap();
        }
        let mut send = Task::new(tx.send(1));
        send.pending();
        tx.close();
        assert_eq!(send.ready(), Err(SendError::Closed(1)));

        // Sender blocked, last receiver closed.
        let (tx, rx) = memory_stream::<u8>(size);
        if size == 1 {
            tx.try_send(0).unwrap();
        }
        let mut send = Task::new(tx.send(1));
        send.pending();
        rx.close();
        assert_eq!(send.ready(), Err(SendError::Broken(1)));
        assert_eq!(
            tx.try_send(2),
            Err(TrySendError::Broken(2)),
            "and it's persistent"
        );
    }
}

#[test]
fn receive_after_send_closed() {
    let (tx, rx) = memory_stream::<&str>(1);
    block_on(tx.send("hello")).unwrap();
    tx.close();
    assert_eq!(block_on(rx.recv()), Ok("hello"));
    assert_eq!(block_on(rx.recv()), Err(RecvError::EndOfStream));
}

#[test]
fn committed_item_survives_cancel_of_receiver() {
    // A receive is waiting, an item is sent to it, then its scope is cancelled.
    let (tx, rx) = memory_stream::<&str>(0);
    let scope = CancelScope::new();
    let mut recv = Task::new(scope.run(rx.recv()));
    recv.pending();
    tx.try_send("hello").unwrap();
    scope.cancel();
    assert_eq!(recv.ready(), Ok("hello"));
    assert!(scope.is_cancel_called());
}

fn stats(
    used: usize,
    max: Option<usize>,
    senders: usize,
    receivers: usize,
    waiting_send: usize,
    waiting_recv: usize,
) -> Statistics {
    Statistics {
        current_buffer_used: used,
        max_buffer_size: max,
        open_send_streams: senders,
        open_receive_streams: receivers,
        tasks_waiting_send: waiting_send,
        tasks_waiting_receive: waiting_recv,
    }
}

#[test]
fn statistics_through_every_state() {
    let (tx, rx) = memory_stream::<()>(1);
    assert_eq!(tx.statistics(), stats(0, Some(1), 1, 1, 0, 0));
    assert_eq!(tx.statistics(), rx.statistics());

    // Buffered, then a blocked send.
    tx.try_send(()).unwrap();
    assert_eq!(rx.statistics(), stats(1, Some(1), 1, 1, 0, 0));
    let mut send = Task::new(tx.send(()));
    send.pending();
    assert_eq!(rx.statistics(), stats(1, Some(1), 1, 1, 1, 0));
    rx.try_recv().unwrap();
    assert_eq!(rx.statistics(), stats(1, Some(1), 1, 1, 0, 0));
    assert_eq!(send.ready(), Ok(()));
    rx.try_recv().unwrap();
    assert_eq!(rx.statistics(), stats(0, Some(1), 1, 1, 0, 0));

    // A blocked receive.
    let mut recv = Task::new(rx.recv());
    recv.pending();
    assert_eq!(tx.statistics(), stats(0, Some(1), 1, 1, 0, 1));
    tx.try_send(()).unwrap();
    assert_eq!(tx.statistics(), stats(0, Some(1), 1, 1, 0, 0));
    assert_eq!(recv.ready(), Ok(()));

    // Three blocked sends, served one by one.
    tx.try_send(()).unwrap();
    let mut sends: Vec<_> = (0..3).map(|_| Task::new(tx.send(()))).collect();
    for send in &mut sends {
        send.pending();
    }
    for waiting in (0..3).rev() {
        rx.try_recv().unwrap();
        assert_eq!(tx.statistics().tasks_waiting_send, waiting);
    }
    rx.try_recv().unwrap();
    assert_eq!(tx.statistics(), stats(0, Some(1), 1, 1, 0, 0));
    drop(sends);

    // Clones count, closes uncount.
    let tx2 = tx.clone();
    let rx2 = rx.clone();
    assert_eq!(tx.statistics(), stats(0, Some(1), 2, 2, 0, 0));
    tx.close();
    rx2.close();
    assert_eq!(tx2.statistics(), stats(0, Some(1), 1, 1, 0, 0));
}

#[test]
fn statistics_back_to_zero_after_cancellation() {
    let (tx, rx) = memory_stream::<()>(2);
    tx.try_send(()).unwrap();
    tx.try_send(()).unwrap();
    let group = CancelScope::new();
    let mut sends: Vec<_> = (0..2).map(|_| Task::new(group.run(tx.send(())))).collect();
    for send in &mut sends {
        send.pending();
    }
    assert_eq!(tx.statistics().tasks_waiting_send, 2);
    group.cancel();
    assert_eq!(
        tx.statistics().tasks_waiting_send,
        0,
        "not counted once cancelled"
    );
    for send in sends {
        assert_eq!(send.ready(), Err(SendError::Cancelled(())));
    }
    while rx.try_recv().is_ok() {}

    let group = CancelScope::new();
    let mut recv = Task::new(group.run(rx.recv()));
    recv.pending();
    assert_eq!(tx.statistics().tasks_waiting_receive, 1);
    group.cancel();
    assert_eq!(tx.statistics().tasks_waiting_receive, 0);
    drop(recv); // dropped without being polled again: still nothing counted
    assert_eq!(tx.statistics(), stats(0, Some(2), 1, 1, 0, 0));

    // Dropped futures are not counted either.
    let recv = Task::new(rx.recv());
    let mut recv = recv;
    recv.pending();
    recv.drop_future();
    assert_eq!(tx.statistics().tasks_waiting_receive, 0);
}

#[test]
fn multiple_producers() {
    let (tx, rx) = memory_stream::<u32>(0);
    let got = block_on(async {
        let producers = futures::future::join_all((0..10).map(|i| {
            let tx = tx.clone();
            async move {
                for j in 3 * i..3 * (i + 1) {
                    tx.send(j).await.unwrap();
                }
            }
        }));
        drop(tx);
        let consumer = rx.collect::<Vec<_>>();
        futures::join!(producers, consumer).1
    });
    let mut got = got;
    got.sort_unstable();
    assert_eq!(got, (0..30).collect::<Vec<_>>());
}

#[test]
fn multiple_consumers() {
    let (tx, rx) = memory_stream::<u32>(1);
    let results = block_on(async {
        let consumers = futures::future::join_all((0..5).map(|_| rx.clone().collect::<Vec<_>>()));
        let producer = async {
            for i in 0..10 {
                tx.send(i).await.unwrap();
            }
            drop(tx);
        };
        futures::join!(consumers, producer).0
    });
    let mut all: Vec<u32> = results.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
}

#[test]
fn unbounded_never_blocks() {
    let (tx, rx) = unbounded_memory_stream::<u32>();
    for i in 0..10_000 {
        tx.try_send(i).unwrap();
        assert_eq!(Task::new(tx.send(i)).ready(), Ok(()));
    }
    drop(tx);
    assert_eq!(block_on(rx.count()), 20_000);
}

#[test]
fn dropped_send_future_withdraws_its_item() {
    let (tx, rx) = memory_stream::<u32>(0);
    let mut send = Task::new(tx.send(1));
    send.pending();
    send.drop_future();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.statistics().tasks_waiting_send, 0);
    // A send future never polled withdraws nothing from the stream either.
    drop(tx.send(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn errors_display_and_debug_without_item_debug() {
    struct Opaque;
    let err = SendError::Broken(Opaque);
    assert_eq!(format!("{err:?}"), "Broken(..)");
    assert_eq!(
        err.to_string(),
        "sending on a stream whose receivers are all closed"
    );
    let err = TrySendError::Full(Opaque);
    assert!(err.is_full());
    assert_eq!(format!("{err:?}"), "Full(..)");
    let _: Box<dyn std::error::Error> = Box::new(TrySendError::Closed(Opaque));
    let _: Box<dyn std::error::Error> = Box::new(SendError::Cancelled(Opaque));
    assert_eq!(
        RecvError::EndOfStream.to_string(),
        "end of stream: every sender is closed"
    );
    assert_eq!(
        TryRecvError::Empty.to_string(),
        "receiving on an empty stream"
    );
    assert_eq!(SendError::Closed(3).into_inner(), 3);
    assert_eq!(TrySendError::Broken(4).into_inner(), 4);
    let (tx, rx) = memory_stream::<Opaque>(0);
    assert_eq!(format!("{tx:?}"), "MemorySender { closed: false, .. }");
    rx.close();
    assert_eq!(format!("{rx:?}"), "MemoryReceiver { closed: true, .. }");
    assert!(format!("{:?}", rx.recv()).starts_with("RecvFuture"));
    assert!(format!("{:?}", tx.send(Opaque)).starts_with("SendFuture"));
}

#[test]
fn handles_and_futures_are_send_sync_unpin() {
    fn send_sync<T: std::marker::Send + Sync>() {}
    fn send_unpin<T: std::marker::Send + Unpin>() {}
    send_sync::<MemorySender<String>>();
    send_sync::<MemoryReceiver<String>>();
    send_unpin::<SendFuture<'static, String>>();
    send_unpin::<RecvFuture<'static, String>>();
    fn stream<S: futures::Stream<Item = u8> + Unpin>() {}
    stream::<MemoryReceiver<u8>>();
}

#[test]
fn len_is_empty_is_full_capacity_and_same_stream() {
    for size in SIZES {
        let (tx, rx) = stream::<u32>(size);
        assert_eq!((tx.capacity(), rx.capacity()), (size, size));
        assert_eq!((tx.len(), tx.is_empty()), (0, true));
        assert_eq!(
            tx.is_full(),
            size == Some(0),
            "size {size:?}: a rendezvous is always full"
        );
        if size != Some(0) {
            tx.try_send(1).unwrap();
            assert_eq!((rx.len(), rx.is_empty()), (1, false));
            assert_eq!(rx.is_full(), size == Some(1), "size {size:?}");
            assert_eq!(rx.try_recv(), Ok(1));
        }
        assert!(tx.same_stream(&tx.clone()) && rx.same_stream(&rx.clone()));
        let (other_tx, other_rx) = stream::<u32>(size);
        assert!(!tx.same_stream(&other_tx) && !rx.same_stream(&other_rx));
    }
    // An item given back by a dropped receive can take the buffer past its
    // capacity (SPEC S8); `len` counts it.
    let (tx, rx) = memory_stream::<u32>(1);
    let mut recv = Task::new(rx.recv());
    recv.pending();
    tx.try_send(1).unwrap(); // committed to `recv`
    tx.try_send(2).unwrap(); // buffered
    assert_eq!(tx.len(), 1);
    recv.drop_future();
    assert_eq!((tx.len(), tx.is_full()), (2, true));
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
}

#[test]
fn a_rendezvous_holding_an_item_given_back_is_not_empty() {
    // As `len` and `is_empty` document: a receive dropped after an item was
    // committed to it gives the item back to the head, even of a rendezvous.
    let (tx, rx) = memory_stream::<u32>(0);
    assert!(tx.is_empty() && rx.is_empty() && tx.is_full());
    let mut recv = Task::new(rx.recv());
    recv.pending();
    assert_eq!(tx.try_send(1), Ok(()));
    recv.drop_future();
    assert_eq!((tx.len(), rx.len()), (1, 1));
    assert!(!tx.is_empty() && !rx.is_empty() && tx.is_full());
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(tx.is_empty() && rx.is_empty());
}
