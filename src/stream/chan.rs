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
//! very stream and use it when dropped. None of it runs under the lock. Wakers
//! are collected into [`Wakeups`] and woken after unlocking (every one, even
//! if one panics); items, replaced wakers and settled slots are handed out
//! to be dropped after unlocking. A slot's `ScopeRef` may be dropped under
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
use std::task::{Context, Waker};

use crate::error::{RecvError, TryRecvError};
use crate::scope::{ScopeRef, ScopeWait};
use crate::statistics::Statistics;
use crate::sync::{Arc, Mutex, MutexGuard};
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
    buffer: VecDeque<T>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    pub(crate) receivers: WaitList<RecvSlot<T>>,
    pub(crate) senders: WaitList<SendSlot<T>>,
    /// `Stream` receives waiting to be told that an item may be there.
    listeners: WaitList<Listener>,
    /// `MemorySender::broken` futures waiting for the last receiver to close.
    broken_watchers: WaitList<Listener>,
    /// Items in `Delivered` slots: committed, not yet collected.
    committed: usize,
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

    /// Items in the buffer now (one lock, no walk of the waiter lines).
    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock()
    }

    /// Makes the slot `key` of the line `line` picks wake `waker`'s task, if
    /// it still waits, without ever cloning a waker under the lock (a clone
    /// is user code, and may use this very stream): compared with
    /// `will_wake` under the lock, a different waker is cloned after
    /// unlocking and installed after locking again.
    ///
    /// Returns the lock and whether the slot still waits; if it does not, a
    /// peer settled it meanwhile (the caller settles it in turn) or told it
    /// (a listener: the caller polls again). The waker replaced, or the
    /// clone unused, goes to `stale`, for the caller to drop after
    /// unlocking.
    pub(crate) fn keep_waker<'a, S: WakerSlot>(
        &'a self,
        mut state: MutexGuard<'a, State<T>>,
        line: fn(&mut State<T>) -> &mut WaitList<S>,
        key: usize,
        waker: &Waker,
        stale: &mut Option<Waker>,
    ) -> (MutexGuard<'a, State<T>>, bool) {
        match line(&mut state).get_mut(key).waker_mut() {
            None => return (state, false),
            Some(stored) if stored.will_wake(waker) => return (state, true),
            Some(_) => {}
        }
        drop(state);
        let fresh = waker.clone();
        let mut state = self.lock();
        let still_waiting = match line(&mut state).get_mut(key).waker_mut() {
            Some(stored) => {
                *stale = Some(std::mem::replace(stored, fresh));
                true
            }
            None => {
                *stale = Some(fresh);
                false
            }
        };
        (state, still_waiting)
    }
}

/// A waiter's slot, holding its task's waker while it waits.
pub(crate) trait WakerSlot {
    /// The stored waker while the slot waits; `None` once settled or told.
    fn waker_mut(&mut self) -> Option<&mut Waker>;
}

impl<T> WakerSlot for RecvSlot<T> {
    fn waker_mut(&mut self) -> Option<&mut Waker> {
        match self {
            RecvSlot::Waiting { waker, .. } => Some(waker),
            _ => None,
        }
    }
}

impl<T> WakerSlot for SendSlot<T> {
    fn waker_mut(&mut self) -> Option<&mut Waker> {
        match self {
            SendSlot::Waiting { waker, .. } => Some(waker),
            _ => None,
        }
    }
}

impl WakerSlot for Listener {
    fn waker_mut(&mut self) -> Option<&mut Waker> {
        match self {
            Listener::Waiting { waker, .. } => Some(waker),
            Listener::Told => None,
        }
    }
}

/// The waker a new slot holds until its owner's waker is installed (see
/// [`Chan::keep_waker`]): std's no-op waker, whose clone runs no user code.
#[inline]
pub(crate) fn placeholder_waker() -> Waker {
    Waker::noop().clone()
}

/// The lines of waiters, for [`Chan::keep_waker`].
pub(crate) fn receivers<T>(state: &mut State<T>) -> &mut WaitList<RecvSlot<T>> {
    &mut state.receivers
}

pub(crate) fn senders<T>(state: &mut State<T>) -> &mut WaitList<SendSlot<T>> {
    &mut state.senders
}

pub(crate) fn listeners<T>(state: &mut State<T>) -> &mut WaitList<Listener> {
    &mut state.listeners
}

