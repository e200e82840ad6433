//! The body both handles share: a stream, this handle's id among its
//! clones, and whether this handle is closed — and how a handle opens,
//! clones, closes and reads the stream's state.
//!
//! [`MemorySender`](crate::MemorySender) and
//! [`MemoryReceiver`](crate::MemoryReceiver) are each a [`Handle`] of their
//! [`Side`] plus what is their own. Everything they have in common —
//! `close`, `is_closed`, `statistics`, `len`, `is_full`, `capacity`,
//! `same_stream`, `Clone`, `Drop` — is written once, here; what a close does
//! to the stream differs by side, and is the side's.

use std::collections::VecDeque;
use std::marker::PhantomData;

use super::chan::{
    abort_recv, abort_send, tell, Chan, HandleId, RecvSlot, SendAbort, SendSlot, State,
};
use crate::error::RecvError;
use crate::statistics::Statistics;
use crate::sync::{Arc, AtomicBool, Ordering};
use crate::wakeups::Wakeups;

/// Which side of a stream a handle is: what opening and closing one does.
pub(crate) trait Side: 'static {
    /// For `Debug`.
    const NAME: &'static str;

    /// Registers a new open handle of this side; its id.
    fn open<T>(state: &mut State<T>) -> HandleId;

    /// Closes the open handle `id` of this side. Returns what the stream
    /// gives up, to be dropped after unlocking.
    fn close<T>(state: &mut State<T>, id: HandleId, wake: &mut Wakeups) -> VecDeque<T>;
}

/// The sending side.
pub(crate) enum SenderSide {}

/// The receiving side.
pub(crate) enum ReceiverSide {}

impl Side for SenderSide {
    const NAME: &'static str = "MemorySender";

    fn open<T>(state: &mut State<T>) -> HandleId {
        state.open_sender()
    }

    fn close<T>(state: &mut State<T>, id: HandleId, wake: &mut Wakeups) -> VecDeque<T> {
        state.close_sender(id, wake);
        VecDeque::new()
    }
}

impl Side for ReceiverSide {
    const NAME: &'static str = "MemoryReceiver";

    fn open<T>(state: &mut State<T>) -> HandleId {
        state.open_receiver()
    }

    fn close<T>(state: &mut State<T>, id: HandleId, wake: &mut Wakeups) -> VecDeque<T> {
        state.close_receiver(id, wake)
    }
}

/// One handle of a stream: one clone, closable on its own.
pub(crate) struct Handle<T, S: Side> {
    chan: Arc<Chan<T>>,
    id: HandleId,
    /// ORDERING: written only under the stream lock; read under it by every
    /// operation, and without it only by [`Handle::is_closed`].
    closed: AtomicBool,
    side: PhantomData<S>,
}

