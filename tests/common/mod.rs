//! Helpers shared by the integration tests: a hand-driven task with a waker
//! that counts its wake-ups, and items that count their drops.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Counts how often it was woken.
#[derive(Default)]
pub struct WakeCounter(AtomicUsize);

impl WakeCounter {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future polled by hand, so a test decides exactly what runs when.
pub struct Task<F: Future> {
    fut: Option<Pin<Box<F>>>,
    counter: Arc<WakeCounter>,
    waker: Waker,
    output: Option<F::Output>,
}

impl<F: Future> Task<F> {
    pub fn new(fut: F) -> Self {
        let counter = Arc::new(WakeCounter::default());
        let waker = Waker::from(Arc::clone(&counter));
        Task {
            fut: Some(Box::pin(fut)),
            counter,
            waker,
            output: None,
        }
    }

    /// Polls once (if not finished yet); `true` once the future has completed.
    pub fn poll(&mut self) -> bool {
        if let Some(fut) = self.fut.as_mut() {
            let mut cx = Context::from_waker(&self.waker);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                self.output = Some(out);
                self.fut = None;
            }
        }
        self.fut.is_none()
    }

    /// Polls once and requires it to be pending.
    #[track_caller]
    pub fn pending(&mut self) {
        assert!(!self.poll(), "expected the task to be pending");
    }

    /// Polls once and requires it to complete; returns the output.
    #[track_caller]
    pub fn ready(mut self) -> F::Output {
        assert!(self.poll(), "expected the task to complete");
        self.output.take().unwrap()
    }

    /// How many times the task's waker was woken so far.
    pub fn wakes(&self) -> usize {
        self.counter.0.load(Ordering::SeqCst)
    }

    /// Drops the future (as `select!` or an aborted task would).
    pub fn drop_future(mut self) {
        self.fut = None;
    }
}

/// Polls a future once with a no-op waker.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(WakeCounter::default()));
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

/// An item that counts how often values of its family are dropped.
#[derive(Debug)]
pub struct Tracked {
    pub id: u64,
    drops: Arc<AtomicUsize>,
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

#[derive(Clone, Default)]
pub struct DropLedger(Arc<AtomicUsize>);

impl DropLedger {
    pub fn item(&self, id: u64) -> Tracked {
        Tracked {
            id,
            drops: Arc::clone(&self.0),
        }
    }
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// The buffer sizes every scenario runs with: `None` is unbounded.
pub const SIZES: [Option<usize>; 3] = [Some(0), Some(1), None];

pub fn stream<T>(
    size: Option<usize>,
) -> (scopestream::MemorySender<T>, scopestream::MemoryReceiver<T>) {
    match size {
        Some(n) => scopestream::memory_stream(n),
        None => scopestream::unbounded_memory_stream(),
    }
}

/// Yields until `cond` holds (bounded by time, so a bug fails instead of
/// hanging). Every so often it also sleeps a moment: a condition that
/// another OS thread makes true needs that thread to run, and where threads
/// take turns (valgrind runs one at a time, switching mostly at system
/// calls) busy yielding alone can starve it.
pub async fn until(mut cond: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    for round in 0u64.. {
        if cond() {
            return;
        }
        if round % 256 == 255 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "condition never became true"
            );
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        yield_now().await;
    }
}

pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Waits (yielding the thread, bounded) until `cond` holds, for conditions
/// that other threads make true; a bug fails instead of hanging.
pub fn wait_for(cond: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "condition never became true"
        );
        std::thread::yield_now();
    }
}

/// Runs `f` on its own thread and fails if it does not finish in time.
pub fn watchdog<R: std::marker::Send + 'static>(
    what: &str,
    f: impl FnOnce() -> R + std::marker::Send + 'static,
) -> R {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = done.send(f());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("finished without a result"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: hung (deadlock or lost wake-up)")
        }
    }
}

/// A waker that runs `on_clone` each time it is cloned, and counts its
/// wake-ups: a hostile waker whose clone uses the very stream or scope
/// that holds it. `Wake` cannot hook a clone, so this is a raw waker.
pub fn cloning_hook_waker(
    on_clone: impl Fn() + Send + Sync + 'static,
) -> (Waker, Arc<WakeCounter>) {
    hook::waker(Arc::new(hook::Hook {
        on_clone: Box::new(on_clone),
        woken: Arc::new(WakeCounter::default()),
    }))
}

#[allow(unsafe_code)]
mod hook {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::task::{RawWaker, RawWakerVTable, Waker};

    use super::WakeCounter;

    pub struct Hook {
        pub on_clone: Box<dyn Fn() + Send + Sync>,
        pub woken: Arc<WakeCounter>,
    }

    const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

    pub fn waker(hook: Arc<Hook>) -> (Waker, Arc<WakeCounter>) {
        let woken = Arc::clone(&hook.woken);
        let raw = RawWaker::new(Arc::into_raw(hook).cast(), &VTABLE);
        // SAFETY: the vtable's functions treat the data pointer as what
        // `Arc::into_raw` gave for an `Arc<Hook>`, each owning one count.
        (unsafe { Waker::from_raw(raw) }, woken)
    }

    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` is a live `Arc<Hook>` pointer (see `waker`); the
        // count is incremented for the new waker.
        let hook = unsafe {
            Arc::increment_strong_count(data.cast::<Hook>());
            &*data.cast::<Hook>()
        };
        (hook.on_clone)();
        RawWaker::new(data, &VTABLE)
    }

    unsafe fn wake(data: *const ()) {
        // SAFETY: the waker owns one count, given up here.
        let hook = unsafe { Arc::from_raw(data.cast::<Hook>()) };
        hook.woken.0.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: borrowed for the call; the waker keeps its count.
        let hook = unsafe { &*data.cast::<Hook>() };
        hook.woken.0.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: the waker owns one count, given up here.
        drop(unsafe { Arc::from_raw(data.cast::<Hook>()) });
    }
}
