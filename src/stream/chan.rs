//! The shared core of a stream: buffer, waiter lines, open-handle counts,
//! the commit points and the state table of a waiter's slot.
//!
//! Everything here runs under the stream's one mutex, and every decision that
//! matters is taken there: whether a waiter is deliverable, where an item
//! goes, what a close does (the close itself is `handle`'s, the listener
//! lines' bookkeeping `listen`'s, a waiter's side `waiter`'s). No item is ever dropped and no waker ever woken
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
//!  A close aborts a waiting slot with `Cancelled` instead of `Closed`,
//!  `EndOfStream` or `Broken` when the waiter's scope is already effectively
//!  cancelled: the cancellation came first, and nothing moved (SPEC S12).
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
//! # `Stream` listeners
//!
//! A receive made through `Stream::poll_next` never holds a slot in the
//! receiver line: its `next()` future can be dropped without the handle
//! learning of it, and a slot left behind would take items for nobody (SPEC
//! S10). It waits in [`State::listeners`] instead, a line of wakers that are
//! *told* when an item may be there — an item buffered or returned to the
//! head, a sender starting to wait, the end of the stream, its handle closed —
//! and that take it, if it is still there, at their next poll. Every listener
//! is told (there is no telling which of them still has a task behind it),
//! and none is ever committed to, so a forgotten one costs a spurious wake-up
//! at most.
//!
//! # `EndOfStream` is final
//!
//! [`State::committed`] counts items committed to receives that have not
//! returned yet: such an item comes back to the head if its future is
//! dropped. So the end of the stream is reported only once every sender is
//! closed, the buffer is empty *and* nothing is committed; until then a
//! receive waits (SPEC S12).
//!
//! # User code
//!
//! Wakers and items are user code: a waker may panic, or own a handle of this
//! very stream and use it when cloned, woken or dropped. None of it runs
//! under the lock. Wakers are collected into [`Wakeups`] and woken after
//! unlocking (every one, even if one panics); a waiter's own waker is cloned
//! outside the lock and installed in its slot afterwards (see `waiter`);
//! items, replaced wakers and settled slots are handed out to be dropped
//! after unlocking. A slot's `ScopeRef` may be dropped under
//! the lock: its owner's registration holds the same scope for as long as
//! the slot exists, so that drop never frees a scope (which would drop the
//! wakers registered there).
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
use crate::sync::{Mutex, MutexGuard};
use crate::waitlist::WaitList;
use crate::wakeups::Wakeups;

/// Identifies one handle (one clone) among the handles of a stream.
pub(crate) type HandleId = u64;

pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    /// The buffer's size, fixed at creation (`None`: unbounded); kept out of
    /// the lock for `capacity()`.
    capacity: Option<usize>,
}

// Unwind safety: the stream's state sits behind a lock that no user code
// runs under (wakers are cloned, woken and dropped, and items dropped, after
// it is released), so every critical section leaves the state consistent
// even if a panic follows, and the lock has no poisoning. So every handle,
// weak handle and future over a stream is unwind-safe (those that own an
// item in flight, as that item is), as with std's `Arc<Mutex<_>>`.
impl<T> std::panic::UnwindSafe for Chan<T> {}
impl<T> std::panic::RefUnwindSafe for Chan<T> {}

pub(crate) struct State<T> {
    pub(super) buffer: VecDeque<T>,
    /// `None`: unbounded.
    pub(super) capacity: Option<usize>,
    pub(crate) receivers: WaitList<RecvSlot<T>>,
    pub(crate) senders: WaitList<SendSlot<T>>,
    /// `Stream` receives waiting to be told that an item may be there.
    pub(super) listeners: WaitList<Listener>,
    /// `MemorySender::broken` futures waiting for the last receiver to close.
    pub(super) broken_watchers: WaitList<Listener>,
    /// Items in `Delivered` slots: committed, not yet collected.
    pub(super) committed: usize,
    pub(super) open_senders: usize,
    pub(super) open_receivers: usize,
    pub(super) next_handle: HandleId,
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

/// A `Stream` receive waiting to be told (see the module docs), or a
/// `broken()` future waiting for the last receiver to close.
pub(crate) enum Listener {
    Waiting { waker: Waker, handle: HandleId },
    Told,
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

impl<T> Chan<T> {
    /// A stream with one open sender (handle 0) and one open receiver (handle 1).
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Chan {
            state: Mutex::new(State {
                buffer: VecDeque::new(),
                capacity,
                receivers: WaitList::new(),
                senders: WaitList::new(),
                listeners: WaitList::new(),
                broken_watchers: WaitList::new(),
                committed: 0,
                open_senders: 1,
                open_receivers: 1,
                next_handle: 2,
            }),
            capacity,
        }
    }

