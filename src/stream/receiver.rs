//! The receiving handle, [`MemoryReceiver`]: only what is a receiver's own.
//! What both handles share is in `handle`, the receive operation in `recv`,
//! the `Stream` receive in `listen`, iterators in `iter`, weak handles in
//! `weak`.

use std::borrow::Borrow;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::stream::{FusedStream, Stream};

use super::blocking::{block_on, block_on_until};
use super::chan::{Chan, HandleId, State};
use super::handle::{shared_handle_methods, Handle, ReceiverSide};
use super::listen::StreamReceive;
use super::recv::{wake_keeping, OwnedRecvFuture, RecvFuture};
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::sync::{Arc, MutexGuard};
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
/// when an item may be there and takes it at its next poll: a [`RecvFuture`] future
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
    handle: Handle<T, ReceiverSide>,
    /// The `Stream` receive's state between polls.
    stream: StreamReceive,
}

impl<T> MemoryReceiver<T> {
    pub(crate) fn from_chan(chan: Arc<Chan<T>>, id: HandleId) -> Self {
        MemoryReceiver {
            handle: Handle::new(chan, id),
            stream: StreamReceive::default(),
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
    /// effectively cancelled *at that moment*: a receive behind a
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
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture::new(&self.handle, false)
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
        let mut state = self.handle.chan().lock();
        if self.handle.closed_under_lock() {
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
        result.map(|item| wake_keeping(&self.handle, wake, item))
    }

    /// Receives an item, parking the thread until one comes.
    ///
    /// Ignores cancel scopes. A `close()` of this handle, or the last sender
    /// closing, on another thread wakes it with `Closed` or `EndOfStream`. Do
    /// not call it from asynchronous code: it blocks the executor's thread.
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        block_on(RecvFuture::new(&self.handle, true))
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
        let mut recv = RecvFuture::new(&self.handle, true);
        let result = match block_on_until(Pin::new(&mut recv), deadline) {
            Some(result) => result,
            None => recv.give_up().expect("a pending receive is blocked"),
        };
        result.map_err(|err| match err {
            // The blocking API waits in the root, which is never cancelled:
            // `Cancelled` here can only be the timeout's giving up.
            RecvError::Cancelled => RecvTimeoutError::Timeout,
            RecvError::Closed => RecvTimeoutError::Closed,
            RecvError::EndOfStream => RecvTimeoutError::EndOfStream,
        })
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
    /// let recv: scopestream::OwnedRecvFuture<u32> = rx.recv_owned();
    /// drop(rx); // the future holds its own handle
    /// tx.send(7).await.unwrap();
    /// assert_eq!(recv.await, Ok(7));
    /// # });
    /// ```
    pub fn recv_owned(&self) -> OwnedRecvFuture<T> {
        OwnedRecvFuture::new(self.handle.clone())
    }

    /// Whether every sender is closed, so that no item can be sent any more
    /// (the items already in the stream can still be received; after them
    /// comes the end of the stream). Final once `true`. This handle's own
    /// state is [`is_closed`](MemoryReceiver::is_closed).
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream::<u8>(1);
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// assert_eq!(rx.try_recv(), Ok(1)); // still there
    /// ```
    #[doc(alias = "is_closed")]
    pub fn is_disconnected(&self) -> bool {
        self.handle.is_disconnected()
    }

    /// Closes this handle (only this clone). Blocked receives on it return
    /// `Closed`; later operations on it return `Closed`. If it was the last
    /// open receiver, blocked and later sends fail with `Broken(item)` and the
    /// buffered items are dropped at once. Idempotent; dropping the handle
    /// closes it too.
    pub fn close(&self) {
        self.handle.close();
    }
}

shared_handle_methods!(MemoryReceiver);

impl<T> Clone for MemoryReceiver<T> {
    /// Another handle to the same stream; a clone of a closed handle is closed.
    fn clone(&self) -> Self {
        MemoryReceiver {
            handle: self.handle.clone(),
            stream: StreamReceive::default(),
        }
    }
}

impl<T> Drop for MemoryReceiver<T> {
    /// Leaves the `Stream` receive's listener line; the handle then closes.
    fn drop(&mut self) {
        self.stream.stop(&self.handle);
    }
}

impl<T> MemoryReceiver<T> {
    /// The stream, for a weak handle.
    pub(super) fn chan(&self) -> &Arc<Chan<T>> {
        self.handle.chan()
    }
}

impl<T> Borrow<Handle<T, ReceiverSide>> for MemoryReceiver<T> {
    fn borrow(&self) -> &Handle<T, ReceiverSide> {
        &self.handle
    }
}

impl<T> fmt::Debug for MemoryReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
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
        this.stream.poll_next(&this.handle, cx)
    }
}

impl<T> FusedStream for MemoryReceiver<T> {
    /// `true` once the stream has ended or this handle is closed: both are
    /// final. A `None` for a cancelled scope is not (outside that scope, or
    /// behind a shield, the stream goes on).
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated() || self.is_closed()
    }
}
