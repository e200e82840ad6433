//! Weak handles: [`WeakSender`] and [`WeakReceiver`] hold a stream's memory,
//! not its openness. An upgrade opens a new handle only while the stream
//! still has one of that side open, so a weak handle never reopens an ended
//! or broken stream.

use std::fmt;

use super::chan::{Chan, HandleId, State};
use super::receiver::MemoryReceiver;
use super::sender::MemorySender;
use crate::sync::Arc;

impl<T> MemorySender<T> {
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
            chan: WeakChan::new(self.chan()),
        }
    }
}

impl<T> MemoryReceiver<T> {
    /// A handle that does not keep the stream open: while it is the only
    /// kind left, senders see the stream broken and buffered items are
    /// dropped. See [`MemorySender::downgrade`](crate::MemorySender::downgrade).
    pub fn downgrade(&self) -> WeakReceiver<T> {
        WeakReceiver {
            chan: WeakChan::new(self.chan()),
        }
    }
}

/// What a weak handle holds: the stream's memory, not its openness. Shared
/// by `WeakSender` and `WeakReceiver`.
pub(crate) struct WeakChan<T>(Arc<Chan<T>>);

impl<T> WeakChan<T> {
    pub(crate) fn new(chan: &Arc<Chan<T>>) -> Self {
        WeakChan(Arc::clone(chan))
    }

    /// The stream and a new open handle id from `reopen`
    /// ([`State::reopen_sender`] or [`State::reopen_receiver`]), unless that
    /// side has closed for good.
    pub(crate) fn upgrade(
        &self,
        reopen: fn(&mut State<T>) -> Option<HandleId>,
    ) -> Option<(Arc<Chan<T>>, HandleId)> {
        let id = reopen(&mut self.0.lock())?;
        Some((Arc::clone(&self.0), id))
    }
}

impl<T> Clone for WeakChan<T> {
    fn clone(&self) -> Self {
        WeakChan(Arc::clone(&self.0))
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
