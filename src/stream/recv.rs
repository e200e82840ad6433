//! The receive operation: one future type, [`RecvCall`], over a borrowed or
//! an owned receiver handle, whose `Drop` is the one place a receive is
//! abandoned (an item already committed to it goes back to the head).
//!
//! [`RecvFuture`] and [`OwnedRecvFuture`] are that future over a borrowed and an owned
//! handle; the blocking API drives one on its thread. A receive's steps
//! (first poll, waiting poll, give up, abandon) are `RecvOp`'s, the receive
//! side of the state table in `chan`. The checks and the transfer at the
//! start of every receive are here too, shared with the `Stream` receive.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::future::FusedFuture;

use super::chan::{RecvSlot, State};
use super::handle::{Handle, ReceiverSide};
use super::waiter::{receivers, Waiting};
use crate::error::{RecvError, TryRecvError};
use crate::scope::current_is_cancelled;
use crate::sync::MutexGuard;
use crate::wakeups::Wakeups;

/// A receiver's handle, as the receive operation sees it.
pub(super) type ReceiverHandle<T> = Handle<T, ReceiverSide>;

/// The checks at the start of every asynchronous receive, under the
/// lock, in SPEC S12's order: the current scope (C3; unless
/// `check_scope` is off, for the blocking API), then this handle.
/// Checked under the lock, so a cancel that happened before a peer's
/// change we are about to see is seen too (C5).
#[inline]
pub(super) fn admit<T>(receiver: &ReceiverHandle<T>, check_scope: bool) -> Result<(), RecvError> {
    if check_scope && current_is_cancelled() {
        return Err(RecvError::Cancelled);
    }
    if receiver.closed_under_lock() {
        return Err(RecvError::Closed);
    }
    Ok(())
}

/// The transfer of an admitted receive; `Ok(None)`: nothing to take yet.
pub(super) fn transfer<T>(
    state: &mut State<T>,
    wake: &mut Wakeups,
) -> Result<Option<T>, RecvError> {
    match state.try_recv(wake) {
        Ok(item) => Ok(Some(item)),
        Err(TryRecvError::Empty) => Ok(None),
        Err(TryRecvError::EndOfStream) => Err(RecvError::EndOfStream),
        Err(TryRecvError::Closed) => unreachable!("the handle is checked first"),
    }
}

/// Wakes what a receive collected, and hands over `item`. If a waker
/// panics, `item` goes back to the head of the stream first (where the
/// next receive gets it), so the panic loses nothing.
#[inline]
pub(super) fn wake_keeping<T>(receiver: &ReceiverHandle<T>, wake: Wakeups, item: T) -> T {
    if wake.is_empty() {
        return item;
    }
    wake_keeping_slow(receiver, wake, item)
}

#[inline(never)]
fn wake_keeping_slow<T>(receiver: &ReceiverHandle<T>, wake: Wakeups, item: T) -> T {
    match wake.wake_all_catching() {
        Ok(()) => item,
        Err(panic) => {
            let mut wake = Wakeups::default();
            let orphan = receiver.chan().lock().return_to_head(item, &mut wake);
            drop(orphan);
            drop(wake.wake_all_catching());
            std::panic::resume_unwind(panic)
        }
    }
}

/// One receive on the handle `H` (borrowed or owned): its `Drop` puts an
/// item already committed to an abandoned receive back at the head.
pub(super) struct RecvCall<H: Borrow<ReceiverHandle<T>>, T> {
    handle: H,
    op: RecvOp,
    item: std::marker::PhantomData<fn() -> T>,
}

impl<H: Borrow<ReceiverHandle<T>>, T> RecvCall<H, T> {
    /// A receive; `blocking`: the blocking API's, which ignores scopes.
    pub(super) fn new(handle: H, blocking: bool) -> Self {
        RecvCall {
            handle,
            op: RecvOp::new(blocking),
            item: std::marker::PhantomData,
        }
    }

    #[inline]
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        self.op.poll(self.handle.borrow(), cx)
    }

    /// A blocked receive gives up now (a blocking timeout ran out); see
    /// `RecvOp::give_up`.
    pub(super) fn give_up(&mut self) -> Option<Result<T, RecvError>> {
        self.op.give_up(self.handle.borrow())
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("waiting", &self.op.waiting.is_some())
            .finish_non_exhaustive()
    }
}

impl<H: Borrow<ReceiverHandle<T>>, T> Drop for RecvCall<H, T> {
    /// The one place a receive is abandoned.
    fn drop(&mut self) {
        self.op.abandon(self.handle.borrow());
    }
}

