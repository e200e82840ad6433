//! Deadlines and timeouts: the scenarios of the deadline issue, each on four
//! executors (tokio current-thread, tokio multi-thread with 2 workers, the
//! `futures` thread pool, and `futures::executor::block_on`).
//!
//! No test asserts how fast anything is. Deadlines that must fire are short;
//! deadlines that must not fire are an hour away; every assertion about time
//! is causal ("it returned, so the deadline had passed"), and each scenario
//! runs on its own thread under a 60 s watchdog so a missing wake-up fails
//! instead of hanging.
//!
//! With `--features tokio` the tokio runs use tokio's timer; otherwise
//! every executor uses async-io's. Without the `async-io` feature no timer
//! wakes an operation outside tokio, so these scenarios need it (the tokio
//! ones alone run in `tests/runtimes.rs`; what a build without any backend
//! does is in `tests/scopes.rs`).

#![cfg(all(feature = "async-io", not(feature = "loom")))]

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{stream, until, Task, SIZES};
use futures::task::SpawnExt;
use scopestream::{
    checkpoint, fail_after, fail_at, memory_stream, move_on_after, move_on_at, CancelScope,
    Cancelled, MemoryReceiver, RecvError, SendError, TimedOut, TrySendError,
};

const WATCHDOG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(30);
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
enum Exec {
    TokioCurrentThread,
    TokioMultiThread,
    FuturesThreadPool,
    FuturesBlockOn,
}

const EXECS: [Exec; 4] = [
    Exec::TokioCurrentThread,
    Exec::TokioMultiThread,
    Exec::FuturesThreadPool,
    Exec::FuturesBlockOn,
];

impl Exec {
    /// Runs `make()` to completion on this executor, on a fresh thread,
    /// failing the test if it takes longer than the watchdog.
    fn run<F, Fut>(self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let fut = make();
            match self {
                Exec::TokioCurrentThread => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(fut),
                Exec::TokioMultiThread => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move { tokio::spawn(fut).await.unwrap() }),
                Exec::FuturesThreadPool => {
                    let pool = futures::executor::ThreadPool::builder()
                        .pool_size(2)
                        .create()
                        .unwrap();
                    let handle = pool.spawn_with_handle(fut).unwrap();
                    futures::executor::block_on(handle)
                }
                Exec::FuturesBlockOn => futures::executor::block_on(fut),
            }
            let _ = done.send(());
        });
        finished
            .recv_timeout(WATCHDOG)
            .unwrap_or_else(|_| panic!("{self:?}: the scenario panicked or never finished"));
    }

    fn run_all<F, Fut>(make: F)
    where
        F: Fn() -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        for exec in EXECS {
            exec.run(make.clone());
        }
    }
}

/// Sleeps on a helper thread, independent of the deadline timers under test.
async fn sleep(d: Duration) {
    let (tx, rx) = memory_stream::<()>(1);
    thread::spawn(move || {
        thread::sleep(d);
        let _ = tx.send_blocking(());
    });
    CancelScope::shielded().run(rx.recv()).await.unwrap();
}

fn waiting_receivers<T>(rx: &MemoryReceiver<T>) -> usize {
    rx.statistics().tasks_waiting_receive
}

// ---------------------------------------------------------------------------
// Read-back and the "a passed deadline is a cancel" rule (no executor needed).

#[test]
fn deadline_reads_back_exactly() {
    let at = Instant::now() + Duration::from_millis(1234);
    let scope = CancelScope::with_deadline(at);
    assert_eq!(scope.deadline(), Some(at));
    assert_eq!(scope.effective_deadline(), Some(at));
    let earlier = Instant::now()
        .checked_sub(Duration::from_millis(5))
        .unwrap();
    let other = CancelScope::new();
    other.set_deadline(Some(earlier));
    assert_eq!(other.deadline(), Some(earlier));
    other.set_deadline(None);
    assert_eq!(other.deadline(), None);
    // The root has no deadline and takes none.
    CancelScope::current().set_deadline(Some(earlier));
    assert_eq!(CancelScope::current().deadline(), None);
    assert!(!CancelScope::current().is_cancelled());
}