    /// `None`: unbounded.
    #[inline]
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock()
    }
}

impl<T> State<T> {
    #[inline]
    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|cap| self.buffer.len() < cap)
    }

    /// Gives `item` to the oldest *deliverable* waiting receiver (SPEC C6).
    /// Receivers found effectively cancelled on the way are unlinked and
    /// aborted with `Cancelled`. Hands the item back if nobody could take it.
    fn hand_to_receiver(&mut self, item: T, wake: &mut Wakeups) -> Result<(), T> {
        while let Some(key) = self.receivers.unlink_front() {
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
                self.committed += 1;
                return Ok(());
            }
        }
        Err(item)
    }

    /// Takes the item of the oldest *deliverable* waiting sender (SPEC C6).
    /// Senders found effectively cancelled are unlinked and aborted with
    /// `Cancelled`, keeping their items to return them.
    fn take_from_sender(&mut self, wake: &mut Wakeups) -> Option<T> {
        while let Some(key) = self.senders.unlink_front() {
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

    /// The common case of a send, tried first and inline: the stream is not
    /// broken, no receive waits or listens, and the buffer has room. Then
    /// the item is buffered and nobody is to be woken. Otherwise the item
    /// comes back, and [`try_send`](State::try_send) decides.
    #[inline]
    pub(crate) fn try_buffer(&mut self, item: T) -> Result<(), T> {
        if self.open_receivers != 0
            && self.receivers.front().is_none()
            && self.listeners.front().is_none()
            && self.has_room()
        {
            self.buffer.push_back(item);
            Ok(())
        } else {
            Err(item)
        }
    }

    /// The common case of a receive, tried first and inline: no send waits,
    /// so an item at the head is simply taken and nobody is to be woken.
    /// `None`: [`try_recv`](State::try_recv) decides.
    #[inline]
    pub(crate) fn try_unbuffer(&mut self) -> Option<T> {
        if self.senders.front().is_none() {
            self.buffer.pop_front()
        } else {
            None
        }
    }

    /// The transfer of a send on an open handle: SPEC S2 without the handle
    /// check. Waiting receivers first, then buffer room.
    #[inline]
    pub(crate) fn try_send(&mut self, item: T, wake: &mut Wakeups) -> Result<(), (SendRefusal, T)> {
        if self.open_receivers == 0 {
            return Err((SendRefusal::Broken, item));
        }
        // Checked inline: with a buffer, nobody waits in the common case.
        let item = if self.receivers.front().is_some() {
            match self.hand_to_receiver(item, wake) {
                Ok(()) => return Ok(()),
                Err(item) => item,
            }
        } else {
            item
        };
        if self.has_room() {
            self.buffer.push_back(item);
            self.tell_listeners(wake);
            Ok(())
        } else {
            Err((SendRefusal::Full, item))
        }
    }

    /// The transfer of a receive on an open handle: SPEC S3 without the handle
    /// check. Pops the buffer and refills the freed room from waiting senders,
    /// or takes straight from a waiting sender when the buffer is empty
    /// (rendezvous).
    #[inline]
    pub(crate) fn try_recv(&mut self, wake: &mut Wakeups) -> Result<T, TryRecvError> {
        if let Some(item) = self.buffer.pop_front() {
            // Checked inline: a sender waits only while the buffer is full.
            while self.senders.front().is_some() && self.has_room() {
                match self.take_from_sender(wake) {
                    Some(moved) => self.buffer.push_back(moved),
                    None => break,
                }
            }
            return Ok(item);
        }
        // Checked inline: an empty buffer has nobody waiting to send, unless
        // it is a rendezvous.
        if self.senders.front().is_some() {
            if let Some(item) = self.take_from_sender(wake) {
                return Ok(item);
            }
        }
        if self.is_ended() {
            Err(TryRecvError::EndOfStream)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// SPEC S12: every sender is closed and no item is left anywhere — the
    /// buffer (checked by the caller) or committed to a receive that has not
    /// returned. Once true, true for ever.
    #[inline]
    pub(super) fn is_ended(&self) -> bool {
        self.open_senders == 0 && self.committed == 0
    }

    /// The owner of a `Delivered` slot has taken its item out (to return it,
    /// or to put it back at the head): one committed item fewer. The last one
    /// gone with every sender closed ends the receives still waiting.
    pub(crate) fn collected(&mut self, wake: &mut Wakeups) {
        self.committed -= 1;
        if self.is_ended() && self.buffer.is_empty() {
            self.end_receivers(wake);
        }
    }

    /// The stream has ended: waiting receives get `EndOfStream` (or
    /// `Cancelled`, if their scope was cancelled first) and listeners are told.
    pub(super) fn end_receivers(&mut self, wake: &mut Wakeups) {
        self.receivers.unlink_where(|slot| {
            abort_recv(slot, RecvError::EndOfStream, wake);
            true
        });
        self.tell_listeners(wake);
    }

    /// A sender started to wait: a `Stream` receive can now take its item.
    #[inline]
    pub(crate) fn sender_waiting(&mut self, wake: &mut Wakeups) {
        self.tell_listeners(wake);
    }

    /// Tells every waiting `Stream` receive that an item may be there.
    #[inline]
    fn tell_listeners(&mut self, wake: &mut Wakeups) {
        if self.listeners.front().is_some() {
            self.tell_listeners_where(|_| true, wake);
        }
    }

    #[cold]
    pub(super) fn tell_listeners_where(
        &mut self,
        f: impl Fn(HandleId) -> bool,
        wake: &mut Wakeups,
    ) {
        self.listeners.unlink_where(|listener| match listener {
            Listener::Waiting { handle, .. } if f(*handle) => tell(listener, wake),
            _ => false,
        });
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
                self.tell_listeners(wake);
                None
            }
        }
    }
}

/// Aborts a linked, waiting receive slot with `why` — or with `Cancelled`
/// if its scope was effectively cancelled before this close (SPEC S12).
pub(super) fn abort_recv<T>(slot: &mut RecvSlot<T>, why: RecvError, wake: &mut Wakeups) {
    let RecvSlot::Waiting { waker, scope, .. } =
        std::mem::replace(slot, RecvSlot::Aborted(RecvError::Cancelled))
    else {
        unreachable!("a linked receive slot is always waiting")
    };
    if !scope.is_cancelled() {
        *slot = RecvSlot::Aborted(why);
    }
    wake.push(waker);
}

/// Tells a waiting listener (its waker goes to `wake`); `true`: unlink it.
pub(super) fn tell(listener: &mut Listener, wake: &mut Wakeups) -> bool {
    if let Listener::Waiting { waker, .. } = std::mem::replace(listener, Listener::Told) {
        wake.push(waker);
    }
    true
}

/// Aborts a linked, waiting send slot with `why` — or with `Cancelled` if its
/// scope was effectively cancelled before this close (SPEC S12) — keeping
/// its item for the owner.
pub(super) fn abort_send<T>(slot: &mut SendSlot<T>, why: SendAbort, wake: &mut Wakeups) {
    let SendSlot::Waiting {
        item, waker, scope, ..
    } = std::mem::replace(slot, SendSlot::Taken)
    else {
        unreachable!("a linked send slot is always waiting")
    };
    let why = if scope.is_cancelled() {
        SendAbort::Cancelled
    } else {
        why
    };
    *slot = SendSlot::Aborted(why, item);
    wake.push(waker);
}
