//! Wakers collected under a lock and woken after it: the one way the crate
//! runs a waker.
//!
//! Both wings use it — a stream's critical sections and a scope's subtree
//! walk alike collect the wakers they must run into a [`Wakeups`] and wake
//! them once the lock is released, because a waker is user code: it may
//! panic, or own a handle of the very stream or scope that is waking it.
//! Every collected waker is woken even if one panics.
//!
//! # No allocation
//!
//! The first waker has a slot of its own. The others go into a vector
//! borrowed from a per-thread cache and given back, emptied, once they are
//! woken, so waking many tasks allocates only the first time a thread wakes
//! that many (and again only if a waker re-enters the crate on the same
//! thread while the cache is lent out). A cached vector larger than
//! [`CACHE_LIMIT`] wakers is freed instead of kept.
//!
//! Why not wake in fixed batches, dropping the lock between them (tokio's
//! `WakeList`)? Every multi-wake here is one state change that must look
//! atomic: a close aborts all of its handle's waiters, the end of the stream
//! ends every receive, a cancel wakes a subtree. Dropping the lock halfway
//! would let an operation or a `statistics()` snapshot see half of it.
//!
//! Wakers are never *cloned* under a lock either (a clone is user code too):
//! a stored waker is moved out to be woken, and a new one is cloned before
//! the lock is taken (see `chan` and `scope::tree`).

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;
use std::thread::LocalKey;

/// The largest vector of wakers a thread keeps for the next multi-wake.
const CACHE_LIMIT: usize = 1024;

// Not a synchronisation primitive (each thread has its own, and a borrow
// that races a nested use just allocates), so std's even under loom.
std::thread_local! {
    static SPARE: Cell<Vec<Waker>> = const { Cell::new(Vec::new()) };
}

/// Wakers collected under the lock, woken after it is released.
#[derive(Default)]
pub(crate) struct Wakeups {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakeups {
    #[inline]
    pub(crate) fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.push_rest(waker);
        }
    }

    #[cold]
    fn push_rest(&mut self, waker: Waker) {
        if self.rest.capacity() == 0 {
            // From a thread-local destructor the cache is gone: allocate.
            self.rest = take_spare(&SPARE);
        }
        self.rest.push(waker);
    }

    /// Whether nothing was collected: the common case, checked inline so
    /// that an operation that woke nobody pays for nothing more.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Wakes every collected waker, even if one of them panics; the first
    /// panic then propagates once all are woken.
    #[inline]
    pub(crate) fn wake_all(self) {
        if !self.is_empty() {
            self.wake_all_propagating();
        }
    }

    #[inline(never)]
    fn wake_all_propagating(self) {
        if self.rest.is_empty() {
            // One waker: nobody else to wake, so its panic (if any) may
            // simply propagate; no need to catch it.
            if let Some(first) = self.first {
                first.wake();
            }
            return;
        }
        if let Err(panic) = self.wake_all_catching() {
            std::panic::resume_unwind(panic);
        }
    }

    /// [`wake_all`](Wakeups::wake_all), handing the first panic back to the
    /// caller instead of propagating it, for callers that must first put
    /// something in order (an item in hand back into the stream).
    pub(crate) fn wake_all_catching(self) -> Result<(), Box<dyn Any + std::marker::Send>> {
        let Wakeups { first, mut rest } = self;
        let Some(first) = first else {
            return Ok(());
        };
        let mut panic = catch_unwind(AssertUnwindSafe(|| first.wake())).err();
        for waker in rest.drain(..) {
            let result = catch_unwind(AssertUnwindSafe(|| waker.wake()));
            if let (None, Err(caught)) = (&panic, result) {
                panic = Some(caught);
            }
        }
        give_back(rest);
        panic.map_or(Ok(()), Err)
    }
}

/// Returns an emptied vector of wakers to this thread's cache.
fn give_back(rest: Vec<Waker>) {
    give_back_spare(&SPARE, rest, CACHE_LIMIT);
}

/// Takes the vector a per-thread cache keeps (empty, with capacity), or a
/// new one where the cache is gone (a thread-local destructor) or lent out.
pub(crate) fn take_spare<T: 'static>(cache: &'static LocalKey<Cell<Vec<T>>>) -> Vec<T> {
    cache.try_with(Cell::take).unwrap_or_default()
}

/// Gives an emptied vector back to a per-thread cache, unless it is larger
/// than `limit` or the cache already keeps a larger one.
pub(crate) fn give_back_spare<T: 'static>(
    cache: &'static LocalKey<Cell<Vec<T>>>,
    vec: Vec<T>,
    limit: usize,
) {
    debug_assert!(vec.is_empty());
    if vec.capacity() == 0 || vec.capacity() > limit {
        return;
    }
    let _ = cache.try_with(|spare| {
        let kept = spare.take();
        spare.set(if kept.capacity() < vec.capacity() {
            vec
        } else {
            kept
        });
    });
}