#[test]
fn effective_deadline_stops_at_the_nearest_shield() {
    let now = Instant::now();
    let (t1, t2, t3) = (now + HOUR, now + 2 * HOUR, now + 3 * HOUR);
    let a = CancelScope::with_deadline(t2);
    let b = a.child();
    let c = b.child();
    c.set_deadline(Some(t3));
    assert_eq!(c.effective_deadline(), Some(t2));
    b.set_deadline(Some(t1));
    assert_eq!(c.effective_deadline(), Some(t1));
    b.set_shield(true); // the shielded scope's own deadline still counts
    assert_eq!(c.effective_deadline(), Some(t1));
    c.set_shield(true);
    assert_eq!(c.effective_deadline(), Some(t3));
    c.set_deadline(None);
    assert_eq!(c.effective_deadline(), None);
}

#[test]
fn passed_deadline_is_cancel_called_at_once_and_for_good() {
    let scope = CancelScope::with_deadline(Instant::now());
    assert!(scope.is_cancel_called() && scope.is_cancelled());
    scope.set_deadline(Some(Instant::now() + HOUR));
    assert!(scope.is_cancel_called(), "moving it later cannot undo it");
    // Checkpoints are level-triggered, as for cancel().
    futures::executor::block_on(scope.run(async {
        assert_eq!(checkpoint().await, Err(Cancelled));
        assert_eq!(checkpoint().await, Err(Cancelled));
    }));
    // A child is effectively cancelled, a shielded one is not.
    let child = scope.child();
    assert!(child.is_cancelled() && !child.is_cancel_called());
    let shielded = scope.child();
    shielded.set_shield(true);
    assert!(!shielded.is_cancelled());
}

/// C6 with a deadline: once it has passed, a waiting receiver is no longer
/// deliverable, even before any timer has fired or anyone has looked.
#[test]
fn passed_deadline_makes_a_waiting_receiver_undeliverable() {
    for size in [Some(0), Some(1)] {
        let (tx, rx) = stream::<u32>(size);
        let scope = CancelScope::with_deadline(Instant::now() + SHORT);
        let mut recv = Task::new(scope.run(rx.recv()));
        recv.pending();
        thread::sleep(SHORT * 2);
        match size {
            // Rendezvous: nobody deliverable is waiting.
            Some(0) => assert_eq!(tx.try_send(7), Err(TrySendError::Full(7))),
            // Buffered: the item stays in the buffer for the next receiver.
            _ => assert_eq!(tx.try_send(7), Ok(())),
        }
        assert_eq!(recv.ready(), Err(RecvError::Cancelled));
        if size == Some(1) {
            assert_eq!(rx.try_recv(), Ok(7));
        }
        assert_eq!(waiting_receivers(&rx), 0);
    }
}

// ---------------------------------------------------------------------------
// Timeouts on every executor.

/// `fail_at` with a deadline already passed: the body's first checkpoint
/// fails and the helper reports the timeout.
#[test]
fn fail_at_a_passed_deadline() {
    let out = futures::executor::block_on(fail_at(Instant::now(), async {
        checkpoint().await?;
        Ok::<_, Cancelled>("unreachable")
    }));
    assert_eq!(out, Err(TimedOut));
}

/// Trio's `test_553`: a receive that timed out leaves no ghost behind — the
/// next item goes to the buffer (or, in a rendezvous, nowhere), not to it.
#[test]
fn timed_out_receive_leaves_no_ghost() {
    Exec::run_all(|| async {
        for size in SIZES {
            let (tx, rx) = stream::<&str>(size);
            let timeout = move_on_after(SHORT, rx.recv());
            let scope = timeout.scope().clone();
            assert_eq!(timeout.await, None);
            assert!(scope.is_cancel_called());
            assert_eq!(waiting_receivers(&rx), 0);
            match size {
                Some(0) => assert_eq!(tx.try_send("x"), Err(TrySendError::Full("x"))),
                _ => {
                    tx.send("Test for PR #553").await.unwrap();
                    assert_eq!(rx.try_recv(), Ok("Test for PR #553"));
                }
            }
            let stats = tx.statistics();
            assert_eq!(
                (stats.current_buffer_used, stats.tasks_waiting_receive),
                (0, 0)
            );
        }
    });
}

