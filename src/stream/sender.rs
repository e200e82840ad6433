//! The sending half: [`MemorySender`] and its [`Send`] future.

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::future::FusedFuture;

use super::blocking::{block_on, block_on_until};
use super::chan::{
    broken_watchers, senders, Chan, HandleId, SendAbort, SendRefusal, SendSlot, State, Waiting,
    WeakChan,
};
use crate::error::{Cancelled, SendError, SendTimeoutError, TrySendError};
use crate::scope::{current_is_cancelled, ScopeRef, ScopeWait};
use crate::statistics::Statistics;
use crate::sync::{Arc, AtomicBool, MutexGuard, Ordering};
use crate::wakeups::Wakeups;

/// The sending handle of a memory object stream.
///
/// Clone it to get another, independently closable handle. The stream's
/// receivers see the end of the stream once *every* sender handle is closed
/// (explicitly, or by being dropped).
pub struct MemorySender<T> {
    chan: Arc<Chan<T>>,
    id: HandleId,
    /// ORDERING: written only under the stream lock; read under it by every
    /// operation, and without it only by [`MemorySender::is_closed`].
    closed: AtomicBool,
}

impl<T> MemorySender<T> {
    pub(crate) fn from_chan(chan: Arc<Chan<T>>, id: HandleId) -> Self {
        MemorySender {
            chan,
            id,
            closed: AtomicBool::new(false),
        }
    }

