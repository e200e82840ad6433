//! Loom models of the interleavings that decide the crate's guarantees. Run
//! with `cargo test --release --features loom --test loom`. Every model is
//! exhaustive (no preemption bound) unless stated next to it.

#![cfg(feature = "loom")]

use loom::future::block_on;
use loom::thread;
use scopestream::{memory_stream, CancelScope, RecvError, SendError};

/// Rendezvous hand-off: a blocking `send` and an async `recv` meet exactly once.
#[test]
fn rendezvous_send_vs_recv() {
    loom::model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let sender = thread::spawn(move || block_on(tx.send(1)));
        assert_eq!(block_on(rx.recv()), Ok(1));
        assert_eq!(sender.join().unwrap(), Ok(()));
    });
}

/// AnyIO #771: a receiver behind a shield, its outer scope cancelled while a
/// send runs: the item is always delivered and the sender always completes.
#[test]
fn shielded_receiver_outer_cancel_races_send() {
    loom::model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let outer = CancelScope::new();
        let shield = CancelScope::shielded();
        let canceller = {
            let outer = outer.clone();
            thread::spawn(move || outer.cancel())
        };
        let sender = thread::spawn(move || block_on(tx.send(7)));
        assert_eq!(block_on(outer.run(shield.run(rx.recv()))), Ok(7));
        assert_eq!(sender.join().unwrap(), Ok(()));
        canceller.join().unwrap();
    });
}

/// A blocked `recv` whose scope is cancelled from another thread, racing a
/// `try_send`: the receive either gets the item or is cancelled with the item
/// still in the stream; never both, never neither.
///
/// Bound: 5 preemptions (15 s; exhaustive takes about six minutes here).
#[test]
fn cancelled_recv_races_try_send() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(5);
    model.check(|| {
        let (tx, rx) = memory_stream::<u32>(1);
        let scope = CancelScope::new();
        let canceller = {
            let scope = scope.clone();
            thread::spawn(move || scope.cancel())
        };
        let sender = thread::spawn(move || {
            tx.try_send(1).unwrap();
            tx
        });
        let got = block_on(scope.run(rx.recv()));
        let _tx = sender.join().unwrap();
        canceller.join().unwrap();
        match got {
            Ok(1) => assert!(rx.try_recv().is_err()),
            Err(RecvError::Cancelled) => assert_eq!(rx.try_recv(), Ok(1)),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// `send_blocking` on one thread, `close()` of that handle on another: a
/// clean `Closed(item)` or a completed hand-off, never a hang.
#[test]
fn send_blocking_vs_close() {
    loom::model(|| {
        let (tx, rx) = memory_stream::<u32>(0);
        let tx = loom::sync::Arc::new(tx);
        let sender = {
            let tx = tx.clone();
            thread::spawn(move || tx.send_blocking(3))
        };
        tx.close();
        assert_eq!(sender.join().unwrap(), Err(SendError::Closed(3)));
        drop(rx);
    });
}
