//! The shared core of a stream: buffer, waiter lines, open-handle counts.
//!
//! Everything here runs under the stream's one mutex, and every decision that
//! matters is taken there: whether a waiter is deliverable, where an item
//! goes, what a close does. No item is ever dropped and no waker ever woken
//! while that lock is held (items can own handles of this very stream).
//!
//! # Waiter slots and the point of no return
//!
//! A blocked operation owns one slot in [`State::receivers`] or
//! [`State::senders`]. Only a peer holding the lock moves a slot out of
//! `Waiting`, and only the owner frees it:
//!
//! ```text
//!  receive slot          peer action (under the lock)             owner then returns
//!  ─────────────         ─────────────────────────────           ──────────────────
//!  Waiting ──► Delivered(item)  sender commits an item (C5)        Ok(item)
//!          ──► Aborted(Cancelled) sender finds its scope cancelled  Err(Cancelled)
//!          ──► Aborted(Closed)    its own handle was closed         Err(Closed)
//!          ──► Aborted(EndOfStream) the last sender closed          Err(EndOfStream)
//!  Waiting ──(owner sees its scope cancelled)──► freed             Err(Cancelled)
//!  Delivered ──(owner's future dropped)──► item back at the head (S8)
//!
//!  send slot
//!  ─────────────
//!  Waiting(item) ──► Taken          a receiver takes the item (C5)   Ok(())
//!                ──► Aborted(Cancelled, item) | Aborted(Closed, item) | Aborted(Broken, item)
//!                                                                   Err(…(item))
//!  Waiting(item) ──(owner sees its scope cancelled)──► freed        Err(Cancelled(item))
//!  Waiting(item) ──(owner's future dropped)──► freed, item withdrawn and dropped
//! ```
//!
//! An operation's first poll checks its scope, checks its handle and tries
//! the transfer in **one** critical section, so a cancellation that happened
//! before any stream change the operation can observe is observed too.
//!
//! The **commit point** of SPEC C5 is the transition out of `Waiting` into
//! `Delivered`/`Taken`, made in [`State::hand_to_receiver`] and
//! [`State::take_from_sender`] right after the peer's scope has been found not
//! effectively cancelled *at that moment* (C6). Before it, an operation that
//! sees its scope cancelled removes its own slot and fails with nothing moved;
//! after it, the outcome is `Ok` whatever happens to the scope.
//!
//! # Invariants
//!
//! * A receiver waits only while the buffer is empty, and an item enters the
//!   buffer only after every waiting receiver has been served or found
//!   cancelled (and unlinked). So *buffer non-empty ⇒ no receiver waiting*.
//! * A sender waits only while the buffer is full, and every receive that frees
//!   room refills it from the waiting senders. So *a sender waiting ⇒ the
//!   buffer is full*.

use std::collections::VecDeque;
use std::task::Waker;

use crate::error::{RecvError, TryRecvError};
use crate::scope::ScopeRef;
use crate::statistics::Statistics;
use crate::sync::{Mutex, MutexGuard};
use crate::waitlist::WaitList;

/// Identifies one handle (one clone) among the handles of a stream.
pub(crate) type HandleId = u64;

pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
}

pub(crate) struct State<T> {
    buffer: VecDeque<T>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    pub(crate) receivers: WaitList<RecvSlot<T>>,
    pub(crate) senders: WaitList<SendSlot<T>>,
    open_senders: usize,
    open_receivers: usize,
    next_handle: HandleId,
}

pub(crate) enum RecvSlot<T> {
    Waiting {
        waker: Waker,
        scope: ScopeRef,
        handle: HandleId,
    },
    Delivered(T),
    Aborted(RecvError),
}

pub(crate) enum SendSlot<T> {
    Waiting {
        item: T,
        waker: Waker,
        scope: ScopeRef,
        handle: HandleId,
    },
    Taken,
    Aborted(SendAbort, T),
}

/// Why a peer aborted a waiting send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendAbort {
    Closed,
    Broken,
    Cancelled,
}

/// Why [`State::try_send`] did not place the item.
pub(crate) enum SendRefusal {
    Broken,
    Full,
}

/// Wakers collected under the lock, woken after it is released.
#[derive(Default)]
pub(crate) struct Wakeups {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakeups {
    #[inline]
    pub(crate) fn push(&mut self, waker: Waker) {
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    #[inline]
    pub(crate) fn wake_all(self) {
        if let Some(first) = self.first {
            first.wake();
            for waker in self.rest {
                waker.wake();
            }
        }
    }
}

impl<T> Chan<T> {
    /// A stream with one open sender (handle 0) and one open receiver (handle 1).
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Chan {
            state: Mutex::new(State {
                buffer: VecDeque::new(),
                capacity,
                receivers: WaitList::new(),
                senders: WaitList::new(),
                open_senders: 1,
                open_receivers: 1,
                next_handle: 2,
            }),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock()
    }
}

impl<T> State<T> {
    /// Registers a new open sender handle.
    pub(crate) fn open_sender(&mut self) -> HandleId {
        self.open_senders += 1;
        self.new_handle_id()
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

    #[inline]
    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|cap| self.buffer.len() < cap)
    }

