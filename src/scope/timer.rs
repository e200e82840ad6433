//! The timer that wakes an operation blocked under a deadline, and its
//! backends.
//!
//! Nothing here starts a thread of its own, but a backend may: async-io's
//! timer is driven by its reactor, whose thread async-io starts at the
//! first timer armed outside a runtime that drives it. A blocked operation whose scope
//! chain has a deadline arms one [`Timer`] for it and polls it with its own
//! waker; the backend is picked when the timer is armed:
//!
//! | where the operation is polled      | backend (feature)                  |
//! |------------------------------------|------------------------------------|
//! | inside a tokio runtime             | tokio's timer (`tokio`)            |
//! | anywhere else                      | async-io's timer (`async-io`, default) |
//! | neither feature enabled            | none: expiry is seen at the next poll |
//!
//! Deadlines are compared with the clock in `clock`, which is the clock the
//! backend runs on; a timer only says when its instant has passed.
//!
//! Inside a loom model there is no backend: the models use deadlines that
//! are already past or far away, which need no timer. (Elsewhere in the
//! `loom` build — the doc tests — the backends work as usual.)

use std::task::{Context, Poll};
use std::time::Instant;

/// A one-shot timer for one deadline; re-armed in place when the deadline
/// moves.
pub(super) struct Timer {
    deadline: Instant,
    backend: Backend,
}

enum Backend {
    #[cfg(feature = "tokio")]
    Tokio(std::pin::Pin<Box<tokio::time::Sleep>>),
    #[cfg(feature = "async-io")]
    AsyncIo(async_io::Timer),
    /// No timer available: the deadline is noticed when something else wakes
    /// the operation.
    #[allow(dead_code)] // unused when a backend is always available
    Never,
}

impl Timer {
    pub(super) fn new(deadline: Instant) -> Self {
        Timer {
            deadline,
            backend: Backend::new(deadline),
        }
    }

    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the timer to `deadline`, reusing its registration where the
    /// backend allows.
    pub(super) fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        match &mut self.backend {
            #[cfg(feature = "tokio")]
            Backend::Tokio(sleep) => sleep
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline)),
            #[cfg(feature = "async-io")]
            Backend::AsyncIo(timer) => timer.set_at(deadline),
            Backend::Never => {}
        }
    }

    /// `Ready` once the deadline has passed on the backend's clock.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.backend {
            #[cfg(feature = "tokio")]
            Backend::Tokio(sleep) => std::future::Future::poll(sleep.as_mut(), cx),
            #[cfg(feature = "async-io")]
            Backend::AsyncIo(timer) => {
                std::future::Future::poll(std::pin::Pin::new(timer), cx).map(drop)
            }
            Backend::Never => {
                let _ = cx;
                Poll::Pending
            }
        }
    }
}

impl Backend {
    #[allow(unreachable_code)] // which arms are reachable depends on features
    fn new(deadline: Instant) -> Self {
        #[cfg(feature = "loom")]
        if crate::sync::model_checking() {
            return Backend::Never;
        }
        #[cfg(feature = "tokio")]
        if tokio::runtime::Handle::try_current().is_ok() {
            return Backend::Tokio(Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::from_std(deadline),
            )));
        }
        #[cfg(feature = "async-io")]
        return Backend::AsyncIo(async_io::Timer::at(deadline));
        let _ = deadline;
        Backend::Never
    }
}
