//! The send operation: one future type, [`SendCall`], over a borrowed or an
//! owned sender handle, whose `Drop` is the one place a send is abandoned.
//!
//! [`SendFuture`] and [`OwnedSendFuture`] are that future over a borrowed and an owned
//! handle; the sink keeps one between items; the blocking API drives one on
//! its thread. A send's steps (first poll, waiting poll, give up, abandon)
//! are `SendOp`'s, the send side of the state table in `chan`.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::future::FusedFuture;

use super::chan::{SendAbort, SendRefusal, SendSlot, State};
use super::handle::{Handle, SenderSide};
use super::waiter::{senders, Waiting};
use crate::error::SendError;
use crate::scope::{current_is_cancelled, ScopeRef, ScopeWait};
use crate::sync::MutexGuard;
use crate::wakeups::Wakeups;

/// A sender's handle, as the send operation sees it.
pub(super) type SenderHandle<T> = Handle<T, SenderSide>;

/// One send on the handle `H` (borrowed or owned): its `Drop` withdraws a
/// send abandoned while it waits (its item is dropped, and no receiver can
/// get it).
pub(super) struct SendCall<H: Borrow<SenderHandle<T>>, T> {
    handle: H,
    op: SendOp<T>,
}

impl<H: Borrow<SenderHandle<T>>, T> SendCall<H, T> {
    /// A send of `item`; `blocking`: the blocking API's, which ignores
    /// scopes.
    pub(super) fn new(handle: H, item: T, blocking: bool) -> Self {
        SendCall {
            handle,
            op: SendOp::new(Some(item), blocking),
        }
    }

    /// A send with no item yet (the sink's between items).
    pub(super) fn idle(handle: H) -> Self {
        SendCall {
            handle,
            op: SendOp::new(None, false),
        }
    }

    /// Gives an idle send its item.
    pub(super) fn start(&mut self, item: T) {
        debug_assert!(self.op.is_terminated(), "started while a send is under way");
        self.op.item = Some(item);
    }

    pub(super) fn handle(&self) -> &H {
        &self.handle
    }

    #[inline]
    pub(super) fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        self.op.poll(self.handle.borrow(), cx)
    }

    /// For a poll-based API (the sink): see `SendOp::follow_current_scope`.
    pub(super) fn follow_current_scope(&mut self) {
        self.op.follow_current_scope(self.handle.borrow());
    }

    /// A blocked send gives up now (a blocking timeout ran out); see
    /// `SendOp::give_up`.
    pub(super) fn give_up(&mut self) -> Option<Result<(), SendError<T>>> {
        self.op.give_up(self.handle.borrow())
    }

    /// Started and finished (or never started): no item, nothing waiting.
    pub(super) fn is_terminated(&self) -> bool {
        self.op.is_terminated()
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("started", &self.op.item.is_none())
            .field("waiting", &self.op.waiting.is_some())
            .finish_non_exhaustive()
    }
}

impl<H: Borrow<SenderHandle<T>>, T> Drop for SendCall<H, T> {
    /// The one place a send is abandoned.
    fn drop(&mut self) {
        self.op.abandon(self.handle.borrow());
    }
}

/// The future of [`MemorySender::send`](crate::MemorySender::send).
///
/// It owns the item until a receiver takes it; see the cancel-safety notes on
/// [`MemorySender::send`](crate::MemorySender::send). Polling it again after
/// it completed panics, as the item is gone.
#[must_use = "futures do nothing unless polled; dropping this one withdraws the item"]
pub struct SendFuture<'a, T>(SendCall<&'a SenderHandle<T>, T>);

impl<'a, T> SendFuture<'a, T> {
    pub(super) fn new(handle: &'a SenderHandle<T>, item: T, blocking: bool) -> Self {
        SendFuture(SendCall::new(handle, item, blocking))
    }

    /// See [`SendCall::give_up`].
    pub(super) fn give_up(&mut self) -> Option<Result<(), SendError<T>>> {
        self.0.give_up()
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_send(cx)
    }
}

impl<T> FusedFuture for SendFuture<'_, T> {
    /// `true` once the send has completed.
    fn is_terminated(&self) -> bool {
        self.0.is_terminated()
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("SendFuture", f)
    }
}

