//! What every waiter shares: its place in a line and its scope, and how its
//! task's waker gets into its slot.
//!
//! [`Waiting`] is a blocked operation's (or a listener's) slot key and its
//! registration with its scope, with the order of the steps after a slot
//! is pushed: record the slot, wake what the push collected, register.
//! [`Chan::keep_waker`] puts the task's waker into the slot without ever
//! cloning a waker under the stream lock (a clone is user code); a slot is
//! pushed with [`placeholder_waker`] until then.

use std::task::{Context, Waker};

use super::chan::{Chan, Listener, RecvSlot, SendSlot, State};
use crate::scope::{ScopeRef, ScopeWait};
use crate::sync::MutexGuard;
use crate::waitlist::WaitList;
use crate::wakeups::Wakeups;

impl<T> Chan<T> {
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