#[test]
fn fail_after_reports_timed_out_and_passes_values_through() {
    Exec::run_all(|| async {
        let (tx, rx) = memory_stream::<u32>(1);
        assert_eq!(fail_after(SHORT, rx.recv()).await, Err(TimedOut));
        tx.try_send(1).unwrap();
        assert_eq!(fail_after(HOUR, rx.recv()).await, Ok(Ok(1)));
        // Explicitly cancelled before its deadline: AnyIO's rule, no error;
        // the body's own output comes back.
        let timeout = fail_after(HOUR, rx.recv());
        timeout.scope().cancel();
        assert_eq!(timeout.await, Ok(Err(RecvError::Cancelled)));
        // move_on catches an explicit cancel of its own scope too.
        let timeout = move_on_after(HOUR, rx.recv());
        timeout.scope().cancel();
        assert_eq!(timeout.await, None);
        // A body that finished normally is never turned into a timeout, even
        // if the deadline passed meanwhile.
        let out = fail_after(SHORT, async {
            sleep(SHORT * 3).await;
            Ok::<_, Cancelled>(5)
        })
        .await;
        assert_eq!(out, Ok(Ok(5)));
    });
}

/// Nested timeouts where the outer one fires: the outer scope reports it, the
/// inner one passes the cancellation through.
#[test]
fn nested_timeouts_the_outer_one_reports() {
    Exec::run_all(|| async {
        let (_tx, rx) = memory_stream::<u32>(0);
        let inner_saw = Arc::new(std::sync::Mutex::new(None));
        let seen = Arc::clone(&inner_saw);
        let outer = move_on_after(SHORT, async {
            let inner = move_on_after(HOUR, rx.recv());
            let inner_scope = inner.scope().clone();
            let out = inner.await;
            *seen.lock().unwrap() = Some((out, inner_scope.is_cancel_called()));
            out
        });
        let outer_scope = outer.scope().clone();
        assert_eq!(outer.await, None);
        assert!(outer_scope.is_cancel_called());
        assert_eq!(
            *inner_saw.lock().unwrap(),
            Some((Some(Err(RecvError::Cancelled)), false)),
            "the inner scope passes the outer cancellation through"
        );

        // Both deadlines passed: still the outer one reports.
        let out = move_on_at(Instant::now(), async {
            move_on_at(Instant::now(), checkpoint()).await
        })
        .await;
        assert_eq!(out, None);

        // The same with fail_after.
        let out = fail_after(SHORT, fail_after(HOUR, rx.recv())).await;
        assert_eq!(out, Err(TimedOut));

        // The inner one fires alone: it reports, the outer sees a value.
        let out = move_on_after(HOUR, move_on_after(SHORT, rx.recv())).await;
        assert_eq!(out, Some(None));
    });
}

/// A shielded scope ignores an outer deadline but honours its own.
#[test]
fn shield_ignores_outer_deadline_but_honours_its_own() {
    Exec::run_all(|| async {
        let (tx, rx) = memory_stream::<u32>(0);
        let outer = CancelScope::with_deadline(Instant::now() + SHORT);
        let own = Instant::now() + SHORT * 6;
        let shielded = CancelScope::shielded();
        shielded.set_deadline(Some(own));
        let out = outer.run(shielded.run(rx.recv())).await;
        assert_eq!(out, Err(RecvError::Cancelled));
        assert!(Instant::now() >= own, "cancelled only by its own deadline");
        assert!(outer.is_cancel_called() && shielded.is_cancel_called());

        // Without a deadline of its own, the shielded receive outlives the
        // outer deadline and gets the item.
        let outer = CancelScope::with_deadline(Instant::now() + SHORT);
        let recv = outer.run(CancelScope::shielded().run(rx.recv()));
        let send = async {
            until(|| waiting_receivers(&rx) == 1).await;
            sleep(SHORT * 3).await;
            assert!(outer.is_cancel_called());
            tx.send(9).await.unwrap();
        };
        let (got, ()) = futures::join!(recv, send);
        assert_eq!(got, Ok(9));
    });
}

/// Lowering a shield under an outer deadline: the receive is cancelled when
/// the outer deadline passes (timer re-armed), or at once if it has.
#[test]
fn unshielding_exposes_the_outer_deadline() {
    Exec::run_all(|| async {
        let (_tx, rx) = memory_stream::<u32>(0);
        for already_passed in [false, true] {
            let outer = CancelScope::with_deadline(Instant::now() + SHORT);
            let shield = CancelScope::shielded();
            let recv = outer.run(shield.run(rx.recv()));
            let lower = async {
                until(|| waiting_receivers(&rx) == 1).await;
                if already_passed {
                    sleep(SHORT * 2).await;
                }
                shield.set_shield(false);
            };
            let (got, ()) = futures::join!(recv, lower);
            assert_eq!(got, Err(RecvError::Cancelled));
            assert!(outer.is_cancel_called());
        }
    });
}