/// The future of [`MemorySender::send_owned`](crate::MemorySender::send_owned):
/// a [`SendFuture`] that owns its handle.
#[must_use = "futures do nothing unless polled; dropping this one withdraws the item"]
pub struct OwnedSendFuture<T>(SendCall<SenderHandle<T>, T>);

impl<T> OwnedSendFuture<T> {
    pub(super) fn new(handle: SenderHandle<T>, item: T) -> Self {
        OwnedSendFuture(SendCall::new(handle, item, false))
    }
}

impl<T> Future for OwnedSendFuture<T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_send(cx)
    }
}

impl<T> FusedFuture for OwnedSendFuture<T> {
    /// `true` once the send has completed.
    fn is_terminated(&self) -> bool {
        self.0.is_terminated()
    }
}

impl<T> fmt::Debug for OwnedSendFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("OwnedSendFuture", f)
    }
}

/// The state of one send: the steps of the state table in `chan`.
///
/// Mirrors `RecvOp` (in `recv.rs`) step for step (first poll, waiting
/// poll, abandon); the stream wing's docs say what the two share and why the
/// rest stays apart.
struct SendOp<T> {
    /// The item until the send starts; afterwards it lives in the slot.
    item: Option<T>,
    /// While blocked: our slot in the stream's sender line and our
    /// registration with the scope. `None` on the fast path, which then has
    /// nothing to drop.
    /// `ManuallyDrop`: [`SendCall`]'s `Drop`, the one owner, calls
    /// `abandon`, which takes it; a field that dropped itself would cost an
    /// out-of-line call of its drop glue on every operation, the fast
    /// path's included.
    waiting: ManuallyDrop<Option<Waiting>>,
    /// `send_blocking`: the scope is the root, whatever is current.
    ignore_scope: bool,
}

impl<T> Unpin for SendOp<T> {}

impl<T> SendOp<T> {
    fn new(item: Option<T>, ignore_scope: bool) -> Self {
        SendOp {
            item,
            waiting: ManuallyDrop::new(None),
            ignore_scope,
        }
    }

    fn poll(
        &mut self,
        sender: &SenderHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        if self.waiting.is_some() {
            self.poll_waiting(sender, cx)
        } else {
            self.poll_start(sender, cx)
        }
    }

    /// First poll: the checks of SPEC S12, then the transfer or a slot in line.
    fn poll_start(
        &mut self,
        sender: &SenderHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let item = self
            .item
            .take()
            .expect("`SendFuture` polled after completion");
        let mut state = sender.chan().lock();
        // Checked under the lock, so a cancel that happened before a peer's
        // change we are about to see is seen too (C5).
        if !self.ignore_scope && current_is_cancelled() {
            return Poll::Ready(Err(SendError::Cancelled(item)));
        }
        if sender.closed_under_lock() {
            return Poll::Ready(Err(SendError::Closed(item)));
        }
        match state.try_buffer(item) {
            Ok(()) => {
                drop(state);
                Poll::Ready(Ok(()))
            }
            Err(item) => self.poll_start_further(sender, state, item, cx),
        }
    }

    /// [`poll_start`](SendOp::poll_start) past its common case: receivers
    /// waiting or listening, no receiver left, or a wait in line.
    #[inline(never)]
    fn poll_start_further(
        &mut self,
        sender: &SenderHandle<T>,
        mut state: MutexGuard<'_, State<T>>,
        item: T,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let mut wake = Wakeups::default();
        match state.try_send(item, &mut wake) {
            Ok(()) => {
                drop(state);
                wake.wake_all();
                Poll::Ready(Ok(()))
            }
            Err((SendRefusal::Broken, item)) => Poll::Ready(Err(SendError::Broken(item))),
            Err((SendRefusal::Full, item)) => {
                let scope = Waiting::scope(self.ignore_scope);
                let key = state.senders.push_back(SendSlot::Waiting {
                    item,
                    waker: Waiting::first_waker(self.ignore_scope, cx),
                    scope: scope.clone(),
                    handle: sender.id(),
                });
                // A `Stream` receive can take the item now.
                state.sender_waiting(&mut wake);
                let mut stale = None;
                let (state, waits) = if self.ignore_scope {
                    (state, true)
                } else {
                    let chan = sender.chan();
                    chan.keep_waker(state, senders, key, cx.waker(), &mut stale)
                };
                drop(state);
                drop(stale);
                if Waiting::record(&mut self.waiting, key, scope, wake, cx) || !waits {
                    // Cancelled, or settled by a peer, while we queued:
                    // settle it under the lock.
                    return self.poll(sender, cx);
                }
                Poll::Pending
            }
        }
    }