impl<T, S: Side> Handle<T, S> {
    pub(crate) fn new(chan: Arc<Chan<T>>, id: HandleId) -> Self {
        Handle {
            chan,
            id,
            closed: AtomicBool::new(false),
            side: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.chan
    }

    #[inline]
    pub(crate) fn id(&self) -> HandleId {
        self.id
    }

    /// Whether this handle is closed, read under the stream lock (which
    /// every write holds), as every operation does.
    #[inline]
    pub(crate) fn closed_under_lock(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Closes this handle, once: the side's close, then the wake-ups, then
    /// what the stream gave up is dropped — all after unlocking.
    pub(crate) fn close(&self) {
        let mut wake = Wakeups::default();
        let mut state = self.chan.lock();
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        self.closed.store(true, Ordering::Release);
        let dropped = S::close(&mut state, self.id, &mut wake);
        drop(state);
        wake.wake_all();
        // Items may own handles of this stream: dropped outside the lock.
        drop(dropped);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn statistics(&self) -> Statistics {
        self.chan.lock().statistics()
    }

    pub(crate) fn len(&self) -> usize {
        self.chan.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|cap| self.len() >= cap)
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    pub(crate) fn same_stream(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// Whether every receiver is closed: no item can ever be received.
    pub(crate) fn is_broken(&self) -> bool {
        self.chan.lock().is_broken()
    }

    /// Whether every sender is closed: no item can be sent any more.
    pub(crate) fn is_disconnected(&self) -> bool {
        self.chan.lock().open_senders == 0
    }

    /// The open sender and receiver handles, in one snapshot.
    pub(crate) fn open_handles(&self) -> (usize, usize) {
        let state = self.chan.lock();
        (state.open_senders, state.open_receivers)
    }
}

impl<T, S: Side> Clone for Handle<T, S> {
    /// Another handle to the same stream; a clone of a closed handle is closed.
    fn clone(&self) -> Self {
        let mut state = self.chan.lock();
        let closed = self.closed.load(Ordering::Relaxed);
        let id = if closed {
            state.new_handle_id()
        } else {
            S::open(&mut state)
        };
        drop(state);
        Handle {
            chan: Arc::clone(&self.chan),
            id,
            closed: AtomicBool::new(closed),
            side: PhantomData,
        }
    }
}

impl<T, S: Side> Drop for Handle<T, S> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T, S: Side> std::fmt::Debug for Handle<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(S::NAME)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The methods both public handles have, written once: each delegates to the
/// [`Handle`] it wraps (its field `handle`).
macro_rules! shared_handle_methods {
    ($handle:ident) => {
        impl<T> $handle<T> {
            /// Whether this handle is closed.
            pub fn is_closed(&self) -> bool {
                self.handle.is_closed()
            }

            /// A consistent snapshot of the stream's state.
            pub fn statistics(&self) -> $crate::statistics::Statistics {
                self.handle.statistics()
            }

            /// The number of items in the buffer now. It can exceed the
            /// capacity by items that a dropped receive gave back to the head
            /// of the stream. Cheaper than [`statistics`](Self::statistics),
            /// which also counts waiters.
            ///
            /// ```
            /// let (tx, rx) = scopestream::memory_stream(4);
            /// tx.try_send(1).unwrap();
            /// assert_eq!((tx.len(), rx.len()), (1, 1));
            /// assert!(!rx.is_empty() && !rx.is_full());
            /// assert_eq!(rx.capacity(), Some(4));
            /// ```
            pub fn len(&self) -> usize {
                self.handle.len()
            }

            /// Whether the buffer is empty now (`len() == 0`). A rendezvous
            /// stream (capacity 0) buffers nothing, so it is empty — and full,
            /// as in crossbeam — except while it holds an item that a dropped
            /// receive gave back (see [`len`](Self::len)): then it is not
            /// empty until that item is received.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the buffer is full now: a `try_send` would succeed
            /// only by handing its item to a waiting receiver. Never for an
            /// unbounded stream.
            pub fn is_full(&self) -> bool {
                self.handle.is_full()
            }

            /// The buffer's size as created: `Some(0)` for a rendezvous,
            /// `None` for an unbounded stream. Takes no lock.
            pub fn capacity(&self) -> Option<usize> {
                self.handle.capacity()
            }

            /// How many sender handles of the stream are open now (clones,
            /// and the handles owned futures hold; weak handles are not
            /// counted, as they keep nothing open).
            ///
            /// ```
            /// let (tx, rx) = scopestream::memory_stream::<u8>(0);
            /// let tx2 = tx.clone();
            /// assert_eq!((rx.sender_count(), rx.receiver_count()), (2, 1));
            /// tx2.close();
            /// assert_eq!(tx.sender_count(), 1);
            /// ```
            pub fn sender_count(&self) -> usize {
                self.handle.open_handles().0
            }

            /// How many receiver handles of the stream are open now; as
            /// [`sender_count`](Self::sender_count).
            pub fn receiver_count(&self) -> usize {
                self.handle.open_handles().1
            }

            /// Whether `other` is a handle of the same stream.
            ///
            /// ```
            /// let (tx, rx) = scopestream::memory_stream::<u8>(0);
            /// let (other_tx, other_rx) = scopestream::memory_stream::<u8>(0);
            /// assert!(tx.same_stream(&tx.clone()) && !tx.same_stream(&other_tx));
            /// assert!(rx.same_stream(&rx.clone()) && !rx.same_stream(&other_rx));
            /// ```
            pub fn same_stream(&self, other: &Self) -> bool {
                self.handle.same_stream(&other.handle)
            }
        }
    };
}

pub(super) use shared_handle_methods;

impl<T> Chan<T> {
    /// Items in the buffer now (one lock, no walk of the waiter lines).
    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }
}

/// Opening and closing handles, and what a handle reads of the stream.
impl<T> State<T> {
    /// Registers a new open sender handle.
    pub(crate) fn open_sender(&mut self) -> HandleId {
        self.open_senders += 1;
        self.new_handle_id()
    }

    /// A new open sender for a weak handle, unless every sender is closed
    /// (the stream has ended for good).
    pub(crate) fn reopen_sender(&mut self) -> Option<HandleId> {
        (self.open_senders > 0).then(|| self.open_sender())
    }

    /// A new open receiver for a weak handle, unless every receiver is
    /// closed (the stream is broken for good).
    pub(crate) fn reopen_receiver(&mut self) -> Option<HandleId> {
        (self.open_receivers > 0).then(|| self.open_receiver())
    }

    /// Registers a new open receiver handle.
    pub(crate) fn open_receiver(&mut self) -> HandleId {
        self.open_receivers += 1;
        self.new_handle_id()
    }

    /// An id for a handle created already closed.
    pub(crate) fn new_handle_id(&mut self) -> HandleId {
        let id = self.next_handle;
        self.next_handle += 1;
        id
    }

    /// Whether every receiver is closed: no item can ever be received.
    pub(crate) fn is_broken(&self) -> bool {
        self.open_receivers == 0
    }

    /// Closes one sender handle: its blocked sends get their items back with
    /// `Closed`; if it was the last one and no item is committed to a receive
    /// still under way, blocked receivers get `EndOfStream` (they wait only on
    /// an empty buffer, so there is nothing left to drain). Waiters whose
    /// scope was cancelled first get `Cancelled` instead.
    pub(crate) fn close_sender(&mut self, handle: HandleId, wake: &mut Wakeups) {
        self.open_senders -= 1;
        self.senders.unlink_where(|slot| {
            if !matches!(slot, SendSlot::Waiting { handle: h, .. } if *h == handle) {
                return false;
            }
            abort_send(slot, SendAbort::Closed, wake);
            true
        });
        if self.is_ended() {
            // Receivers wait only on an empty buffer: nothing left to drain.
            self.end_receivers(wake);
        }
    }

    /// Closes one receiver handle: its blocked receives get `Closed` and its
    /// `Stream` listener is told; if it was the last one, blocked sends get
    /// `Broken(item)` and the buffered items are returned, for the caller to
    /// drop after unlocking (SPEC S5). Waiters whose scope was cancelled first
    /// get `Cancelled` instead.
    #[must_use = "the buffered items must be dropped after unlocking"]
    pub(crate) fn close_receiver(&mut self, handle: HandleId, wake: &mut Wakeups) -> VecDeque<T> {
        self.open_receivers -= 1;
        self.receivers.unlink_where(|slot| {
            if !matches!(slot, RecvSlot::Waiting { handle: h, .. } if *h == handle) {
                return false;
            }
            abort_recv(slot, RecvError::Closed, wake);
            true
        });
        self.tell_listeners_where(|h| h == handle, wake);
        if self.open_receivers > 0 {
            return VecDeque::new();
        }
        self.senders.unlink_where(|slot| {
            abort_send(slot, SendAbort::Broken, wake);
            true
        });
        self.broken_watchers
            .unlink_where(|watcher| tell(watcher, wake));
        std::mem::take(&mut self.buffer)
    }

    /// One consistent snapshot (SPEC S6): waiters count only while still
    /// deliverable, i.e. while their scope is not effectively cancelled.
    pub(crate) fn statistics(&self) -> Statistics {
        let waiting_send = self
            .senders
            .iter()
            .filter(|slot| matches!(slot, SendSlot::Waiting { scope, .. } if !scope.is_cancelled()))
            .count();
        let waiting_recv = self
            .receivers
            .iter()
            .filter(|slot| matches!(slot, RecvSlot::Waiting { scope, .. } if !scope.is_cancelled()))
            .count();
        Statistics {
            current_buffer_used: self.buffer.len(),
            max_buffer_size: self.capacity,
            open_send_streams: self.open_senders,
            open_receive_streams: self.open_receivers,
            tasks_waiting_send: waiting_send,
            tasks_waiting_receive: waiting_recv,
        }
    }
}