/// The future of [`MemoryReceiver::recv`](crate::MemoryReceiver::recv).
///
/// See the cancel-safety notes on
/// [`MemoryReceiver::recv`](crate::MemoryReceiver::recv). Polled again after
/// it completed, it starts a new receive.
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T>(RecvCall<&'a ReceiverHandle<T>, T>);

impl<'a, T> RecvFuture<'a, T> {
    pub(super) fn new(handle: &'a ReceiverHandle<T>, blocking: bool) -> Self {
        RecvFuture(RecvCall::new(handle, blocking))
    }

    /// See [`RecvCall::give_up`].
    pub(super) fn give_up(&mut self) -> Option<Result<T, RecvError>> {
        self.0.give_up()
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_recv(cx)
    }
}

impl<T> FusedFuture for RecvFuture<'_, T> {
    /// Always `false`: polled again after it completed, a `RecvFuture` starts a
    /// new receive, so it never has to be left alone (in `select!` loops it
    /// can be polled for ever).
    fn is_terminated(&self) -> bool {
        false
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("RecvFuture", f)
    }
}

/// The future of [`MemoryReceiver::recv_owned`](crate::MemoryReceiver::recv_owned):
/// a [`RecvFuture`] that owns its handle. Like `RecvFuture`, polled again after it
/// completed, it starts a new receive.
#[must_use = "futures do nothing unless polled"]
pub struct OwnedRecvFuture<T>(RecvCall<ReceiverHandle<T>, T>);

impl<T> OwnedRecvFuture<T> {
    pub(super) fn new(handle: ReceiverHandle<T>) -> Self {
        OwnedRecvFuture(RecvCall::new(handle, false))
    }
}

impl<T> Future for OwnedRecvFuture<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_recv(cx)
    }
}

impl<T> FusedFuture for OwnedRecvFuture<T> {
    /// Always `false`, as for [`RecvFuture`].
    fn is_terminated(&self) -> bool {
        false
    }
}

impl<T> fmt::Debug for OwnedRecvFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("OwnedRecvFuture", f)
    }
}

/// The state of one receive: the steps of the state table in `chan`.
///
/// Mirrors `SendOp` (in `send.rs`) step for step (first poll, waiting
/// poll, abandon); the stream wing's docs say what the two share and why the
/// rest stays apart.
struct RecvOp {
    /// While blocked: our slot in the stream's receiver line and our
    /// registration with the scope. `None` on the fast path, which then has
    /// nothing to drop.
    /// `ManuallyDrop`: [`RecvCall`]'s `Drop`, the one owner, calls
    /// `abandon`, which takes it; a field that dropped itself would cost an
    /// out-of-line call of its drop glue on every operation, the fast
    /// path's included.
    waiting: ManuallyDrop<Option<Waiting>>,
    /// `recv_blocking`: the scope is the root, whatever is current.
    ignore_scope: bool,
}

impl RecvOp {
    fn new(ignore_scope: bool) -> Self {
        RecvOp {
            waiting: ManuallyDrop::new(None),
            ignore_scope,
        }
    }

    fn poll<T>(
        &mut self,
        receiver: &ReceiverHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        if self.waiting.is_some() {
            self.poll_waiting(receiver, cx)
        } else {
            self.poll_start(receiver, cx)
        }
    }

    /// First poll: the checks of SPEC S12, then the transfer or a slot in line.
    fn poll_start<T>(
        &mut self,
        receiver: &ReceiverHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let mut state = receiver.chan().lock();
        if let Err(err) = admit(receiver, !self.ignore_scope) {
            return Poll::Ready(Err(err));
        }
        match state.try_unbuffer() {
            Some(item) => {
                drop(state);
                Poll::Ready(Ok(item))
            }
            None => self.poll_start_further(receiver, state, cx),
        }
    }