/// Moving a deadline while blocked: earlier fires, later does not.
#[test]
fn moving_a_deadline_while_blocked() {
    Exec::run_all(|| async {
        let (tx, rx) = memory_stream::<u32>(0);

        // Earlier: from an hour away to soon.
        let timeout = move_on_after(HOUR, rx.recv());
        let scope = timeout.scope().clone();
        let mut new_deadline = None;
        let mover = async {
            until(|| waiting_receivers(&rx) == 1).await;
            let at = Instant::now() + SHORT;
            new_deadline = Some(at);
            scope.set_deadline(Some(at));
        };
        let (out, ()) = futures::join!(timeout, mover);
        assert_eq!(out, None);
        assert!(Instant::now() >= new_deadline.unwrap());

        // Earlier: into the past. Cancelled at once.
        let timeout = move_on_after(HOUR, rx.recv());
        let scope = timeout.scope().clone();
        let mover = async {
            until(|| waiting_receivers(&rx) == 1).await;
            scope.set_deadline(Some(Instant::now()));
        };
        let (out, ()) = futures::join!(timeout, mover);
        assert_eq!(out, None);

        // Later: from soon to an hour away. It does not fire at the old
        // instant; the item sent well after it is received. Where the
        // machine is slow (valgrind), the old deadline may pass before the
        // move, and the scope is then rightly cancelled: that round is
        // retried with a later old deadline, so the test never depends on
        // how fast anything runs.
        let mut soon = SHORT;
        loop {
            let timeout = move_on_after(soon, rx.recv());
            let scope = timeout.scope().clone();
            let old = scope.deadline().unwrap();
            let mover = async {
                until(|| waiting_receivers(&rx) == 1).await;
                scope.set_deadline(Some(Instant::now() + HOUR));
                if scope.is_cancel_called() {
                    return false; // passed before the move
                }
                while Instant::now() <= old + SHORT {
                    sleep(SHORT).await;
                }
                assert!(!scope.is_cancel_called());
                assert_eq!(waiting_receivers(&rx), 1);
                tx.send(3).await.unwrap();
                true
            };
            match futures::join!(timeout, mover) {
                (out, true) => {
                    assert_eq!(out, Some(Ok(3)));
                    break;
                }
                (out, false) => {
                    assert_eq!(out, None);
                    soon *= 4;
                    assert!(soon < HOUR / 60, "never moved before the old deadline");
                }
            }
        }
    });
}

/// An outer deadline wakes operations blocked in child scopes and in other
/// tasks' scopes created with `child()`.
#[test]
fn outer_deadline_wakes_the_subtree() {
    Exec::run_all(|| async {
        // Two streams, so the blocked send and receive cannot meet.
        let (_tx, rx) = memory_stream::<u32>(0);
        let (tx, _rx) = memory_stream::<u32>(0);
        let group = CancelScope::with_deadline(Instant::now() + SHORT);
        let a = group.child().run(rx.recv());
        let b = group.child().run(CancelScope::new().run(tx.send(1)));
        let (a, b) = futures::join!(a, b);
        assert_eq!(a, Err(RecvError::Cancelled));
        assert_eq!(b, Err(SendError::Cancelled(1)));
        assert_eq!(tx.statistics().tasks_waiting_send, 0);
    });
}

/// `CancelScope::cancelled` lets a foreign future give way to a deadline.
#[test]
fn cancelled_future_completes_on_deadline() {
    Exec::run_all(|| async {
        let out = move_on_after(SHORT, async {
            let scope = CancelScope::current();
            futures::future::select(
                std::pin::pin!(std::future::pending::<()>()),
                scope.cancelled(),
            )
            .await;
            Err::<(), _>(Cancelled)
        })
        .await;
        assert_eq!(out, None);
    });
}