    /// Sends `item`, waiting for a receiver or for buffer room.
    ///
    /// In a stream of capacity 0 this completes only once a receiver has taken
    /// the item. Fails with, in this order of checks: `Cancelled(item)` if the
    /// current cancel scope is effectively cancelled (checked first, every
    /// time, even if a receiver is waiting); `Closed(item)` if this handle is
    /// closed; `Broken(item)` if every receiver is closed.
    ///
    /// # Cancel safety
    ///
    /// The operation has one point of no return: the moment a receiver takes
    /// the item. Before it, scope cancellation wins and the item comes back in
    /// [`SendError::Cancelled`]; after it, the send returns `Ok(())` even if
    /// the scope was cancelled meanwhile. Dropping the future before the item
    /// is taken withdraws the item (it is dropped, and no receiver can get it);
    /// dropping it after changes nothing.
    ///
    /// ```
    /// use scopestream::memory_stream;
    ///
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = memory_stream(1);
    /// tx.send("hello").await.unwrap();
    /// assert_eq!(rx.recv().await, Ok("hello"));
    /// # });
    /// ```
    pub fn send(&self, item: T) -> Send<'_, T> {
        Send {
            sender: self,
            op: SendOp::new(item, false),
        }
    }

    /// Sends `item` if that can be done at once.
    ///
    /// The item goes to the oldest waiting receiver that is still deliverable
    /// (its scope not effectively cancelled), else into the buffer if there is
    /// room. Checks, in order: `Closed` (this handle), `Broken` (no receiver
    /// open), `Full`. Not a checkpoint: the current scope is ignored.
    ///
    /// ```
    /// use scopestream::{memory_stream, TrySendError};
    ///
    /// let (tx, rx) = memory_stream(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Broken(3)));
    /// ```
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(TrySendError::Closed(item));
        }
        match state.try_buffer(item) {
            Ok(()) => Ok(()),
            Err(item) => Self::try_send_further(state, item),
        }
    }

    /// [`try_send`](MemorySender::try_send) past its common case: waiting
    /// receivers, listeners to tell, a full buffer, or no receiver left.
    #[inline(never)]
    fn try_send_further(
        mut state: MutexGuard<'_, State<T>>,
        item: T,
    ) -> Result<(), TrySendError<T>> {
        let mut wake = Wakeups::default();
        let result = state.try_send(item, &mut wake);
        drop(state);
        wake.wake_all();
        result.map_err(|(refusal, item)| match refusal {
            SendRefusal::Broken => TrySendError::Broken(item),
            SendRefusal::Full => TrySendError::Full(item),
        })
    }

    /// Sends `item`, parking the thread until it is taken or buffered.
    ///
    /// Ignores cancel scopes. A `close()` of this handle, or the last receiver
    /// closing, on another thread wakes it with `Closed(item)` or
    /// `Broken(item)`. Do not call it from asynchronous code: it blocks the
    /// executor's thread.
    pub fn send_blocking(&self, item: T) -> Result<(), SendError<T>> {
        block_on(Send {
            sender: self,
            op: SendOp::new(item, true),
        })
    }

    /// Sends `item`, parking the thread for at most `timeout` until it is
    /// taken or buffered; as [`send_blocking`](MemorySender::send_blocking)
    /// otherwise (scopes are ignored). A timeout too large for the clock
    /// waits for ever.
    ///
    /// A zero timeout tries once: the item goes to a receiver waiting now or
    /// into free buffer room, as with [`try_send`](MemorySender::try_send).
    ///
    /// # Cancel safety
    ///
    /// When the time runs out the send gives up exactly as a cancelled one
    /// does: the item comes back in [`SendTimeoutError::Timeout`] and
    /// nothing changed in the stream — unless a receiver took it first, in
    /// which case the send returns `Ok(())`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use scopestream::{memory_stream, SendTimeoutError};
    ///
    /// let (tx, rx) = memory_stream(1);
    /// tx.send_timeout(1, Duration::from_millis(10)).unwrap();
    /// let full = tx.send_timeout(2, Duration::from_millis(10));
    /// assert_eq!(full, Err(SendTimeoutError::Timeout(2)));
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(item, Instant::now().checked_add(timeout))
    }

    /// [`send_timeout`](MemorySender::send_timeout) until an instant: a
    /// deadline already past tries once.
    pub fn send_deadline(&self, item: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(item, Some(deadline))
    }

    fn send_until(&self, item: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut send = Send {
            sender: self,
            op: SendOp::new(item, true),
        };
        let result = match block_on_until(Pin::new(&mut send), deadline) {
            Some(result) => result,
            None => send.op.give_up(self).expect("a pending send is blocked"),
        };
        result.map_err(|err| match err {
            // The blocking API waits in the root, which is never cancelled:
            // `Cancelled` here can only be the timeout's giving up.
            SendError::Cancelled(item) => SendTimeoutError::Timeout(item),
            SendError::Closed(item) => SendTimeoutError::Closed(item),
            SendError::Broken(item) => SendTimeoutError::Broken(item),
        })
    }

    /// Closes this handle (only this clone). Blocked sends on it return
    /// `Closed(item)`; later operations on it return `Closed`. If it was the
    /// last open sender, receivers drain the buffer and then see the end of the
    /// stream. Idempotent; dropping the handle closes it too.
    ///
    /// ```
    /// use scopestream::{memory_stream, TryRecvError};
    ///
    /// let (tx, rx) = memory_stream(4);
    /// let tx2 = tx.clone();
    /// tx.try_send(1).unwrap();
    /// tx.close();
    /// assert!(tx.is_closed() && !tx2.is_closed());
    /// drop(tx2); // the last sender
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::EndOfStream));
    /// ```
    pub fn close(&self) {
        let mut wake = Wakeups::default();
        let mut state = self.chan.lock();
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        self.closed.store(true, Ordering::Release);
        state.close_sender(self.id, &mut wake);
        drop(state);
        wake.wake_all();
    }

    /// Whether this handle is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A consistent snapshot of the stream's state.
    pub fn statistics(&self) -> Statistics {
        self.chan.lock().statistics()
    }

    /// The number of items in the buffer now. It can exceed the capacity by
    /// items that a dropped receive gave back (SPEC S8). Cheaper than
    /// [`statistics`](MemorySender::statistics), which also counts waiters.
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream(4);
    /// tx.try_send(1).unwrap();
    /// assert_eq!((tx.len(), rx.len()), (1, 1));
    /// assert!(!rx.is_empty() && !rx.is_full());
    /// assert_eq!(rx.capacity(), Some(4));
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty now (`len() == 0`). A rendezvous stream
    /// (capacity 0) buffers nothing, so it is empty — and full, as in
    /// crossbeam — except while it holds an item that a dropped receive gave
    /// back (see [`len`](Self::len)): then it is not empty until that item
    /// is received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full now: a `try_send` would succeed only by
    /// handing its item to a waiting receiver. Never for an unbounded stream.
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|cap| self.len() >= cap)
    }

    /// The buffer's size as created: `Some(0)` for a rendezvous, `None` for an
    /// unbounded stream. Takes no lock.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether every receiver is closed, so that no item can ever be
    /// received again (every send fails with `Broken`). Final once `true`.
    /// This handle's own state is [`is_closed`](MemorySender::is_closed).
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream::<u8>(0);
    /// assert!(!tx.is_broken());
    /// drop(rx);
    /// assert!(tx.is_broken());
    /// ```
    #[doc(alias = "is_disconnected")]
    pub fn is_broken(&self) -> bool {
        self.chan.lock().is_broken()
    }

    /// Completes once every receiver is closed — what tokio's
    /// `Sender::closed` waits for, named here after the `Broken` error every
    /// send then fails with (this handle's own close is
    /// [`close`](MemorySender::close)). Use it to stop producing for a
    /// consumer that has gone.
    ///
    /// A checkpoint, like every asynchronous operation: fails with
    /// [`Cancelled`] if the current scope is effectively cancelled, when
    /// first polled or while it waits, unless the stream is broken already.
    ///
    /// # Cancel safety
    ///
    /// Nothing is taken or committed: dropping the future, or its failing
    /// with `Cancelled`, changes nothing in the stream.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = scopestream::memory_stream::<u8>(0);
    /// let consumer = async move {
    ///     drop(rx); // the consumer goes away
    /// };
    /// let (gone, ()) = futures::join!(tx.broken(), consumer);
    /// assert_eq!(gone, Ok(()));
    /// # });
    /// ```
    #[doc(alias = "closed")]
    pub fn broken(&self) -> WaitBroken<'_, T> {
        WaitBroken {
            sender: self,
            watching: None,
        }
    }

    /// Like [`send`](MemorySender::send), but the future owns a clone of
    /// this handle, so it is `'static` when `T` is and can be spawned:
    /// `tokio::spawn(tx.send_owned(item))`. As a clone, it keeps the stream
    /// open while it lives, and closing *this* handle does not stop it; a
    /// clone of a closed handle is closed, so on a closed handle it fails
    /// with `Closed(item)`.
    ///
    /// # Cancel safety
    ///
    /// As for [`send`](MemorySender::send): before the item is taken,
    /// cancellation wins and the item comes back in the error; dropping the
    /// future before then withdraws the item.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = scopestream::memory_stream(0);
    /// let send: scopestream::OwnedSend<u32> = tx.send_owned(7);
    /// drop(tx); // the future holds its own handle
    /// let (sent, got) = futures::join!(send, rx.recv());
    /// assert_eq!((sent, got), (Ok(()), Ok(7)));
    /// # });
    /// ```
    pub fn send_owned(&self, item: T) -> OwnedSend<T> {
        OwnedSend {
            sender: self.clone(),
            op: SendOp::new(item, false),
        }
    }

    /// A handle that does not keep the stream open: while it is the only
    /// kind left, receivers see the end of the stream. As in tokio, flume and
    /// async-channel, an actor holds one to avoid a cycle of handles.
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream::<u8>(1);
    /// let weak = tx.downgrade();
    /// let again = weak.upgrade().expect("a sender is open");
    /// drop((tx, again));
    /// assert!(weak.upgrade().is_none());
    /// assert_eq!(rx.try_recv(), Err(scopestream::TryRecvError::EndOfStream));
    /// ```
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender {
            chan: WeakChan::new(&self.chan),
        }
    }

    /// Whether `other` is a handle of the same stream.
    ///
    /// ```
    /// let (tx, _rx) = scopestream::memory_stream::<u8>(0);
    /// let (other, _orx) = scopestream::memory_stream::<u8>(0);
    /// assert!(tx.same_stream(&tx.clone()) && !tx.same_stream(&other));
    /// ```
    pub fn same_stream(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for MemorySender<T> {
    /// Another handle to the same stream; a clone of a closed handle is closed.
    fn clone(&self) -> Self {
        let mut state = self.chan.lock();
        let closed = self.closed.load(Ordering::Relaxed);
        let id = if closed {
            state.new_handle_id()
        } else {
            state.open_sender()
        };
        drop(state);
        MemorySender {
            chan: Arc::clone(&self.chan),
            id,
            closed: AtomicBool::new(closed),
        }
    }
}

impl<T> Drop for MemorySender<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for MemorySender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySender")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The future of [`MemorySender::send`].
///
/// It owns the item until a receiver takes it; see the cancel-safety notes on
/// [`MemorySender::send`]. Polling it again after it completed panics, as the
/// item is gone.
#[must_use = "futures do nothing unless polled; dropping this one withdraws the item"]
pub struct Send<'a, T> {
    sender: &'a MemorySender<T>,
    op: SendOp<T>,
}

