//! The sending handle, [`MemorySender`]: only what is a sender's own. What
//! both handles share is in `handle`, the send operation in `send`, the
//! `broken()` future in `listen`, weak handles in `weak`.

use std::borrow::Borrow;
use std::fmt;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::blocking::{block_on, block_on_until};
use super::chan::{Chan, HandleId, SendRefusal, State};
use super::handle::{shared_handle_methods, Handle, SenderSide};
use super::listen::WaitBroken;
use super::send::{OwnedSendFuture, SendFuture};
use crate::error::{SendError, SendTimeoutError, TrySendError};
use crate::sync::{Arc, MutexGuard};
use crate::wakeups::Wakeups;

/// The sending handle of a memory object stream.
///
/// Clone it to get another, independently closable handle. The stream's
/// receivers see the end of the stream once *every* sender handle is closed
/// (explicitly, or by being dropped).
pub struct MemorySender<T> {
    handle: Handle<T, SenderSide>,
}

impl<T> MemorySender<T> {
    pub(crate) fn from_chan(chan: Arc<Chan<T>>, id: HandleId) -> Self {
        MemorySender {
            handle: Handle::new(chan, id),
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
    pub fn send(&self, item: T) -> SendFuture<'_, T> {
        SendFuture::new(&self.handle, item, false)
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
        let mut state = self.handle.chan().lock();
        if self.handle.closed_under_lock() {
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
        block_on(SendFuture::new(&self.handle, item, true))
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
        let mut send = SendFuture::new(&self.handle, item, true);
        let result = match block_on_until(Pin::new(&mut send), deadline) {
            Some(result) => result,
            None => send.give_up().expect("a pending send is blocked"),
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
        self.handle.close();
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
        self.handle.is_broken()
    }

    /// Completes once every receiver is closed — what tokio's
    /// `Sender::closed` waits for, named here after the `Broken` error every
    /// send then fails with (this handle's own close is
    /// [`close`](MemorySender::close)). Use it to stop producing for a
    /// consumer that has gone.
    ///
    /// A checkpoint, like every asynchronous operation: fails with
    /// [`Cancelled`](crate::Cancelled) if the current scope is effectively cancelled, when
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
        WaitBroken::new(&self.handle)
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
    /// let send: scopestream::OwnedSendFuture<u32> = tx.send_owned(7);
    /// drop(tx); // the future holds its own handle
    /// let (sent, got) = futures::join!(send, rx.recv());
    /// assert_eq!((sent, got), (Ok(()), Ok(7)));
    /// # });
    /// ```
    pub fn send_owned(&self, item: T) -> OwnedSendFuture<T> {
        OwnedSendFuture::new(self.handle.clone(), item)
    }
}

shared_handle_methods!(MemorySender);

impl<T> Clone for MemorySender<T> {
    /// Another handle to the same stream; a clone of a closed handle is closed.
    fn clone(&self) -> Self {
        MemorySender {
            handle: self.handle.clone(),
        }
    }
}

impl<T> MemorySender<T> {
    /// The stream, for a weak handle.
    pub(super) fn chan(&self) -> &Arc<Chan<T>> {
        self.handle.chan()
    }
}

/// The sink and the send operation run on a sender's handle.
impl<T> Borrow<Handle<T, SenderSide>> for MemorySender<T> {
    fn borrow(&self) -> &Handle<T, SenderSide> {
        &self.handle
    }
}

impl<T> fmt::Debug for MemorySender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}