    /// [`poll_start`](RecvOp::poll_start) past its common case: senders to
    /// take from or refill from, the end of the stream, or a wait in line.
    #[inline(never)]
    fn poll_start_further<T>(
        &mut self,
        receiver: &ReceiverHandle<T>,
        mut state: MutexGuard<'_, State<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let mut wake = Wakeups::default();
        match transfer(&mut state, &mut wake) {
            Ok(Some(item)) => {
                drop(state);
                Poll::Ready(Ok(wake_keeping(receiver, wake, item)))
            }
            Err(err) => Poll::Ready(Err(err)),
            Ok(None) => {
                let scope = Waiting::scope(self.ignore_scope);
                let key = state.receivers.push_back(RecvSlot::Waiting {
                    waker: Waiting::first_waker(self.ignore_scope, cx),
                    scope: scope.clone(),
                    handle: receiver.id(),
                });
                let mut stale = None;
                let (state, waits) = if self.ignore_scope {
                    (state, true)
                } else {
                    let chan = receiver.chan();
                    chan.keep_waker(state, receivers, key, cx.waker(), &mut stale)
                };
                drop(state);
                drop(stale);
                if Waiting::record(&mut self.waiting, key, scope, wake, cx) || !waits {
                    // Cancelled, or settled by a peer, while we queued:
                    // settle it under the lock.
                    return self.poll(receiver, cx);
                }
                Poll::Pending
            }
        }
    }

    fn poll_waiting<T>(
        &mut self,
        receiver: &ReceiverHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let waiting = self.waiting.as_mut().expect("poll_waiting while waiting");
        let key = waiting.key;
        let cancelled = waiting.scope.register_and_check(cx);
        // Declared first, dropped last: a waker is user code, not run under
        // the lock.
        let mut stale = None;
        let state = receiver.chan().lock();
        let (state, waits) =
            receiver
                .chan()
                .keep_waker(state, receivers, key, cx.waker(), &mut stale);
        if waits && !cancelled {
            return Poll::Pending;
        }
        // Settled by a peer, or cancelled before any item was committed.
        let waiting = self.waiting.take().expect("poll_waiting while waiting");
        Poll::Ready(settle(receiver, state, waiting))
    }

    /// A blocked receive gives up now (a blocking timeout ran out), exactly
    /// as if its scope had been cancelled: `Cancelled`, unless an item was
    /// committed to it (returned) or a peer aborted it first. `None` if the
    /// receive is not blocked.
    fn give_up<T>(&mut self, receiver: &ReceiverHandle<T>) -> Option<Result<T, RecvError>> {
        let waiting = self.waiting.take()?;
        let state = receiver.chan().lock();
        Some(settle(receiver, state, waiting))
    }

    /// Cleans up a receive whose future is dropped: an item already committed
    /// to it goes back to the head of the stream (SPEC S8). Inline: a future
    /// that never waited has nothing to clean up.
    #[inline]
    fn abandon<T>(&mut self, receiver: &ReceiverHandle<T>) {
        // Checked and taken here, inline: a future that never waited pays
        // one test (the field is `ManuallyDrop`, so nothing else runs).
        if let Some(waiting) = self.waiting.take() {
            Self::abandon_waiting(receiver, waiting);
        }
    }

    #[inline(never)]
    fn abandon_waiting<T>(receiver: &ReceiverHandle<T>, waiting: Waiting) {
        let mut wake = Wakeups::default();
        let mut state = receiver.chan().lock();
        let (orphan, settled) = match state.receivers.remove(waiting.key) {
            RecvSlot::Delivered(item) => {
                // Back at the head first, so that the stream does not end
                // in between (SPEC S12).
                let orphan = state.return_to_head(item, &mut wake);
                state.collected(&mut wake);
                (orphan, None)
            }
            // Its waker is dropped after unlocking.
            slot => (None, Some(slot)),
        };
        drop(state);
        // Every receiver is closed: the stream drops the item (SPEC S5).
        let _drop_after_waking = (orphan, settled, waiting);
        wake.wake_all();
    }
}

/// The end of a blocked receive that stops waiting (settled by a peer, its
/// scope cancelled, or given up): frees its slot and returns what the slot
/// holds — a committed item, `Cancelled` if nothing was ever committed, or a
/// peer's abort. Unlocks, then deregisters from the scope.
fn settle<T>(
    receiver: &ReceiverHandle<T>,
    mut state: MutexGuard<'_, State<T>>,
    waiting: Waiting,
) -> Result<T, RecvError> {
    let slot = state.receivers.remove(waiting.key);
    let mut wake = Wakeups::default();
    if let RecvSlot::Delivered(_) = slot {
        state.collected(&mut wake);
    }
    drop(state);
    drop(waiting);
    match slot {
        RecvSlot::Delivered(item) => Ok(wake_keeping(receiver, wake, item)),
        RecvSlot::Waiting { .. } => Err(RecvError::Cancelled),
        RecvSlot::Aborted(err) => Err(err),
    }
}