/// The state of one send, shared by [`Send`] and `send_blocking`.
///
/// Mirrors `RecvOp` (in `receiver.rs`) step for step (first poll, waiting
/// poll, abandon); the stream wing's docs say what the two share and why the
/// rest stays apart.
pub(super) struct SendOp<T> {
    /// The item until the send starts; afterwards it lives in the slot.
    item: Option<T>,
    /// While blocked: our slot in the stream's sender line and our
    /// registration with the scope. `None` on the fast path, which then has
    /// nothing to drop.
    /// `ManuallyDrop`: every owner's `Drop` calls `abandon`, which takes
    /// it; a field that dropped itself would cost an out-of-line call of
    /// its drop glue on every operation, the fast path's included.
    waiting: ManuallyDrop<Option<Waiting>>,
    /// `send_blocking`: the scope is the root, whatever is current.
    ignore_scope: bool,
}

impl<T> Unpin for SendOp<T> {}

impl<T> SendOp<T> {
    pub(super) fn new(item: T, ignore_scope: bool) -> Self {
        SendOp {
            item: Some(item),
            waiting: ManuallyDrop::new(None),
            ignore_scope,
        }
    }

    pub(super) fn poll(
        &mut self,
        sender: &MemorySender<T>,
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
        sender: &MemorySender<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let item = self.item.take().expect("`Send` polled after completion");
        let mut state = sender.chan.lock();
        // Checked under the lock, so a cancel that happened before a peer's
        // change we are about to see is seen too (C5).
        if !self.ignore_scope && current_is_cancelled() {
            return Poll::Ready(Err(SendError::Cancelled(item)));
        }
        if sender.closed.load(Ordering::Relaxed) {
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
        sender: &MemorySender<T>,
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
                    handle: sender.id,
                });
                // A `Stream` receive can take the item now.
                state.sender_waiting(&mut wake);
                let mut stale = None;
                let (state, waits) = if self.ignore_scope {
                    (state, true)
                } else {
                    let chan = &sender.chan;
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
        sender: &MemorySender<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let waiting = self.waiting.as_mut().expect("poll_waiting while waiting");
        let key = waiting.key;
        let cancelled = waiting.scope.register_and_check(cx);
        // Declared first, dropped last: a waker is user code, not run under
        // the lock.
        let mut stale = None;
        let state = sender.chan.lock();
        let (mut state, waits) =
            sender
                .chan
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
    pub(super) fn follow_current_scope(&mut self, sender: &MemorySender<T>) {
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        if self.ignore_scope || waiting.scope.is_current() {
            return;
        }
        let scope = ScopeRef::current();
        let mut state = sender.chan.lock();
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
    fn give_up(&mut self, sender: &MemorySender<T>) -> Option<Result<(), SendError<T>>> {
        let waiting = self.waiting.take()?;
        let slot = sender.chan.lock().senders.remove(waiting.key);
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
    pub(super) fn abandon(&mut self, sender: &MemorySender<T>) {
        // Checked and taken here, inline: a future that never waited pays
        // one test (the field is `ManuallyDrop`, so nothing else runs).
        if let Some(waiting) = self.waiting.take() {
            Self::abandon_waiting(sender, waiting);
        }
    }

    #[inline(never)]
    fn abandon_waiting(sender: &MemorySender<T>, waiting: Waiting) {
        let slot = sender.chan.lock().senders.remove(waiting.key);
        drop(waiting);
        // The withdrawn item (if not taken) drops here, outside the lock.
        drop(slot);
    }
}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.op.poll(this.sender, cx)
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        self.op.abandon(self.sender);
    }
}

impl<T> FusedFuture for Send<'_, T> {
    /// `true` once the send has completed.
    fn is_terminated(&self) -> bool {
        self.op.is_terminated()
    }
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("started", &self.op.item.is_none())
            .field("waiting", &self.op.waiting.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`MemorySender::send_owned`]: a [`Send`] that owns its
/// handle.
#[must_use = "futures do nothing unless polled; dropping this one withdraws the item"]
pub struct OwnedSend<T> {
    sender: MemorySender<T>,
    op: SendOp<T>,
}

impl<T> Future for OwnedSend<T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.op.poll(&this.sender, cx)
    }
}

