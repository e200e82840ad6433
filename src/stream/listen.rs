//! The listener lines' users: the `Stream` receive and `broken()`.
//!
//! A receive made through `Stream::poll_next` never holds a slot in the
//! receiver line (see the `chan` module docs): it waits in the listener line,
//! is *told* when an item may be there, and takes it at its next poll. A
//! `broken()` future waits the same way in its own line, told when the last
//! receiver closes. Neither is ever committed to, so a dropped one leaves
//! nothing behind but, at most, a spurious wake-up.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::chan::{HandleId, Listener, State};
use super::handle::{Handle, ReceiverSide, SenderSide};
use super::recv::{admit, transfer, wake_keeping};
use super::waiter::{broken_watchers, listeners, placeholder_waker, Waiting};
use crate::error::{Cancelled, RecvError};
use crate::scope::current_is_cancelled;
use crate::waitlist::WaitList;
use crate::wakeups::Wakeups;

/// A receiver handle's `Stream` receive, between polls.
#[derive(Default)]
pub(super) struct StreamReceive {
    /// While it listens between polls: its slot in the stream's listener
    /// line, and its registration with the scope of its latest poll.
    listening: Option<Waiting>,
    /// `poll_next` returned `None` for good: end of stream, or handle closed.
    terminated: bool,
}

impl StreamReceive {
    /// `poll_next` returned `None` for good.
    pub(super) fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Leaves the listener line, if in it; the waker and the scope
    /// registration are dropped outside the lock.
    pub(super) fn stop<T>(&mut self, handle: &Handle<T, ReceiverSide>) {
        if let Some(listening) = self.listening.take() {
            let waker = handle.chan().lock().unlisten(listening.key);
            drop(waker);
            drop(listening);
        }
    }

    /// `poll_next` found nothing and is listening in slot `key`: registers
    /// with the current scope (register, then check) and waits.
    fn listen_in_scope<T>(
        &mut self,
        handle: &Handle<T, ReceiverSide>,
        key: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Option<T>> {
        if Waiting::listen(&mut self.listening, key, cx) {
            // Cancelled since the check under the lock; nothing was ever
            // committed to a listener, so there is nothing to settle.
            self.stop(handle);
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// The checks and the transfer of a receive, in the scope current at
    /// this poll; `None` for any error. Finding nothing, it listens.
    pub(super) fn poll_next<T>(
        &mut self,
        handle: &Handle<T, ReceiverSide>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<T>> {
        let mut state = handle.chan().lock();
        let admitted = admit(handle, true);
        if admitted.is_ok() && self.listening.is_none() {
            // The common case, as for `recv`: an item there, nobody to wake.
            if let Some(item) = state.try_unbuffer() {
                return Poll::Ready(Some(item));
            }
        }
        let mut wake = Wakeups::default();
        let result = match admitted.and_then(|()| transfer(&mut state, &mut wake)) {
            Ok(Some(item)) => Ok(item),
            Err(err) => Err(err),
            Ok(None) => {
                let key = state.listen(self.listening.as_ref().map(|l| l.key), handle.id());
                let mut stale = None;
                let (state, listening) =
                    handle
                        .chan()
                        .keep_waker(state, listeners, key, cx.waker(), &mut stale);
                drop(state);
                drop(stale);
                wake.wake_all();
                if !listening {
                    // Told while our waker was cloned: an item may be there.
                    cx.waker().wake_by_ref();
                }
                return self.listen_in_scope(handle, key, cx);
            }
        };
        let stale = self
            .listening
            .take()
            .map(|listening| (state.unlisten(listening.key), listening));
        drop(state);
        drop(stale);
        if matches!(result, Err(RecvError::EndOfStream | RecvError::Closed)) {
            self.terminated = true;
        }
        Poll::Ready(result.map(|item| wake_keeping(handle, wake, item)).ok())
    }
}

/// The future of [`MemorySender::broken`](crate::MemorySender::broken).
#[must_use = "futures do nothing unless polled"]
pub struct WaitBroken<'a, T> {
    sender: &'a Handle<T, SenderSide>,
    /// While it waits: its slot in the stream's line of `broken()` futures,
    /// and its registration with the scope of its latest poll.
    watching: Option<Waiting>,
}

impl<'a, T> WaitBroken<'a, T> {
    pub(super) fn new(sender: &'a Handle<T, SenderSide>) -> Self {
        WaitBroken {
            sender,
            watching: None,
        }
    }

    /// Leaves the line, if in it; the waker and the registration are
    /// dropped after the lock.
    fn stop_watching(&mut self) {
        if let Some(watching) = self.watching.take() {
            let waker = self.sender.chan().lock().unwatch_broken(watching.key);
            drop((waker, watching));
        }
    }
}

impl<T> Future for WaitBroken<'_, T> {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.sender.chan().lock();
        if state.is_broken() {
            drop(state);
            this.stop_watching();
            return Poll::Ready(Ok(()));
        }
        if current_is_cancelled() {
            drop(state);
            this.stop_watching();
            return Poll::Ready(Err(Cancelled));
        }
        let key = state.watch_broken(this.watching.as_ref().map(|w| w.key), this.sender.id());
        let mut stale = None;
        let (state, watching) =
            this.sender
                .chan()
                .keep_waker(state, broken_watchers, key, cx.waker(), &mut stale);
        drop(state);
        drop(stale);
        if !watching {
            // Told while our waker was cloned: the stream is broken now.
            cx.waker().wake_by_ref();
        }
        if Waiting::listen(&mut this.watching, key, cx) {
            this.stop_watching();
            return Poll::Ready(Err(Cancelled));
        }
        Poll::Pending
    }
}

impl<T> Drop for WaitBroken<'_, T> {
    fn drop(&mut self) {
        self.stop_watching();
    }
}