pub(crate) fn broken_watchers<T>(state: &mut State<T>) -> &mut WaitList<Listener> {
    &mut state.broken_watchers
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
    fn is_ended(&self) -> bool {
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
    fn end_receivers(&mut self, wake: &mut Wakeups) {
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
    fn tell_listeners_where(&mut self, f: impl Fn(HandleId) -> bool, wake: &mut Wakeups) {
        self.listeners.unlink_where(|listener| match listener {
            Listener::Waiting { handle, .. } if f(*handle) => tell(listener, wake),
            _ => false,
        });
    }

    /// A `Stream` receive on `handle` found nothing: keeps (or puts) it in
    /// the listener line. `key` is its slot from an earlier poll, if any.
    /// Returns the slot's key; a new slot holds a placeholder waker until
    /// the caller installs its own with [`Chan::keep_waker`].
    pub(crate) fn listen(&mut self, key: Option<usize>, handle: HandleId) -> usize {
        listen_in(&mut self.listeners, key, handle)
    }

    /// Frees a `Stream` receive's listener slot; returns its waker, if it had
    /// not been told, for the caller to drop after unlocking.
    pub(crate) fn unlisten(&mut self, key: usize) -> Option<Waker> {
        unlisten_in(&mut self.listeners, key)
    }

    /// Whether every receiver is closed: no item can ever be received.
    pub(crate) fn is_broken(&self) -> bool {
        self.open_receivers == 0
    }

    /// A `broken()` future found receivers open: keeps (or puts) it in the
    /// line told when the last one closes; as [`listen`](State::listen).
    pub(crate) fn watch_broken(&mut self, key: Option<usize>, handle: HandleId) -> usize {
        listen_in(&mut self.broken_watchers, key, handle)
    }

    /// Frees a `broken()` future's slot; as [`unlisten`](State::unlisten).
    pub(crate) fn unwatch_broken(&mut self, key: usize) -> Option<Waker> {
        unlisten_in(&mut self.broken_watchers, key)
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

/// Aborts a linked, waiting receive slot with `why` — or with `Cancelled`
/// if its scope was effectively cancelled before this close (SPEC S12).
fn abort_recv<T>(slot: &mut RecvSlot<T>, why: RecvError, wake: &mut Wakeups) {
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
fn tell(listener: &mut Listener, wake: &mut Wakeups) -> bool {
    if let Listener::Waiting { waker, .. } = std::mem::replace(listener, Listener::Told) {
        wake.push(waker);
    }
    true
}

/// [`State::listen`] on either line of listeners.
fn listen_in(line: &mut WaitList<Listener>, key: Option<usize>, handle: HandleId) -> usize {
    if let Some(key) = key {
        if let Listener::Waiting { .. } = line.get(key) {
            return key;
        }
        // Told since: a fresh slot goes to the back of the line.
        line.remove(key);
    }
    line.push_back(Listener::Waiting {
        waker: placeholder_waker(),
        handle,
    })
}

/// [`State::unlisten`] on either line of listeners.
fn unlisten_in(line: &mut WaitList<Listener>, key: usize) -> Option<Waker> {
    match line.remove(key) {
        Listener::Waiting { waker, .. } => Some(waker),
        Listener::Told => None,
    }
}

/// Aborts a linked, waiting send slot with `why` — or with `Cancelled` if its
/// scope was effectively cancelled before this close (SPEC S12) — keeping
/// its item for the owner.
fn abort_send<T>(slot: &mut SendSlot<T>, why: SendAbort, wake: &mut Wakeups) {
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

/// A blocked stream operation: its slot in the stream's line, and its
/// registration with its scope (dropped: deregistered).
pub(super) struct Waiting {
    pub(super) key: usize,
    pub(super) scope: ScopeWait,
}

impl Waiting {
    /// The scope a new waiter waits in: the current one, or the root for the
    /// blocking API, which ignores scopes.
    #[inline]
    pub(super) fn scope(ignore_scope: bool) -> ScopeRef {
        if ignore_scope {
            ScopeRef::ROOT
        } else {
            ScopeRef::current()
        }
    }

    /// The waker a new slot is pushed with, under the lock: the blocking
    /// API's own thread waker (no user code, so cloned at once), else a
    /// placeholder until [`Chan::keep_waker`] installs the task's own.
    #[inline]
    pub(super) fn first_waker(ignore_scope: bool, cx: &Context<'_>) -> Waker {
        if ignore_scope {
            cx.waker().clone()
        } else {
            placeholder_waker()
        }
    }

    /// After a listener (a `Stream` receive or a `broken()` future) was put
    /// or kept in slot `key` and the lock released: records the slot in
    /// `place`, keeping the scope registration made at an earlier poll if
    /// that scope is still current (another scope's is dropped here, outside
    /// the lock), then registers. Returns whether the scope was found
    /// effectively cancelled meanwhile; nothing is ever committed to a
    /// listener, so the caller only has to stop listening.
    #[inline]
    pub(super) fn listen(place: &mut Option<Waiting>, key: usize, cx: &mut Context<'_>) -> bool {
        let listening = match place {
            Some(listening) if listening.scope.is_current() => {
                listening.key = key;
                listening
            }
            slot => slot.insert(Waiting {
                key,
                scope: ScopeWait::new(ScopeRef::current()),
            }),
        };
        listening.scope.register_and_check(cx)
    }

    /// After slot `key` was pushed into a line and the lock released:
    /// records the slot in `place` *before* any waker runs — if one panics,
    /// the future's `Drop` still finds the slot and frees it — then wakes what
    /// the push collected and registers with `scope`. Returns whether the
    /// scope was found effectively cancelled meanwhile, which the caller then
    /// settles under the lock.
    #[inline]
    pub(super) fn record(
        place: &mut Option<Waiting>,
        key: usize,
        scope: ScopeRef,
        wake: Wakeups,
        cx: &mut Context<'_>,
    ) -> bool {
        let waiting = place.insert(Waiting {
            key,
            scope: ScopeWait::new(scope),
        });
        wake.wake_all();
        waiting.scope.register_and_check(cx)
    }
}