    /// Gives `item` to the oldest *deliverable* waiting receiver (SPEC C6).
    /// Receivers found effectively cancelled on the way are unlinked and
    /// aborted with `Cancelled`. Hands the item back if nobody could take it.
    fn hand_to_receiver(&mut self, item: T, wake: &mut Wakeups) -> Result<(), T> {
        while let Some(key) = self.receivers.front() {
            self.receivers.unlink(key);
            let slot = self.receivers.get_mut(key);
            let RecvSlot::Waiting { waker, scope, .. } =
                std::mem::replace(slot, RecvSlot::Aborted(RecvError::Cancelled))
            else {
                unreachable!("a linked receive slot is always waiting");
            };
            wake.push(waker);
            if !scope.is_cancelled() {
                // COMMIT POINT (receive side): the item now belongs to this
                // receiver, whatever its scope does from here on.
                *slot = RecvSlot::Delivered(item);
                return Ok(());
            }
        }
        Err(item)
    }

    /// Takes the item of the oldest *deliverable* waiting sender (SPEC C6).
    /// Senders found effectively cancelled are unlinked and aborted with
    /// `Cancelled`, keeping their items to return them.
    fn take_from_sender(&mut self, wake: &mut Wakeups) -> Option<T> {
        while let Some(key) = self.senders.front() {
            self.senders.unlink(key);
            let slot = self.senders.get_mut(key);
            let SendSlot::Waiting {
                item, waker, scope, ..
            } = std::mem::replace(slot, SendSlot::Taken)
            else {
                unreachable!("a linked send slot is always waiting");
            };
            wake.push(waker);
            if scope.is_cancelled() {
                *slot = SendSlot::Aborted(SendAbort::Cancelled, item);
            } else {
                // COMMIT POINT (send side): the slot is now `Taken`.
                return Some(item);
            }
        }
        None
    }

    /// The transfer of a send on an open handle: SPEC S2 without the handle
    /// check. Waiting receivers first, then buffer room.
    pub(crate) fn try_send(&mut self, item: T, wake: &mut Wakeups) -> Result<(), (SendRefusal, T)> {
        if self.open_receivers == 0 {
            return Err((SendRefusal::Broken, item));
        }
        let item = match self.hand_to_receiver(item, wake) {
            Ok(()) => return Ok(()),
            Err(item) => item,
        };
        if self.has_room() {
            self.buffer.push_back(item);
            Ok(())
        } else {
            Err((SendRefusal::Full, item))
        }
    }

    /// The transfer of a receive on an open handle: SPEC S3 without the handle
    /// check. Pops the buffer and refills the freed room from waiting senders,
    /// or takes straight from a waiting sender when the buffer is empty
    /// (rendezvous).
    pub(crate) fn try_recv(&mut self, wake: &mut Wakeups) -> Result<T, TryRecvError> {
        if let Some(item) = self.buffer.pop_front() {
            while self.has_room() {
                match self.take_from_sender(wake) {
                    Some(moved) => self.buffer.push_back(moved),
                    None => break,
                }
            }
            return Ok(item);
        }
        if let Some(item) = self.take_from_sender(wake) {
            return Ok(item);
        }
        if self.open_senders == 0 {
            Err(TryRecvError::EndOfStream)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// SPEC S8: an item committed to a receive that was then dropped goes back
    /// to the head of the stream. Returns it if every receiver is closed, for
    /// the caller to drop after unlocking.
    pub(crate) fn return_to_head(&mut self, item: T, wake: &mut Wakeups) -> Option<T> {
        if self.open_receivers == 0 {
            return Some(item);
        }
        match self.hand_to_receiver(item, wake) {
            Ok(()) => None,
            Err(item) => {
                self.buffer.push_front(item);
                None
            }
        }
    }

    /// Closes one sender handle: its blocked sends get their items back with
    /// `Closed`; if it was the last one, blocked receivers get `EndOfStream`
    /// (they wait only on an empty buffer, so there is nothing left to drain).
    pub(crate) fn close_sender(&mut self, handle: HandleId, wake: &mut Wakeups) {
        self.open_senders -= 1;
        self.senders.unlink_where(|slot| {
            if !matches!(slot, SendSlot::Waiting { handle: h, .. } if *h == handle) {
                return false;
            }
            let SendSlot::Waiting { item, waker, .. } = std::mem::replace(slot, SendSlot::Taken)
            else {
                unreachable!()
            };
            *slot = SendSlot::Aborted(SendAbort::Closed, item);
            wake.push(waker);
            true
        });
        if self.open_senders == 0 {
            self.receivers.unlink_where(|slot| {
                let old = std::mem::replace(slot, RecvSlot::Aborted(RecvError::EndOfStream));
                if let RecvSlot::Waiting { waker, .. } = old {
                    wake.push(waker);
                }
                true
            });
        }
    }

    /// Closes one receiver handle: its blocked receives get `Closed`; if it was
    /// the last one, blocked sends get `Broken(item)` and the buffered items
    /// are returned, for the caller to drop after unlocking (SPEC S5).
    #[must_use = "the buffered items must be dropped after unlocking"]
    pub(crate) fn close_receiver(&mut self, handle: HandleId, wake: &mut Wakeups) -> VecDeque<T> {
        self.open_receivers -= 1;
        self.receivers.unlink_where(|slot| {
            if !matches!(slot, RecvSlot::Waiting { handle: h, .. } if *h == handle) {
                return false;
            }
            if let RecvSlot::Waiting { waker, .. } =
                std::mem::replace(slot, RecvSlot::Aborted(RecvError::Closed))
            {
                wake.push(waker);
            }
            true
        });
        if self.open_receivers > 0 {
            return VecDeque::new();
        }
        self.senders.unlink_where(|slot| {
            let SendSlot::Waiting { item, waker, .. } = std::mem::replace(slot, SendSlot::Taken)
            else {
                unreachable!("a linked send slot is always waiting")
            };
            *slot = SendSlot::Aborted(SendAbort::Broken, item);
            wake.push(waker);
            true
        });
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
