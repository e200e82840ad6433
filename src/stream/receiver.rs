//! The receiving half: [`MemoryReceiver`], its [`Recv`] future, and its
//! [`Stream`] implementation.
//!
//! A [`Recv`] waits in the stream's receiver line and can be committed to
//! (SPEC C5). A `Stream` receive cannot: nothing tells the handle when a
//! `next()` future is dropped, so it waits as a *listener* instead (see the
//! `chan` module docs) and takes an item only while it is being polled.

use std::fmt;
use std::future::Future;
use std::iter::FusedIterator;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::future::FusedFuture;
use futures_core::stream::{FusedStream, Stream};

use super::blocking::{block_on, block_on_until};
use super::chan::{listeners, receivers, Chan, HandleId, RecvSlot, State, Waiting, WeakChan};
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::scope::current_is_cancelled;
use crate::statistics::Statistics;
use crate::sync::{Arc, AtomicBool, MutexGuard, Ordering};
use crate::wakeups::Wakeups;

/// The receiving handle of a memory object stream.
///
/// Clone it to get another, independently closable handle; the clones
/// compete for items (each item goes to exactly one of them). Senders see the
/// stream as broken once *every* receiver handle is closed, and at that moment
/// the buffered items are dropped.
///
/// # As a `Stream`
///
/// It yields items until the end of the stream or until this handle is
/// closed (then it is terminated, see [`FusedStream`]), and yields `None`
/// while the current scope is effectively cancelled;
/// [`recv`](MemoryReceiver::recv) tells those apart. Each `poll_next` is a
/// checkpoint of the scope current *at that poll*.
///
/// A pending `next()` does not hold a place in the receiver line, so
/// dropping it (a `select!` branch that lost, a timeout) leaves nothing
/// behind: no item is ever committed to it, statistics do not count it, and
/// the handle behaves as if it had never been called. The price is that, as
/// with async-channel's and tokio's receivers, a pending `next()` is woken
/// when an item may be there and takes it at its next poll: a [`Recv`] future
/// waiting at the same time is served first, and a rendezvous sender
/// completes when that poll takes its item. With items ready (a buffer that
/// is rarely empty) a `next()` loop costs what a `recv()` loop does; when the
/// consumer keeps up with the producer, every item costs one more hand-shake
/// than a committed receive (`cargo bench --bench core -- "consumer loop"`
/// measured 1.8× a `recv()` loop per item for a rendezvous, 1.3× for a buffer
/// of 1, and 0.8× for a buffer of 64), so a hot rendezvous consumer is better
/// written `while let Ok(x) = rx.recv().await`.
///
/// ```
/// use futures::StreamExt;
/// use scopestream::memory_stream;
///
/// # futures::executor::block_on(async {
/// let (tx, mut rx) = memory_stream(4);
/// for i in 0..3 {
///     tx.send(i).await.unwrap();
/// }
/// drop(tx);
/// assert_eq!(rx.by_ref().collect::<Vec<_>>().await, [0, 1, 2]);
/// # });
/// ```
pub struct MemoryReceiver<T> {
    chan: Arc<Chan<T>>,
    id: HandleId,
    /// ORDERING: as `MemorySender::closed`.
    closed: AtomicBool,
    /// The `Stream` receive, while it listens between polls: its slot in
    /// the stream's listener line, and its registration with the scope of
    /// its latest poll.
    listening: Option<Waiting>,
    /// `poll_next` returned `None` for good: end of stream, or handle closed.
    terminated: bool,
}

impl<T> MemoryReceiver<T> {
    pub(crate) fn from_chan(chan: Arc<Chan<T>>, id: HandleId) -> Self {
        MemoryReceiver {
            chan,
            id,
            closed: AtomicBool::new(false),
            listening: None,
            terminated: false,
        }
    }

