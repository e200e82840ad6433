//! Running one of our own futures to completion on the calling thread.
//!
//! The blocking API is the asynchronous one driven by a waker that unparks
//! this thread, so both share one implementation of every transfer.
//!
//! Between polls the thread first waits briefly without sleeping — a few
//! rounds of spinning, then of yielding, watching its own `notified` flag
//! (no lock is taken) — and only then parks. A peer that answers within a
//! few microseconds, as in a rendezvous between two running threads, then
//! costs an atomic store instead of a futex sleep and wake-up. Under loom
//! there is no such phase: it would only add states.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc as WakerArc;
use std::task::{Context, Poll, Wake, Waker};

use std::time::Instant;

use crate::sync::{current_thread, park, park_timeout, thread_local, AtomicBool, Ordering, Thread};

struct Parker {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for Parker {
    fn wake(self: WakerArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &WakerArc<Self>) {
        // ORDERING: Release pairs with the Acquire swap in `block_on`, so the
        // woken thread sees what the waker's caller wrote before waking it.
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

thread_local! {
    /// This thread's waker, made once and reused by every blocking call.
    static WAKER: (WakerArc<Parker>, Waker) = new_waker();
}

fn new_waker() -> (WakerArc<Parker>, Waker) {
    let parker = WakerArc::new(Parker {
        thread: current_thread(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(WakerArc::clone(&parker));
    (parker, waker)
}

/// Polls `fut` until it completes, parking the thread while it is pending.
///
/// Called while this thread's thread-locals are being destroyed (from
/// another thread-local's destructor), it uses a waker made for this call.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let fut = pin!(fut);
    block_on_until(fut, None).expect("no deadline: the future ran to completion")
}

/// Polls `fut` until it completes or `deadline` passes (`None`: never),
/// parking the thread while it is pending. `None` if the time ran out, with
/// the future still pending, for the caller to settle. The future is polled
/// at least once, whatever the deadline.
pub(crate) fn block_on_until<F: Future>(
    mut fut: Pin<&mut F>,
    deadline: Option<Instant>,
) -> Option<F::Output> {
    let mut output = None;
    let with_cached = WAKER.try_with(|(parker, waker)| {
        output = run(fut.as_mut(), parker, waker, deadline);
    });
    if with_cached.is_err() {
        let (parker, waker) = new_waker();
        output = run(fut.as_mut(), &parker, &waker, deadline);
    }
    output
}

fn run<F: Future>(
    mut fut: Pin<&mut F>,
    parker: &Parker,
    waker: &Waker,
    deadline: Option<Instant>,
) -> Option<F::Output> {
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return Some(output);
        }
        // A zero timeout tries once: no waiting at all once time is up.
        if deadline.is_none_or(|deadline| Instant::now() < deadline) {
            wait_briefly(&parker.notified);
        }
        // A wake-up between the poll and here leaves `notified` set, and
        // an unpark before `park` makes `park` return at once.
        while !parker.notified.swap(false, Ordering::Acquire) {
            match deadline {
                None => park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    park_timeout(deadline - now);
                }
            }
        }
    }
}

/// Spins, then yields, until `notified` is set or the budget runs out:
/// 2^0..2^6 spins (crossbeam's `Backoff` steps), then up to 20 yields. The
/// yields matter most: a rendezvous peer on another core usually answers
/// within them (measured by `cargo bench --bench compare -- blocking`: with
/// 4 yields a blocking rendezvous took 1–7 µs per item here, with 20 about
/// 0.4–0.5 µs), and on a busy machine they let the peer run.
#[cfg(not(feature = "loom"))]
fn wait_briefly(notified: &AtomicBool) {
    for step in 0..27 {
        // ORDERING: a hint only; the Acquire swap in `block_on` decides.
        if notified.load(Ordering::Relaxed) {
            return;
        }
        if step <= 6 {
            for _ in 0..1 << step {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(feature = "loom")]
fn wait_briefly(_: &AtomicBool) {}
