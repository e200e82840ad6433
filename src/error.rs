//! Error types, of both wings: [`Cancelled`] for a scope's checkpoints, and
//! the stream operations' errors. Every error that concerns an item hands the
//! item back.
//!
//! `Debug` never requires `T: Debug` (the item is shown as `..`), and
//! `Display` is lower-case without trailing punctuation, like std's.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;

/// Why an asynchronous or blocking send failed. The unsent item is inside.
///
/// The variants are checked in this order: the operation's scope, then its
/// own handle, then the transfer itself; a cancellation that came before a
/// close is reported as `Cancelled`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendError<T> {
    /// This sender handle was closed (by [`close`](crate::MemorySender::close)),
    /// before the send began or while it was blocked.
    Closed(T),
    /// Every receiver is closed: nobody can ever receive the item.
    Broken(T),
    /// The send's cancel scope was effectively cancelled before the item was
    /// taken. Nothing changed in the stream.
    Cancelled(T),
}

/// Why [`try_send`](crate::MemorySender::try_send) failed. The unsent item is
/// inside.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrySendError<T> {
    /// No receiver is waiting and the buffer has no room.
    Full(T),
    /// This sender handle is closed.
    Closed(T),
    /// Every receiver is closed.
    Broken(T),
}

/// Why an asynchronous or blocking receive failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvError {
    /// Every sender is closed and the buffer is drained: no item will ever come.
    EndOfStream,
    /// This receiver handle was closed, before the receive began or while it
    /// was blocked.
    Closed,
    /// The receive's cancel scope was effectively cancelled before an item was
    /// committed to it. Nothing changed in the stream.
    Cancelled,
}

/// Why [`try_recv`](crate::MemoryReceiver::try_recv) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// No item is available right now, but senders are still open.
    Empty,
    /// Every sender is closed and the buffer is drained.
    EndOfStream,
    /// This receiver handle is closed.
    Closed,
}

/// Why [`send_timeout`](crate::MemorySender::send_timeout) or
/// [`send_deadline`](crate::MemorySender::send_deadline) failed. The unsent
/// item is inside.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendTimeoutError<T> {
    /// The time ran out before a receiver took the item (or buffer room
    /// opened). Nothing changed in the stream.
    Timeout(T),
    /// This sender handle is closed.
    Closed(T),
    /// Every receiver is closed.
    Broken(T),
}

/// Why [`recv_timeout`](crate::MemoryReceiver::recv_timeout) or
/// [`recv_deadline`](crate::MemoryReceiver::recv_deadline) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// The time ran out before an item came. Nothing changed in the stream.
    Timeout,
    /// Every sender is closed and the buffer is drained.
    EndOfStream,
    /// This receiver handle is closed.
    Closed,
}

impl<T> SendError<T> {
    /// Takes the unsent item back.
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream::<String>(1);
    /// drop(rx);
    /// let err = tx.send_blocking("hello".to_owned()).unwrap_err();
    /// assert_eq!(err.into_inner(), "hello");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(item) | SendError::Broken(item) | SendError::Cancelled(item) => item,
        }
    }
}

impl<T> TrySendError<T> {
    /// Takes the unsent item back.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(item) | TrySendError::Closed(item) | TrySendError::Broken(item) => {
                item
            }
        }
    }

    /// `true` for [`TrySendError::Full`]: the send may succeed later.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// Takes the unsent item back.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(item)
            | SendTimeoutError::Closed(item)
            | SendTimeoutError::Broken(item) => item,
        }
    }

    /// `true` for [`SendTimeoutError::Timeout`]: the send may succeed later.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }
}

impl RecvTimeoutError {
    /// `true` for [`RecvTimeoutError::Timeout`]: an item may still come.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
            SendTimeoutError::Broken(_) => f.write_str("Broken(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "timed out sending on a stream",
            SendTimeoutError::Closed(_) => "sending on a closed sender",
            SendTimeoutError::Broken(_) => "sending on a stream whose receivers are all closed",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out receiving on a stream",
            RecvTimeoutError::EndOfStream => "end of stream: every sender is closed",
            RecvTimeoutError::Closed => "receiving on a closed receiver",
        })
    }
}

impl<T> Error for SendTimeoutError<T> {}
impl Error for RecvTimeoutError {}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Broken(_) => f.write_str("Broken(..)"),
            SendError::Cancelled(_) => f.write_str("Cancelled(..)"),
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
            TrySendError::Broken(_) => f.write_str("Broken(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed(_) => "sending on a closed sender",
            SendError::Broken(_) => "sending on a stream whose receivers are all closed",
            SendError::Cancelled(_) => "send cancelled by its cancel scope",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full stream",
            TrySendError::Closed(_) => "sending on a closed sender",
            TrySendError::Broken(_) => "sending on a stream whose receivers are all closed",
        })
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvError::EndOfStream => "end of stream: every sender is closed",
            RecvError::Closed => "receiving on a closed receiver",
            RecvError::Cancelled => "receive cancelled by its cancel scope",
        })
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty stream",
            TryRecvError::EndOfStream => "end of stream: every sender is closed",
            TryRecvError::Closed => "receiving on a closed receiver",
        })
    }
}