    fn poll_waiting(
        &mut self,
        sender: &SenderHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let waiting = self.waiting.as_mut().expect("poll_waiting while waiting");
        let key = waiting.key;
        let cancelled = waiting.scope.register_and_check(cx);
        // Declared first, dropped last: a waker is user code, not run under
        // the lock.
        let mut stale = None;
        let state = sender.chan().lock();
        let (mut state, waits) =
            sender
                .chan()
                .keep_waker(state, senders, key, cx.waker(), &mut stale);
        if waits && !cancelled {
            return Poll::Pending;
        }
        // Settled by a peer, or cancelled before anyone took the item.
        let slot = state.senders.remove(key);
        drop(state);
        // Deregisters from the scope.
        *self.waiting = None;
        Poll::Ready(Self::outcome(slot))
    }

    /// For a poll-based API (the sink), whose every poll is a checkpoint of
    /// the scope current at that poll: a blocked send that waits in another
    /// scope moves into the current one, so that the delivery-time check,
    /// the cancellation check and the wake-up of a cancel all follow it. Its
    /// next poll then registers there and settles it if that scope is
    /// cancelled.
    fn follow_current_scope(&mut self, sender: &SenderHandle<T>) {
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        if self.ignore_scope || waiting.scope.is_current() {
            return;
        }
        let scope = ScopeRef::current();
        let mut state = sender.chan().lock();
        if let SendSlot::Waiting { scope: slot, .. } = state.senders.get_mut(waiting.key) {
            // The old scope is dropped under the lock: the registration
            // replaced below still holds it, so this never frees a scope.
            *slot = scope.clone();
        }
        let old = std::mem::replace(&mut waiting.scope, ScopeWait::new(scope));
        drop(state);
        drop(old); // deregisters, after the stream lock
    }

    /// A blocked send gives up now (a blocking timeout ran out), exactly as
    /// if its scope had been cancelled: the item comes back as
    /// `Cancelled(item)` unless a peer took it (`Ok`) or aborted the send
    /// first. `None` if the send is not blocked.
    fn give_up(&mut self, sender: &SenderHandle<T>) -> Option<Result<(), SendError<T>>> {
        let waiting = self.waiting.take()?;
        let slot = sender.chan().lock().senders.remove(waiting.key);
        drop(waiting);
        Some(Self::outcome(slot))
    }

    /// What a settled (or withdrawn) slot means for its send.
    fn outcome(slot: SendSlot<T>) -> Result<(), SendError<T>> {
        match slot {
            SendSlot::Taken => Ok(()),
            SendSlot::Waiting { item, .. } | SendSlot::Aborted(SendAbort::Cancelled, item) => {
                Err(SendError::Cancelled(item))
            }
            SendSlot::Aborted(SendAbort::Closed, item) => Err(SendError::Closed(item)),
            SendSlot::Aborted(SendAbort::Broken, item) => Err(SendError::Broken(item)),
        }
    }

    /// Started and finished: the item is gone, and nothing waits.
    fn is_terminated(&self) -> bool {
        self.item.is_none() && self.waiting.is_none()
    }

    /// Withdraws a send whose future is dropped (SPEC S8). Inline: a
    /// future that never waited has nothing to clean up.
    #[inline]
    fn abandon(&mut self, sender: &SenderHandle<T>) {
        // Checked and taken here, inline: a future that never waited pays
        // one test (the field is `ManuallyDrop`, so nothing else runs).
        if let Some(waiting) = self.waiting.take() {
            Self::abandon_waiting(sender, waiting);
        }
    }

    #[inline(never)]
    fn abandon_waiting(sender: &SenderHandle<T>, waiting: Waiting) {
        let slot = sender.chan().lock().senders.remove(waiting.key);
        drop(waiting);
        // The withdrawn item (if not taken) drops here, outside the lock.
        drop(slot);
    }
}
