//! Wakers collected under a lock and woken after it: the one way the crate
//! runs a waker.
//!
//! Both wings use it — a stream's critical sections and a scope's subtree
//! walk alike collect the wakers they must run into a [`Wakeups`] and wake
//! them once the lock is released, because a waker is user code: it may
//! panic, or own a handle of the very stream or scope that is waking it.
//! Every collected waker is woken even if one panics. [`swap_waker`] is the
//! one place a stored waker is replaced, handing the old one out to be
//! dropped after unlocking.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;

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
            self.rest.push(waker);
        }
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
        let Some(first) = self.first else {
            return Ok(());
        };
        let mut panic = catch_unwind(AssertUnwindSafe(|| first.wake())).err();
        for waker in self.rest {
            let result = catch_unwind(AssertUnwindSafe(|| waker.wake()));
            if let (None, Err(caught)) = (&panic, result) {
                panic = Some(caught);
            }
        }
        panic.map_or(Ok(()), Err)
    }
}

/// Stores `waker` in place of `stored` unless both wake the same task;
/// returns the replaced one, for the caller to drop after unlocking (a
/// waker's drop is user code).
#[inline]
pub(crate) fn swap_waker(stored: &mut Waker, waker: &Waker) -> Option<Waker> {
    (!stored.will_wake(waker)).then(|| std::mem::replace(stored, waker.clone()))
}