impl<T> Error for SendError<T> {}
impl<T> Error for TrySendError<T> {}
impl Error for RecvError {}
impl Error for TryRecvError {}
/// The error of an operation that its cancel scope cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled by its cancel scope")
    }
}

impl Error for Cancelled {}

impl From<Cancelled> for RecvError {
    /// A checkpoint's cancellation, as a receive's: `?` on a
    /// [`checkpoint`](crate::checkpoint) in a function returning
    /// `RecvError` works.
    fn from(_: Cancelled) -> Self {
        RecvError::Cancelled
    }
}

/// One error for code that mixes checkpoints, receives, sends and timeouts,
/// so that `?` works on all of them and a failed send's item is never
/// thrown away (it stays inside [`StreamError::Unsent`]).
///
/// `T` is the item type of the sends it carries; code that only receives
/// leaves it at the default. [`is_cancelled`](StreamError::is_cancelled)
/// tells a stop for cancellation from a failure, as a task group needs.
///
/// ```
/// use scopestream::{checkpoint, memory_stream, MemoryReceiver, MemorySender, StreamError};
///
/// async fn relay(rx: &MemoryReceiver<u32>, tx: &MemorySender<u32>) -> Result<(), StreamError<u32>> {
///     loop {
///         checkpoint().await?;          // Cancelled
///         let item = rx.recv().await?;  // RecvError
///         tx.send(item * 2).await?;     // SendError<u32>: the item is kept
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let (in_tx, in_rx) = memory_stream(1);
/// let (out_tx, out_rx) = memory_stream(1);
/// in_tx.send(1).await.unwrap();
/// drop((in_tx, out_rx));
/// // The doubled item could not be sent: every receiver is closed.
/// let err = relay(&in_rx, &out_tx).await.unwrap_err();
/// assert_eq!(err.into_item(), Some(2));
/// # });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamError<T = Infallible> {
    /// A checkpoint or a receive was cancelled by its scope.
    Cancelled,
    /// A receive found the end of the stream.
    EndOfStream,
    /// A receive's own handle was closed.
    Closed,
    /// A send failed; its item is inside.
    Unsent(SendError<T>),
    /// A [`fail_after`](crate::fail_after) deadline passed.
    TimedOut,
}

impl<T> StreamError<T> {
    /// `true` if the code stopped because its scope was cancelled: a
    /// cancelled checkpoint, receive or send. (For the timeout helpers a
    /// cancelled send is *not* "cancelled", so that they hand its item back;
    /// see [`MaybeCancelled`](crate::MaybeCancelled).)
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            StreamError::Cancelled | StreamError::Unsent(SendError::Cancelled(_))
        )
    }

    /// The item of a failed send, if this is one.
    pub fn into_item(self) -> Option<T> {
        match self {
            StreamError::Unsent(err) => Some(err.into_inner()),
            _ => None,
        }
    }
}

impl<T> From<Cancelled> for StreamError<T> {
    fn from(_: Cancelled) -> Self {
        StreamError::Cancelled
    }
}

impl<T> From<RecvError> for StreamError<T> {
    fn from(err: RecvError) -> Self {
        match err {
            RecvError::Cancelled => StreamError::Cancelled,
            RecvError::EndOfStream => StreamError::EndOfStream,
            RecvError::Closed => StreamError::Closed,
        }
    }
}

impl<T> From<SendError<T>> for StreamError<T> {
    fn from(err: SendError<T>) -> Self {
        StreamError::Unsent(err)
    }
}

impl<T> fmt::Debug for StreamError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Cancelled => f.write_str("Cancelled"),
            StreamError::EndOfStream => f.write_str("EndOfStream"),
            StreamError::Closed => f.write_str("Closed"),
            StreamError::Unsent(err) => f.debug_tuple("Unsent").field(err).finish(),
            StreamError::TimedOut => f.write_str("TimedOut"),
        }
    }
}

impl<T> fmt::Display for StreamError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Cancelled => fmt::Display::fmt(&Cancelled, f),
            StreamError::EndOfStream => fmt::Display::fmt(&RecvError::EndOfStream, f),
            StreamError::Closed => fmt::Display::fmt(&RecvError::Closed, f),
            StreamError::Unsent(err) => fmt::Display::fmt(err, f),
            StreamError::TimedOut => f.write_str("deadline passed"),
        }
    }
}

impl<T> Error for StreamError<T> {}
