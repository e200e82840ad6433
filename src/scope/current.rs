//! The current scope: a thread-local set for the duration of each poll of a
//! `run` future, and the checkpoint that reads it.
//!
//! The node moves into the thread-local for the poll and back to its owner
//! after it ([`Entered`]), so entering a scope costs no reference-count
//! traffic, and the previous scope is restored even if the poll unwinds.
//! While this thread's thread-locals are being destroyed nothing can be made
//! current, and code runs in the root.
//!
//! This module owns the thread-local; it reads the tree through [`Node`] and
//! knows nothing of streams.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::tree::{same_node, Node};
use crate::error::Cancelled;
use crate::sync::{const_thread_local, TreeArc};

const_thread_local! {
    /// The scope the current poll runs in; `None` is the root.
    static CURRENT: RefCell<Option<TreeArc<Node>>> = RefCell::new(None);
}

const_thread_local! {
    /// Whether `CURRENT` holds a scope: code outside every scope (the
    /// common case of a plain channel user) reads only this flag, which
    /// needs no destructor and hence no registration check, not the cell.
    static IN_SCOPE: Cell<bool> = Cell::new(false);
}

#[inline]
fn in_scope() -> bool {
    IN_SCOPE.try_with(Cell::get).unwrap_or(false)
}

/// The current scope's node (`None`: the root), cloned. While this thread's
/// thread-locals are being destroyed, the root.
#[inline]
pub(super) fn current_node() -> Option<TreeArc<Node>> {
    if !in_scope() {
        return None;
    }
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Whether the current scope is effectively cancelled, without cloning it.
/// Inline: in the root, one thread-local flag is read.
#[inline]
pub(crate) fn current_is_cancelled() -> bool {
    in_scope() && current_scope_is_cancelled()
}

#[inline(never)]
fn current_scope_is_cancelled() -> bool {
    CURRENT
        .try_with(|current| {
            current
                .borrow()
                .as_ref()
                .is_some_and(|node| node.is_cancelled())
        })
        .unwrap_or(false)
}

/// Whether `node` (`None`: the root) is the current scope.
pub(super) fn is_current(node: &Option<TreeArc<Node>>) -> bool {
    CURRENT
        .try_with(|current| same_node(&current.borrow(), node))
        .unwrap_or(node.is_none())
}

/// A scope made current for one poll: restores the previous one, and gives
/// the scope back to its owner, when dropped (even if the poll unwinds).
pub(super) struct Entered<'a> {
    owner: &'a mut Option<TreeArc<Node>>,
    previous: Option<TreeArc<Node>>,
}

impl<'a> Entered<'a> {
    /// Makes `owner`'s scope current, taking it out of `owner` until the
    /// guard drops. `None` while this thread's thread-locals are being
    /// destroyed: the scope cannot be made current, and the poll runs in the
    /// root.
    #[inline]
    pub(super) fn enter(owner: &'a mut Option<TreeArc<Node>>) -> Option<Self> {
        let in_scope = owner.is_some();
        // `owner` is taken only if the thread-local is still there.
        let previous = CURRENT
            .try_with(|current| current.replace(owner.take()))
            .ok()?;
        // Cannot fail: the flag has no destructor, and `CURRENT` is alive.
        let _ = IN_SCOPE.try_with(|flag| flag.set(in_scope));
        Some(Entered { owner, previous })
    }

    /// Leaves the scope at the end of a poll that returned: the restore
    /// inline, in the poll's own frame. (A poll that unwinds restores
    /// through `Drop` instead.)
    #[inline]
    fn exit(mut self) {
        self.restore();
        // Nothing is left to drop: `previous` was moved back just now.
        std::mem::forget(self);
    }

    #[inline]
    fn restore(&mut self) {
        let previous = self.previous.take();
        let in_scope = previous.is_some();
        let _ = CURRENT.try_with(|current| *self.owner = current.replace(previous));
        let _ = IN_SCOPE.try_with(|flag| flag.set(in_scope));
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Runs `f` (a poll) with `owner`'s scope current: see [`Entered`].
#[inline]
pub(super) fn poll_in<R>(owner: &mut Option<TreeArc<Node>>, f: impl FnOnce() -> R) -> R {
    match Entered::enter(owner) {
        Some(entered) => {
            let out = f();
            entered.exit();
            out
        }
        None => f(),
    }
}

/// A cancellation point: fails with [`Cancelled`] if the current scope is
/// effectively cancelled, and otherwise yields to the executor once.
///
/// The scope is checked at the first poll, then the future yields once; it
/// does not check again after the yield (the next checkpoint will). The
/// future is `Unpin`, so it can be polled in place.
///
/// # Cancel safety
///
/// A checkpoint takes nothing and changes nothing: dropping it at any point
/// is safe.
///
/// ```
/// # futures::executor::block_on(async {
/// let scope = scopestream::CancelScope::new();
/// scope.cancel();
/// assert!(scope.run(scopestream::checkpoint()).await.is_err());
/// assert!(scopestream::checkpoint().await.is_ok()); // the root is never cancelled
/// # });
/// ```
pub fn checkpoint() -> Checkpoint {
    Checkpoint { checked: false }
}

/// The future of [`checkpoint`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Checkpoint {
    /// The scope was checked (and found not cancelled): the next poll
    /// completes.
    checked: bool,
}

impl Future for Checkpoint {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::replace(&mut self.checked, true) {
            return Poll::Ready(Ok(()));
        }
        if current_is_cancelled() {
            return Poll::Ready(Err(Cancelled));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