impl<T> FusedFuture for OwnedSend<T> {
    /// `true` once the send has completed.
    fn is_terminated(&self) -> bool {
        self.op.is_terminated()
    }
}

impl<T> Drop for OwnedSend<T> {
    fn drop(&mut self) {
        self.op.abandon(&self.sender);
    }
}

impl<T> fmt::Debug for OwnedSend<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSend")
            .field("started", &self.op.item.is_none())
            .field("waiting", &self.op.waiting.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`MemorySender::broken`].
#[must_use = "futures do nothing unless polled"]
pub struct WaitBroken<'a, T> {
    sender: &'a MemorySender<T>,
    /// While it waits: its slot in the stream's line of `broken()` futures,
    /// and its registration with the scope of its latest poll.
    watching: Option<Waiting>,
}

impl<T> WaitBroken<'_, T> {
    /// Leaves the line, if in it; the waker and the registration are
    /// dropped after the lock.
    fn stop_watching(&mut self) {
        if let Some(watching) = self.watching.take() {
            let waker = self.sender.chan.lock().unwatch_broken(watching.key);
            drop((waker, watching));
        }
    }
}

impl<T> Future for WaitBroken<'_, T> {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.sender.chan.lock();
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
        let key = state.watch_broken(this.watching.as_ref().map(|w| w.key), this.sender.id);
        let mut stale = None;
        let (state, watching) =
            this.sender
                .chan
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

/// A sender that does not keep the stream open: see
/// [`MemorySender::downgrade`].
pub struct WeakSender<T> {
    chan: WeakChan<T>,
}

impl<T> WeakSender<T> {
    /// A new open sender, if the stream still has one open (the end of the
    /// stream, once seen, is final).
    pub fn upgrade(&self) -> Option<MemorySender<T>> {
        let (chan, id) = self.chan.upgrade(State::reopen_sender)?;
        Some(MemorySender::from_chan(chan, id))
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> fmt::Debug for WeakSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSender").finish_non_exhaustive()
    }
}