impl<T> fmt::Debug for WaitBroken<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitBroken")
            .field("waiting", &self.watching.is_some())
            .finish_non_exhaustive()
    }
}

/// The listener lines.
impl<T> State<T> {
    /// A `Stream` receive on `handle` found nothing: keeps (or puts) it in
    /// the listener line. `key` is its slot from an earlier poll, if any.
    /// Returns the slot's key; a new slot holds a placeholder waker until
    /// the caller installs its own with [`Chan::keep_waker`].
    pub(crate) fn listen(&mut self, key: Option<usize>, handle: HandleId) -> usize {
        listen_in(&mut self.listeners, key, handle)
    }

    /// Frees a `Stream` receive's listener slot; returns its waker, if it had
    /// not been told, for the caller to drop after unlocking.
    pub(crate) fn unlisten(&mut self, key: usize) -> Option<Waker> {
        unlisten_in(&mut self.listeners, key)
    }

    /// A `broken()` future found receivers open: keeps (or puts) it in the
    /// line told when the last one closes; as [`listen`](State::listen).
    pub(crate) fn watch_broken(&mut self, key: Option<usize>, handle: HandleId) -> usize {
        listen_in(&mut self.broken_watchers, key, handle)
    }

    /// Frees a `broken()` future's slot; as [`unlisten`](State::unlisten).
    pub(crate) fn unwatch_broken(&mut self, key: usize) -> Option<Waker> {
        unlisten_in(&mut self.broken_watchers, key)
    }
}

/// [`State::listen`] on either line of listeners.
fn listen_in(line: &mut WaitList<Listener>, key: Option<usize>, handle: HandleId) -> usize {
    if let Some(key) = key {
        if let Listener::Waiting { .. } = line.get(key) {
            return key;
        }
        // Told since: a fresh slot goes to the back of the line.
        line.remove(key);
    }
    line.push_back(Listener::Waiting {
        waker: placeholder_waker(),
        handle,
    })
}

/// [`State::unlisten`] on either line of listeners.
fn unlisten_in(line: &mut WaitList<Listener>, key: usize) -> Option<Waker> {
    match line.remove(key) {
        Listener::Waiting { waker, .. } => Some(waker),
        Listener::Told => None,
    }
}