/// A deadline expiring in the same instant as a hand-off: each item ends in
/// exactly one place, many times over. The receiver waits under a deadline;
/// the sender, on another thread, sends into the same instant with its own
/// deadline, so either both complete or both are cancelled and the item comes
/// back. Counts are printed, not asserted: which side wins is up to timing.
/// `SCOPESTREAM_DEADLINE_ROUNDS` sets the rounds per executor and size.
#[test]
fn deadline_racing_a_hand_off_has_exactly_one_outcome() {
    let rounds: u32 = std::env::var("SCOPESTREAM_DEADLINE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for exec in EXECS {
        let counts = Arc::new([(); 3].map(|()| AtomicUsize::new(0)));
        let shared = Arc::clone(&counts);
        exec.run(move || async move {
            for size in [Some(0), Some(1)] {
                let (tx, rx) = stream::<u32>(size);
                for i in 0..rounds {
                    // Deadlines spread around the instant the sender starts.
                    let deadline = Instant::now() + Duration::from_micros(u64::from(i % 8) * 50);
                    // The sender starts just before the deadline, or at it.
                    let start = deadline
                        .checked_sub(Duration::from_micros(u64::from(i % 4) * 20))
                        .unwrap();
                    let sender = {
                        let tx = tx.clone();
                        thread::spawn(move || {
                            while Instant::now() < start {
                                std::hint::spin_loop();
                            }
                            let scope = CancelScope::with_deadline(deadline);
                            futures::executor::block_on(scope.run(tx.send(i)))
                        })
                    };
                    let got = move_on_at(deadline, rx.recv()).await;
                    let sent = sender.join().unwrap();
                    // Leftovers from a buffered send are drained here.
                    let late = rx.try_recv().ok();
                    match (got, sent, late) {
                        (Some(Ok(v)), Ok(()), None) => {
                            assert_eq!(v, i);
                            shared[0].fetch_add(1, Ordering::Relaxed);
                        }
                        (None, Err(SendError::Cancelled(v)), None) => {
                            assert_eq!(v, i);
                            shared[1].fetch_add(1, Ordering::Relaxed);
                        }
                        // Buffered: the send completed into the buffer after
                        // the receive timed out; the item is still there.
                        (None, Ok(()), Some(v)) if size == Some(1) => {
                            assert_eq!(v, i);
                            shared[2].fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("size {size:?}, round {i}: impossible outcome {other:?}"),
                    }
                    assert_eq!(waiting_receivers(&rx), 0);
                    assert_eq!(rx.statistics().tasks_waiting_send, 0);
                }
            }
        });
        let [handed, both_cancelled, buffered] = &*counts;
        let (h, c, b) = (
            handed.load(Ordering::Relaxed),
            both_cancelled.load(Ordering::Relaxed),
            buffered.load(Ordering::Relaxed),
        );
        println!("{exec:?}: handed off {h}, both cancelled {c}, buffered after timeout {b}");
        assert_eq!(
            h + c + b,
            2 * rounds as usize,
            "every round has one outcome"
        );
    }
}

/// The hand-polled view of the same rule: an item committed to a receive just
/// before its deadline is delivered, even though the deadline has passed by
/// the time the receive is polled again (C5).
#[test]
fn committed_item_wins_over_a_later_deadline() {
    // The deadline is far until the commit and passed right after it: a
    // short deadline could pass before the commit on a slow machine (under
    // valgrind it did), which is a different case.
    let (tx, rx) = memory_stream::<u32>(0);
    let timeout = move_on_at(Instant::now() + Duration::from_secs(3600), rx.recv());
    let scope = timeout.scope().clone();
    let mut task = Task::new(timeout);
    task.pending();
    tx.try_send(11).unwrap(); // committed now
    scope.set_deadline(Some(Instant::now() - SHORT));
    assert!(scope.is_cancel_called());
    assert_eq!(task.ready(), Some(Ok(11)));
}

/// Deadlines follow tokio's clock under the `tokio` feature: with time paused,
/// an hour-long timeout passes at once, and not a moment early.
#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn tokio_paused_clock_drives_deadlines() {
    let (tx, rx) = memory_stream::<u32>(0);
    let start = tokio::time::Instant::now();
    assert_eq!(fail_after(HOUR, rx.recv()).await, Err(TimedOut));
    assert!(tokio::time::Instant::now() - start >= HOUR);
    // Not early: at 59 minutes the receive is still waiting.
    let timeout = move_on_after(HOUR, rx.recv());
    let check = async {
        tokio::time::sleep(Duration::from_secs(59 * 60)).await;
        assert_eq!(waiting_receivers(&rx), 1);
        tx.send(1).await.unwrap();
    };
    let (out, ()) = tokio::join!(timeout, check);
    assert_eq!(out, Some(Ok(1)));
}

#[test]
fn timed_out_display() {
    assert_eq!(TimedOut.to_string(), "deadline passed");
    let _: &dyn std::error::Error = &TimedOut;
}
