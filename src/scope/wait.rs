//! A blocked operation's side of cancellation: its registration with its
//! scope, so that `cancel()` or a deadline can wake it from any thread.
//!
//! [`ScopeWait`] is what a blocked operation holds: it registers the task's
//! waker in the scope's node, arms one timer for the chain's effective
//! deadline, and says whether the scope is effectively cancelled —
//! register-then-check, so that a concurrent `cancel()` either finds the
//! waker or is seen by the check (see `tree`). [`ScopeRef`] is the scope as a
//! stream sees a waiter's: enough to decide deliverability (SPEC C6).
//! [`WaitCancelled`] is the same registration as a public future, and
//! [`Cancellable`] races it with any future.
//!
//! These two types and `current_is_cancelled` are all the stream wing sees of
//! scopes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use super::clock::{from_ticks, NO_DEADLINE};
use super::current;
use super::timer::Timer;
use super::tree::Node;
use crate::error::Cancelled;
use crate::sync::TreeArc;

/// A scope as seen by a stream waiter: enough to decide deliverability (C6).
#[derive(Clone, Default)]
pub(crate) struct ScopeRef(Option<TreeArc<Node>>);

impl ScopeRef {
    pub(crate) const ROOT: ScopeRef = ScopeRef(None);

    #[inline]
    pub(crate) fn current() -> ScopeRef {
        ScopeRef(current::current_node())
    }

    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|node| node.is_cancelled())
    }
}

/// A blocked operation's registration with its scope, so that `cancel()`
/// (or a deadline) can wake it. Deregisters on drop.
pub(crate) struct ScopeWait {
    scope: ScopeRef,
    /// Our slot in the node's waiter slab, the waker we stored there (kept
    /// here too, so a re-poll with the same waker needs no lock), and the
    /// node's epoch when we stored it: a walk since may have taken it.
    registered: Option<(usize, Waker, usize)>,
    /// Armed for the chain's effective deadline, while there is one. Boxed:
    /// only operations that block under a deadline pay for its size, which
    /// would otherwise be copied with every `Send`/`Recv` future.
    timer: Option<Box<Timer>>,
}

// Unwind safety: the registration lives in the node (see `tree`), and the
// timer is only a wake-up source, re-armed from the scope chain at every
// poll; a panic caught half-way leaves nothing that a later poll or the
// drop would misread. (Without this, tokio's `Sleep` would make every
// future that may block in a scope not unwind-safe.)
impl std::panic::UnwindSafe for ScopeWait {}
impl std::panic::RefUnwindSafe for ScopeWait {}

impl ScopeWait {
    pub(crate) fn new(scope: ScopeRef) -> Self {
        ScopeWait {
            scope,
            registered: None,
            timer: None,
        }
    }

    /// Registers the task's waker (or refreshes it), arms or polls the
    /// deadline timer, and then reports whether the scope is effectively
    /// cancelled. Register-then-check: a concurrent `cancel()` or
    /// `set_deadline()` either finds the waker or is seen by the check.
    ///
    /// Inline: in the root, which is never cancelled, there is nothing to do.
    #[inline]
    pub(crate) fn register_and_check(&mut self, cx: &mut Context<'_>) -> bool {
        self.scope.0.is_some() && self.register_and_check_in_scope(cx)
    }

    #[inline(never)]
    fn register_and_check_in_scope(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(node) = &self.scope.0 else {
            return false;
        };
        // Wakers are cloned and dropped outside the node lock: user code.
        let waker = cx.waker();
        match &mut self.registered {
            Some((_, stored, epoch)) if stored.will_wake(waker) && *epoch == node.epoch() => {}
            Some((key, stored, epoch)) => {
                // A new waker, or a walk may have taken ours: put it back.
                let (old, now) = node.install_waker(*key, waker.clone());
                drop(old);
                stored.clone_from(waker);
                *epoch = now;
            }
            None => {
                let (key, epoch) = node.register(waker.clone());
                self.registered = Some((key, waker.clone(), epoch));
            }
        }
        loop {
            let deadline = match node.cancelled_or_deadline() {
                None => return true,
                Some(NO_DEADLINE) => {
                    self.timer = None;
                    return false;
                }
                Some(ticks) => ticks,
            };
            let at = from_ticks(deadline);
            let timer = match &mut self.timer {
                Some(timer) => {
                    if timer.deadline() != at {
                        timer.reset(at);
                    }
                    timer
                }
                None => self.timer.insert(Box::new(Timer::new(at))),
            };
            if timer.poll(cx).is_pending() {
                return false;
            }
            // The timer saw `at` pass. Unless the deadlines moved meanwhile,
            // this cancels a scope on the chain and the next check returns.
            node.expire_through(deadline);
        }
    }

    /// Whether this registration is with the scope current now.
    pub(crate) fn is_current(&self) -> bool {
        current::is_current(&self.scope.0)
    }

    pub(crate) fn deregister(&mut self) {
        self.timer = None;
        if let (Some((key, ..)), Some(node)) = (self.registered.take(), &self.scope.0) {
            let waker = node.deregister(key);
            drop(waker); // after the node lock
        }
    }
}

impl Drop for ScopeWait {
    /// Inline: a wait that never registered (the root's) has nothing to undo.
    #[inline]
    fn drop(&mut self) {
        if self.registered.is_some() || self.timer.is_some() {
            self.deregister();
        }
    }
}

/// The future of [`CancelScope::cancelled`](crate::CancelScope::cancelled).
#[must_use = "futures do nothing unless polled"]
pub struct WaitCancelled {
    wait: ScopeWait,
}

impl WaitCancelled {
    pub(super) fn new(node: Option<TreeArc<Node>>) -> Self {
        WaitCancelled {
            wait: ScopeWait::new(ScopeRef(node)),
        }
    }
}

impl Future for WaitCancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.wait.scope.0.is_none() {
            return Poll::Pending; // the root: never
        }
        if this.wait.register_and_check(cx) {
            this.wait.deregister();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for WaitCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitCancelled").finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`ScopeExt::cancellable`](crate::ScopeExt::cancellable):
    /// makes any future a cancellation point of the scope current when it is
    /// polled.
    #[must_use = "futures do nothing unless polled"]
    pub struct Cancellable<F> {
        #[pin]
        fut: Option<F>,
        wait: Option<ScopeWait>,
    }
}

impl<F> Cancellable<F> {
    pub(super) fn new(fut: F) -> Self {
        Cancellable {
            fut: Some(fut),
            wait: None,
        }
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let fut = this
            .fut
            .as_mut()
            .as_pin_mut()
            .expect("`Cancellable` polled after completion");
        // Checked first, every poll, as every checkpoint is.
        if !current::current_is_cancelled() {
            if let Poll::Ready(output) = fut.poll(cx) {
                this.fut.set(None);
                *this.wait = None;
                return Poll::Ready(Ok(output));
            }
            let wait = match &mut *this.wait {
                Some(wait) if wait.is_current() => wait,
                slot => slot.insert(ScopeWait::new(ScopeRef::current())),
            };
            if !wait.register_and_check(cx) {
                return Poll::Pending;
            }
        }
        // Cancelled: the future is dropped now, as a `select!` would.
        this.fut.set(None);
        *this.wait = None;
        Poll::Ready(Err(Cancelled))
    }
}

impl<F> fmt::Debug for Cancellable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("done", &self.fut.is_none())
            .finish_non_exhaustive()
    }
}