    /// Receives the next item, waiting for one if needed.
    ///
    /// Fails with, in this order of checks: `Cancelled` if the current cancel
    /// scope is effectively cancelled (checked first, every time, even if an
    /// item is ready); `Closed` if this handle is closed; `EndOfStream` once
    /// every sender is closed and the buffer is drained.
    ///
    /// While it waits, an item is given to it only if its scope is not
    /// effectively cancelled *at that moment* (SPEC C6): a receive behind a
    /// shield is always deliverable, however the scopes outside stand.
    ///
    /// # Cancel safety
    ///
    /// The point of no return is the moment a sender commits an item to this
    /// receive. Before it, cancellation wins and nothing changes; after it, the
    /// receive returns the item even if its scope was cancelled meanwhile (the
    /// next checkpoint reports the cancellation). Dropping the future after an
    /// item was committed puts the item back at the head of the stream, where
    /// the next receive gets it; so dropping is always safe (for example in
    /// `select!`).
    ///
    /// ```
    /// use scopestream::{memory_stream, RecvError};
    ///
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = memory_stream(1);
    /// tx.send(7).await.unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().await, Ok(7));
    /// assert_eq!(rx.recv().await, Err(RecvError::EndOfStream));
    /// # });
    /// ```
    pub fn recv(&self) -> Recv<'_, T> {
        Recv {
            receiver: self,
            op: RecvOp::new(false),
        }
    }

    /// Receives an item if one is available at once.
    ///
    /// First moves the oldest waiting sender's item into the room it frees, so
    /// freed room goes to waiting senders before any new `try_send`. Checks,
    /// in order: `Closed` (this handle), an item, `EndOfStream`, `Empty`. Not
    /// a checkpoint: the current scope is ignored.
    ///
    /// ```
    /// use scopestream::{memory_stream, TryRecvError};
    ///
    /// let (tx, rx) = memory_stream(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send('a').unwrap();
    /// assert_eq!(rx.try_recv(), Ok('a'));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.chan.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(TryRecvError::Closed);
        }
        match state.try_unbuffer() {
            Some(item) => Ok(item),
            None => self.try_recv_further(state),
        }
    }

    /// [`try_recv`](MemoryReceiver::try_recv) past its common case: waiting
    /// senders to take from or refill from, an empty buffer, or the end.
    #[inline(never)]
    fn try_recv_further(&self, mut state: MutexGuard<'_, State<T>>) -> Result<T, TryRecvError> {
        let mut wake = Wakeups::default();
        let result = state.try_recv(&mut wake);
        drop(state);
        result.map(|item| self.wake_keeping(wake, item))
    }

    /// The checks at the start of every asynchronous receive, under the
    /// lock, in SPEC S12's order: the current scope (C3; unless
    /// `check_scope` is off, for the blocking API), then this handle.
    /// Checked under the lock, so a cancel that happened before a peer's
    /// change we are about to see is seen too (C5).
    #[inline]
    fn admit(&self, check_scope: bool) -> Result<(), RecvError> {
        if check_scope && current_is_cancelled() {
            return Err(RecvError::Cancelled);
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(RecvError::Closed);
        }
        Ok(())
    }

    /// The transfer of an admitted receive; `Ok(None)`: nothing to take yet.
    fn transfer(state: &mut State<T>, wake: &mut Wakeups) -> Result<Option<T>, RecvError> {
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
    fn wake_keeping(&self, wake: Wakeups, item: T) -> T {
        if wake.is_empty() {
            return item;
        }
        self.wake_keeping_slow(wake, item)
    }

    #[inline(never)]
    fn wake_keeping_slow(&self, wake: Wakeups, item: T) -> T {
        match wake.wake_all_catching() {
            Ok(()) => item,
            Err(panic) => {
                let mut wake = Wakeups::default();
                let orphan = self.chan.lock().return_to_head(item, &mut wake);
                drop(orphan);
                drop(wake.wake_all_catching());
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Receives an item, parking the thread until one comes.
    ///
    /// Ignores cancel scopes. A `close()` of this handle, or the last sender
    /// closing, on another thread wakes it with `Closed` or `EndOfStream`. Do
    /// not call it from asynchronous code: it blocks the executor's thread.
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        block_on(Recv {
            receiver: self,
            op: RecvOp::new(true),
        })
    }

    /// Receives an item, parking the thread for at most `timeout` until one
    /// comes; as [`recv_blocking`](MemoryReceiver::recv_blocking) otherwise
    /// (scopes are ignored). A timeout too large for the clock waits for
    /// ever.
    ///
    /// A zero timeout tries once, as [`try_recv`](MemoryReceiver::try_recv)
    /// (a sender waiting on a rendezvous stream hands its item over).
    ///
    /// # Cancel safety
    ///
    /// When the time runs out the receive gives up exactly as a cancelled
    /// one does: nothing changed in the stream — unless an item was
    /// committed to it first, which it then returns.
    ///
    /// ```
    /// use std::time::Duration;
    /// use scopestream::{memory_stream, RecvTimeoutError};
    ///
    /// let (tx, rx) = memory_stream::<u8>(1);
    /// let nothing = rx.recv_timeout(Duration::from_millis(10));
    /// assert_eq!(nothing, Err(RecvTimeoutError::Timeout));
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// [`recv_timeout`](MemoryReceiver::recv_timeout) until an instant: a
    /// deadline already past tries once.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut recv = Recv {
            receiver: self,
            op: RecvOp::new(true),
        };
        let result = match block_on_until(Pin::new(&mut recv), deadline) {
            Some(result) => result,
            None => recv.op.give_up(self).expect("a pending receive is blocked"),
        };
        result.map_err(|err| match err {
            // The blocking API waits in the root, which is never cancelled:
            // `Cancelled` here can only be the timeout's giving up.
            RecvError::Cancelled => RecvTimeoutError::Timeout,
            RecvError::Closed => RecvTimeoutError::Closed,
            RecvError::EndOfStream => RecvTimeoutError::EndOfStream,
        })
    }

    /// A blocking iterator: each item as [`recv_blocking`](MemoryReceiver::recv_blocking)
    /// gets it, until the end of the stream or this handle's close. Also
    /// `for item in &rx`.
    ///
    /// ```
    /// let (tx, rx) = scopestream::unbounded_memory_stream();
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send_blocking(i).unwrap();
    ///     }
    /// });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the items available now, as [`try_recv`](MemoryReceiver::try_recv)
    /// gets them; it ends at the first that is not (more may come later).
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream(4);
    /// tx.try_send(1).unwrap();
    /// tx.try_send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }

    /// Like [`recv`](MemoryReceiver::recv), but the future owns a clone of
    /// this handle, so it is `'static` when `T` is and can be spawned:
    /// `tokio::spawn(rx.recv_owned())`. As a clone, it is closed by neither
    /// this handle's close nor its drop; a clone of a closed handle is
    /// closed, so on a closed handle it fails with `Closed`.
    ///
    /// # Cancel safety
    ///
    /// As for [`recv`](MemoryReceiver::recv): dropping the future after an
    /// item was committed to it puts the item back at the head of the
    /// stream.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = scopestream::memory_stream(1);
    /// let recv: scopestream::OwnedRecv<u32> = rx.recv_owned();
    /// drop(rx); // the future holds its own handle
    /// tx.send(7).await.unwrap();
    /// assert_eq!(recv.await, Ok(7));
    /// # });
    /// ```
    pub fn recv_owned(&self) -> OwnedRecv<T> {
        OwnedRecv {
            receiver: self.clone(),
            op: RecvOp::new(false),
        }
    }

    /// A handle that does not keep the stream open: while it is the only
    /// kind left, senders see the stream broken and buffered items are
    /// dropped. See [`MemorySender::downgrade`](crate::MemorySender::downgrade).
    pub fn downgrade(&self) -> WeakReceiver<T> {
        WeakReceiver {
            chan: WeakChan::new(&self.chan),
        }
    }

    /// Closes this handle (only this clone). Blocked receives on it return
    /// `Closed`; later operations on it return `Closed`. If it was the last
    /// open receiver, blocked and later sends fail with `Broken(item)` and the
    /// buffered items are dropped at once. Idempotent; dropping the handle
    /// closes it too.
    pub fn close(&self) {
        let mut wake = Wakeups::default();
        let mut state = self.chan.lock();
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        self.closed.store(true, Ordering::Release);
        let dropped = state.close_receiver(self.id, &mut wake);
        drop(state);
        wake.wake_all();
        // Items may own handles of this stream: drop them outside the lock.
        drop(dropped);
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
    /// [`statistics`](MemoryReceiver::statistics), which also counts waiters.
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

    /// Whether `other` is a handle of the same stream.
    ///
    /// ```
    /// let (tx, _rx) = scopestream::memory_stream::<u8>(0);
    /// let (other, _orx) = scopestream::memory_stream::<u8>(0);
    /// assert!(_rx.same_stream(&_rx.clone()) && !_rx.same_stream(&_orx));
    /// ```
    pub fn same_stream(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for MemoryReceiver<T> {
    /// Another handle to the same stream; a clone of a closed handle is closed.
    fn clone(&self) -> Self {
        let mut state = self.chan.lock();
        let closed = self.closed.load(Ordering::Relaxed);
        let id = if closed {
            state.new_handle_id()
        } else {
            state.open_receiver()
        };
        drop(state);
        MemoryReceiver {
            chan: Arc::clone(&self.chan),
            id,
            closed: AtomicBool::new(closed),
            listening: None,
            terminated: false,
        }
    }
}

impl<T> Drop for MemoryReceiver<T> {
    fn drop(&mut self) {
        self.stop_listening();
        self.close();
    }
}

impl<T> fmt::Debug for MemoryReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReceiver")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> MemoryReceiver<T> {
    /// Leaves the listener line, if in it; the waker and the scope
    /// registration are dropped outside the lock.
    fn stop_listening(&mut self) {
        if let Some(listening) = self.listening.take() {
            let waker = self.chan.lock().unlisten(listening.key);
            drop(waker);
            drop(listening);
        }
    }

    /// `poll_next` found nothing and is listening in slot `key`: registers
    /// with the current scope (register, then check) and waits.
    fn listen_in_scope(&mut self, key: usize, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if Waiting::listen(&mut self.listening, key, cx) {
            // Cancelled since the check under the lock; nothing was ever
            // committed to a listener, so there is nothing to settle.
            self.stop_listening();
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl<T> Stream for MemoryReceiver<T> {
    type Item = T;

    /// The checks and the transfer of [`recv`](MemoryReceiver::recv), in the
    /// scope current at this poll; `None` for any error. Finding nothing, it
    /// listens for an item without holding a place in line (see the type's
    /// docs), so a dropped `next()` future leaves nothing behind.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let mut state = this.chan.lock();
        let admitted = this.admit(true);
        if admitted.is_ok() && this.listening.is_none() {
            // The common case, as for `recv`: an item there, nobody to wake.
            if let Some(item) = state.try_unbuffer() {
                return Poll::Ready(Some(item));
            }
        }
        let mut wake = Wakeups::default();
        let result = match admitted.and_then(|()| Self::transfer(&mut state, &mut wake)) {
            Ok(Some(item)) => Ok(item),
            Err(err) => Err(err),
            Ok(None) => {
                let key = state.listen(this.listening.as_ref().map(|l| l.key), this.id);
                let mut stale = None;
                let (state, listening) =
                    this.chan
                        .keep_waker(state, listeners, key, cx.waker(), &mut stale);
                drop(state);
                drop(stale);
                wake.wake_all();
                if !listening {
                    // Told while our waker was cloned: an item may be there.
                    cx.waker().wake_by_ref();
                }
                return this.listen_in_scope(key, cx);
            }
        };
        let stale = this
            .listening
            .take()
            .map(|listening| (state.unlisten(listening.key), listening));
        drop(state);
        drop(stale);
        if matches!(result, Err(RecvError::EndOfStream | RecvError::Closed)) {
            this.terminated = true;
        }
        Poll::Ready(result.map(|item| this.wake_keeping(wake, item)).ok())
    }
}

impl<T> FusedStream for MemoryReceiver<T> {
    /// `true` once the stream has ended or this handle is closed: both are
    /// final. A `None` for a cancelled scope is not (outside that scope, or
    /// behind a shield, the stream goes on).
    fn is_terminated(&self) -> bool {
        self.terminated || self.is_closed()
    }
}

/// The future of [`MemoryReceiver::recv`].
///
/// See the cancel-safety notes on [`MemoryReceiver::recv`]. Polled again
/// after it completed, it starts a new receive.
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    receiver: &'a MemoryReceiver<T>,
    op: RecvOp,
}

/// The state of one receive, shared by [`Recv`] and `recv_blocking`.
///
/// Mirrors `SendOp` (in `sender.rs`) step for step (first poll, waiting
/// poll, abandon); the stream wing's docs say what the two share and why the
/// rest stays apart.
struct RecvOp {
    /// While blocked: our slot in the stream's receiver line and our
    /// registration with the scope. `None` on the fast path, which then has
    /// nothing to drop.
    /// `ManuallyDrop`: every owner's `Drop` calls `abandon`, which takes
    /// it; a field that dropped itself would cost an out-of-line call of
    /// its drop glue on every operation, the fast path's included.
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
        receiver: &MemoryReceiver<T>,
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
        receiver: &MemoryReceiver<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let mut state = receiver.chan.lock();
        if let Err(err) = receiver.admit(!self.ignore_scope) {
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
        receiver: &MemoryReceiver<T>,
        mut state: MutexGuard<'_, State<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let mut wake = Wakeups::default();
        match MemoryReceiver::transfer(&mut state, &mut wake) {
            Ok(Some(item)) => {
                drop(state);
                Poll::Ready(Ok(receiver.wake_keeping(wake, item)))
            }
            Err(err) => Poll::Ready(Err(err)),
            Ok(None) => {
                let scope = Waiting::scope(self.ignore_scope);
                let key = state.receivers.push_back(RecvSlot::Waiting {
                    waker: Waiting::first_waker(self.ignore_scope, cx),
                    scope: scope.clone(),
                    handle: receiver.id,
                });
                let mut stale = None;
                let (state, waits) = if self.ignore_scope {
                    (state, true)
                } else {
                    let chan = &receiver.chan;
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
        receiver: &MemoryReceiver<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let waiting = self.waiting.as_mut().expect("poll_waiting while waiting");
        let key = waiting.key;
        let cancelled = waiting.scope.register_and_check(cx);
        // Declared first, dropped last: a waker is user code, not run under
        // the lock.
        let mut stale = None;
        let state = receiver.chan.lock();
        let (state, waits) =
            receiver
                .chan
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
    fn give_up<T>(&mut self, receiver: &MemoryReceiver<T>) -> Option<Result<T, RecvError>> {
        let waiting = self.waiting.take()?;
        let state = receiver.chan.lock();
        Some(settle(receiver, state, waiting))
    }

    /// Cleans up a receive whose future is dropped: an item already committed
    /// to it goes back to the head of the stream (SPEC S8). Inline: a future
    /// that never waited has nothing to clean up.
    #[inline]
    fn abandon<T>(&mut self, receiver: &MemoryReceiver<T>) {
        // Checked and taken here, inline: a future that never waited pays
        // one test (the field is `ManuallyDrop`, so nothing else runs).
        if let Some(waiting) = self.waiting.take() {
            Self::abandon_waiting(receiver, waiting);
        }
    }

    #[inline(never)]
    fn abandon_waiting<T>(receiver: &MemoryReceiver<T>, waiting: Waiting) {
        let mut wake = Wakeups::default();
        let mut state = receiver.chan.lock();
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
    receiver: &MemoryReceiver<T>,
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
        RecvSlot::Delivered(item) => Ok(receiver.wake_keeping(wake, item)),
        RecvSlot::Waiting { .. } => Err(RecvError::Cancelled),
        RecvSlot::Aborted(err) => Err(err),
    }
}

impl<T> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.op.poll(this.receiver, cx)
    }
}

impl<T> FusedFuture for Recv<'_, T> {
    /// Always `false`: polled again after it completed, a `Recv` starts a
    /// new receive, so it never has to be left alone (in `select!` loops it
    /// can be polled for ever).
    fn is_terminated(&self) -> bool {
        false
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        self.op.abandon(self.receiver);
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("waiting", &self.op.waiting.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`MemoryReceiver::recv_owned`]: a [`Recv`] that owns its
/// handle. Like `Recv`, polled again after it completed, it starts a new
/// receive.
#[must_use = "futures do nothing unless polled"]
pub struct OwnedRecv<T> {
    receiver: MemoryReceiver<T>,
    op: RecvOp,
}

impl<T> Future for OwnedRecv<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.op.poll(&this.receiver, cx)
    }
}

impl<T> FusedFuture for OwnedRecv<T> {
    /// Always `false`, as for [`Recv`].
    fn is_terminated(&self) -> bool {
        false
    }
}

impl<T> Drop for OwnedRecv<T> {
    fn drop(&mut self) {
        self.op.abandon(&self.receiver);
    }
}

impl<T> fmt::Debug for OwnedRecv<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedRecv")
            .field("waiting", &self.op.waiting.is_some())
            .finish_non_exhaustive()
    }
}

/// A receiver that does not keep the stream open: see
/// [`MemoryReceiver::downgrade`].
pub struct WeakReceiver<T> {
    chan: WeakChan<T>,
}

impl<T> WeakReceiver<T> {
    /// A new open receiver, if the stream still has one open (a broken
    /// stream stays broken).
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream::<u8>(1);
    /// let weak = rx.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(rx);
    /// assert!(weak.upgrade().is_none() && tx.is_broken());
    /// ```
    pub fn upgrade(&self) -> Option<MemoryReceiver<T>> {
        let (chan, id) = self.chan.upgrade(State::reopen_receiver)?;
        Some(MemoryReceiver::from_chan(chan, id))
    }
}

impl<T> Clone for WeakReceiver<T> {
    fn clone(&self) -> Self {
        WeakReceiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> fmt::Debug for WeakReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakReceiver").finish_non_exhaustive()
    }
}

/// The iterator of [`MemoryReceiver::iter`]: blocks for each item.
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a MemoryReceiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv_blocking().ok()
    }
}

/// `None` only at the end of the stream or when the handle is closed, and
/// both are final.
impl<T> FusedIterator for Iter<'_, T> {}

/// The iterator of [`MemoryReceiver::try_iter`]: the items available now.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    receiver: &'a MemoryReceiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// The iterator of `MemoryReceiver`'s `into_iter`: blocks for each item,
/// owning the handle.
#[derive(Debug)]
pub struct IntoIter<T> {
    receiver: MemoryReceiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv_blocking().ok()
    }
}

impl<T> FusedIterator for IntoIter<T> {}

impl<'a, T> IntoIterator for &'a MemoryReceiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for MemoryReceiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}
