//! Cancel scopes, as in Trio and AnyIO: the scope wing.
//!
//! This file holds the public handle, [`CancelScope`], and [`Scoped`], the
//! future that runs code inside one. The handle is a thin wrapper over a
//! node of the scope tree; the rest of the wing is split by concern:
//!
//! | file         | owns                                                         |
//! |--------------|--------------------------------------------------------------|
//! | `tree.rs`    | nodes, flags, binding, cancel and shield, waking a subtree   |
//! | `current.rs` | the thread-local current scope, [`checkpoint`]               |
//! | `wait.rs`    | a blocked operation's registration, [`WaitCancelled`]        |
//! | `clock.rs`   | the clock, deadlines as ticks                                |
//! | `timer.rs`   | the timer that wakes an operation blocked under a deadline   |
//! | `timeout.rs` | `move_on_after`, `fail_after` and their kin                  |
//!
//! `tree.rs` explains the model — effective cancellation, how a cancel
//! reaches a blocked operation, deadlines — and the arguments for its races.
//!
//! The wing uses the floor (`sync`, `waitlist`, `wakeups`, `error`) and
//! knows nothing of streams. The stream wing sees only what a waiter needs,
//! re-exported below: whether the current scope is effectively cancelled
//! ([`current_is_cancelled`]), a waiter's scope ([`ScopeRef`]) and its
//! registration ([`ScopeWait`]).

pub(crate) mod clock;
mod current;
pub(crate) mod timeout;
mod timer;
mod tree;
mod wait;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

use clock::{from_ticks, to_ticks, NO_DEADLINE};
use tree::{same_node, Node};

pub(crate) use current::current_is_cancelled;
pub use current::{checkpoint, Checkpoint};
pub use wait::{Cancellable, WaitCancelled};
pub(crate) use wait::{ScopeRef, ScopeWait};

use crate::sync::TreeArc;

/// A cancellation domain. Cloning gives another handle to the same scope.
///
/// Code runs *inside* a scope while it is polled through [`CancelScope::run`].
/// Every [`checkpoint`] and every asynchronous stream operation started there
/// fails with [`Cancelled`](crate::Cancelled) once the scope is *effectively* cancelled (see
/// [`is_cancelled`](CancelScope::is_cancelled)), again and again
/// (level-triggered), and operations blocked there are woken at once.
///
/// ```
/// use scopestream::{checkpoint, CancelScope, Cancelled};
///
/// # futures::executor::block_on(async {
/// let scope = CancelScope::new();
/// let result = scope
///     .run(async {
///         checkpoint().await?;                 // fine: not cancelled yet
///         CancelScope::current().cancel();     // cancel ourselves
///         checkpoint().await?;                 // fails here...
///         unreachable!("checkpoints are level-triggered");
///         #[allow(unreachable_code)]
///         Ok::<(), Cancelled>(())
///     })
///     .await;
/// assert_eq!(result, Err(Cancelled));
/// assert!(scope.is_cancel_called());
/// # });
/// ```
///
/// A scope can also have a [deadline](CancelScope::with_deadline): when it
/// passes, the scope is cancelled exactly as by `cancel()`, and operations
/// blocked inside are woken by a timer. [`move_on_after`](crate::move_on_after)
/// and [`fail_after`](crate::fail_after) wrap the common uses.
///
/// The scope returned by [`CancelScope::current`] outside any `run` is the
/// *root*: it is never cancelled, and `cancel`/`set_shield`/`set_deadline` on
/// it do nothing.
#[derive(Clone)]
pub struct CancelScope {
    /// `None` is the root.
    node: Option<TreeArc<Node>>,
}

impl Default for CancelScope {
    /// A new scope, as [`CancelScope::new`] (not the root, which is
    /// [`CancelScope::current`] outside any `run`).
    fn default() -> Self {
        Self::new()
    }
}

impl CancelScope {
    /// A new scope, not cancelled and not shielded. Its parent is the scope
    /// that is current when one of its [`run`](CancelScope::run) futures is
    /// first polled.
    pub fn new() -> Self {
        CancelScope {
            node: Some(TreeArc::new(Node::default())),
        }
    }

    /// A new scope with its shield up: cancellation of the scopes around it
    /// does not reach inside (its own [`cancel`](CancelScope::cancel) still does).
    ///
    /// ```
    /// use scopestream::{checkpoint, CancelScope};
    ///
    /// # futures::executor::block_on(async {
    /// let outer = CancelScope::new();
    /// outer
    ///     .run(async {
    ///         CancelScope::current().cancel();
    ///         assert!(checkpoint().await.is_err());
    ///         // Cleanup code under a shield still runs to completion.
    ///         let cleanup = CancelScope::shielded().run(checkpoint()).await;
    ///         assert!(cleanup.is_ok());
    ///     })
    ///     .await;
    /// # });
    /// ```
    pub fn shielded() -> Self {
        let scope = Self::new();
        scope.set_shield(true);
        scope
    }

    /// A new scope whose parent is `self`, bound now rather than at first
    /// poll. This is how a task group puts tasks it spawns under its scope.
    ///
    /// ```
    /// use scopestream::CancelScope;
    ///
    /// let group = CancelScope::new();
    /// let task = group.child();
    /// group.cancel();
    /// assert!(task.is_cancelled() && !task.is_cancel_called());
    /// ```
    pub fn child(&self) -> CancelScope {
        let child = TreeArc::new(Node::default());
        Node::bind_new(&child, self.node.clone());
        CancelScope { node: Some(child) }
    }

    /// The scope the current poll runs in: the innermost [`run`](CancelScope::run)
    /// being polled on this thread, or the root outside any.
    pub fn current() -> CancelScope {
        CancelScope {
            node: current::current_node(),
        }
    }

    /// Cancels this scope and, through it, every scope inside it that is not
    /// shielded. Wakes the operations blocked there. Idempotent; callable from
    /// any thread. Does nothing on the root.
    pub fn cancel(&self) {
        if let Some(node) = &self.node {
            node.cancel();
        }
    }

    /// Whether [`cancel`](CancelScope::cancel) was called on this very scope,
    /// or its [deadline](CancelScope::deadline) has passed. Once `true`,
    /// always `true`.
    pub fn is_cancel_called(&self) -> bool {
        self.node
            .as_ref()
            .is_some_and(|node| node.is_cancel_called())
    }

    /// Whether code inside this scope is *effectively* cancelled right now: this
    /// scope's cancel was called, or, unless it is shielded, its parent is
    /// effectively cancelled. Computed from the live state of the whole chain.
    pub fn is_cancelled(&self) -> bool {
        self.node.as_ref().is_some_and(|node| node.is_cancelled())
    }

    /// Raises or lowers the shield. Lowering it while an outer scope is
    /// cancelled wakes the operations blocked inside, which then fail with
    /// [`Cancelled`](crate::Cancelled). Does nothing on the root.
    pub fn set_shield(&self, shield: bool) {
        if let Some(node) = &self.node {
            node.set_shield(shield);
        }
    }

    /// Whether the shield is up.
    pub fn is_shielded(&self) -> bool {
        self.node.as_ref().is_some_and(|node| node.is_shielded())
    }

    /// A new scope, like [`new`](CancelScope::new), that cancels itself when
    /// `deadline` passes.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use scopestream::{memory_stream, CancelScope, RecvError};
    ///
    /// # futures::executor::block_on(async {
    /// let (_tx, rx) = memory_stream::<u32>(0);
    /// let scope = CancelScope::with_deadline(Instant::now() + Duration::from_millis(20));
    /// // Nobody sends: the deadline wakes the blocked receive, which fails.
    /// assert_eq!(scope.run(rx.recv()).await, Err(RecvError::Cancelled));
    /// assert!(scope.is_cancel_called());
    /// # });
    /// ```
    pub fn with_deadline(deadline: Instant) -> Self {
        CancelScope {
            node: Some(TreeArc::new(Node::with_deadline(to_ticks(deadline)))),
        }
    }

    /// This scope's own deadline, if it has one (the root never has).
    pub fn deadline(&self) -> Option<Instant> {
        match self.node.as_ref()?.deadline() {
            NO_DEADLINE => None,
            ticks => Some(from_ticks(ticks)),
        }
    }

    /// Sets, moves (earlier or later) or removes (`None`) this scope's
    /// deadline, at any time and from any thread. Operations blocked inside
    /// re-arm their timers at once: moved earlier, the scope is cancelled at
    /// the new instant (at once if it has passed); moved later, not before it.
    ///
    /// A deadline that has already passed has already cancelled the scope —
    /// like a call to [`cancel`](CancelScope::cancel), that cannot be undone by
    /// moving it. Does nothing on the root.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use scopestream::CancelScope;
    ///
    /// let scope = CancelScope::with_deadline(Instant::now() + Duration::from_secs(3600));
    /// assert!(!scope.is_cancel_called());
    /// scope.set_deadline(Some(Instant::now())); // moved earlier: passes now
    /// assert!(scope.is_cancel_called());
    /// scope.set_deadline(None);                 // too late to take it back
    /// assert!(scope.is_cancel_called() && scope.deadline().is_none());
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        if let Some(node) = &self.node {
            node.set_deadline(deadline.map_or(NO_DEADLINE, to_ticks));
        }
    }

    /// The deadline that applies to code inside this scope: the earliest of
    /// its own and its ancestors' deadlines, up to and including the nearest
    /// shielded scope (an outer deadline does not pass a shield, just as an
    /// outer `cancel()` does not). Whether any of them has passed is
    /// [`is_cancelled`](CancelScope::is_cancelled)'s business.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use scopestream::CancelScope;
    ///
    /// let soon = Instant::now() + Duration::from_secs(1);
    /// let later = soon + Duration::from_secs(1);
    /// let outer = CancelScope::with_deadline(soon);
    /// let inner = outer.child();
    /// inner.set_deadline(Some(later));
    /// assert_eq!(inner.effective_deadline(), Some(soon));
    /// inner.set_shield(true);
    /// assert_eq!(inner.effective_deadline(), Some(later));
    /// ```
    pub fn effective_deadline(&self) -> Option<Instant> {
        match self.node.as_ref()?.effective_deadline() {
            NO_DEADLINE => None,
            ticks => Some(from_ticks(ticks)),
        }
    }

    /// Whether this scope catches a cancellation its code stopped for: the
    /// rule a Trio or AnyIO scope applies on exit (`cancelled_caught`), and
    /// the one a task group needs when its body returns. `true` if this
    /// scope's own cancel was called (or its deadline passed) and no
    /// cancellation from outside is visible in it: the outermost cancelled
    /// scope up to a shield is the one that catches, and an inner one lets
    /// the cancellation pass on. Never for the root.
    ///
    /// ```
    /// use scopestream::CancelScope;
    ///
    /// let outer = CancelScope::new();
    /// let inner = outer.child();
    /// inner.cancel();
    /// assert!(inner.catches()); // its own cancel, nothing from outside
    /// outer.cancel();
    /// assert!(!inner.catches() && outer.catches()); // the outermost catches
    /// inner.set_shield(true);
    /// assert!(inner.catches()); // nothing from outside passes the shield
    /// ```
    #[doc(alias = "cancelled_caught")]
    pub fn catches(&self) -> bool {
        self.node.as_ref().is_some_and(|node| node.catches())
    }

    /// Runs `fut` inside this scope: while it is polled, this scope is
    /// [`current`](CancelScope::current). The output is `fut`'s, unchanged.
    ///
    /// Many futures may run inside the same scope at once, on any threads.
    pub fn run<F: Future>(&self, fut: F) -> Scoped<F> {
        Scoped {
            scope: self.clone(),
            fut,
        }
    }

    /// Completes when this scope is *effectively* cancelled — by its own
    /// `cancel()` or deadline, or by an outer scope while no shield is in
    /// between — and never for the root. Use it to make a future from
    /// another library give way to a cancel scope:
    ///
    /// ```
    /// use std::time::Duration;
    /// use scopestream::{move_on_after, CancelScope, Cancelled};
    ///
    /// # futures::executor::block_on(async {
    /// let foreign = std::future::pending::<()>(); // knows nothing of scopes
    /// let out = move_on_after(Duration::from_millis(20), async {
    ///     let scope = CancelScope::current();
    ///     futures::future::select(std::pin::pin!(foreign), scope.cancelled()).await;
    ///     Err::<(), _>(Cancelled)
    /// })
    /// .await;
    /// assert_eq!(out, None);
    /// # });
    /// ```
    pub fn cancelled(&self) -> WaitCancelled {
        WaitCancelled::new(self.node.clone())
    }

    /// The scope this one is bound under: `Some` once bound (at
    /// [`child`](CancelScope::child), or at the first poll of a
    /// [`run`](CancelScope::run) future), the root included; `None` for the
    /// root itself and for a scope not bound yet.
    ///
    /// ```
    /// use scopestream::CancelScope;
    ///
    /// let group = CancelScope::new();
    /// let task = group.child();
    /// assert!(task.parent().is_some_and(|p| p.same_scope(&group)));
    /// assert!(group.parent().is_none()); // bound at its first run
    /// assert!(CancelScope::current().is_root() && CancelScope::current().parent().is_none());
    /// ```
    pub fn parent(&self) -> Option<CancelScope> {
        let node = self.node.as_ref()?.parent()?;
        Some(CancelScope { node })
    }

    /// Whether this handle is the root scope (never cancelled).
    pub fn is_root(&self) -> bool {
        self.node.is_none()
    }

    /// `true` if both handles refer to the same scope.
    pub fn same_scope(&self, other: &CancelScope) -> bool {
        same_node(&self.node, &other.node)
    }
}

impl fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            None => f.write_str("CancelScope(root)"),
            Some(node) => f
                .debug_struct("CancelScope")
                .field("cancel_called", &node.cancel_called_flag())
                .field("shielded", &node.is_shielded())
                .field("cancelled", &node.is_cancelled())
                .field("deadline", &self.deadline())
                .finish(),
        }
    }
}

pin_project! {
    /// The future returned by [`CancelScope::run`]: polls the inner future
    /// with its scope current.
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        scope: CancelScope,
        #[pin]
        fut: F,
    }
}

impl<F> Scoped<F> {
    /// The scope the inner future runs in.
    pub fn scope(&self) -> &CancelScope {
        &self.scope
    }
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Some(node) = this.scope.node.as_ref().filter(|n| n.is_unbound()) {
            Node::bind(node, current::current_node());
        }
        let fut = this.fut;
        current::poll_in(&mut this.scope.node, || fut.poll(cx))
    }
}

/// What a future needs to live in the scope tree, for any future: carried
/// into a task that runs elsewhere, or made a cancellation point.
///
/// ```
/// use scopestream::{CancelScope, Cancelled, ScopeExt};
///
/// # futures::executor::block_on(async {
/// let group = CancelScope::new();
/// let out = group
///     .run(async {
///         // As a runtime's spawn would: the task runs elsewhere, later...
///         let task = std::future::pending::<()>().cancellable().in_current_scope();
///         CancelScope::current().cancel();
///         task.await // ...and is still cancelled with the scope it came from.
///     })
///     .await;
/// assert_eq!(out, Err(Cancelled));
/// # });
/// ```
pub trait ScopeExt: Future + Sized {
    /// Runs this future in a new child of the scope current *now*, bound at
    /// once, so that it stays under that scope wherever and whenever it is
    /// polled: `tokio::spawn(fut.in_current_scope())` keeps a spawned task
    /// inside the scope that spawned it. A task spawned without it runs in
    /// the root and is never cancelled. The child is the returned future's
    /// [`scope`](Scoped::scope), to cancel the task alone.
    ///
    /// Same as `CancelScope::current().child().run(self)`.
    fn in_current_scope(self) -> Scoped<Self> {
        CancelScope::current().child().run(self)
    }

    /// Makes this future a cancellation point of the scope current when it
    /// is polled: it completes with the future's output, or with
    /// [`Cancelled`](crate::Cancelled) as soon as that scope is effectively
    /// cancelled, dropping the future — as tokio-util's
    /// `run_until_cancelled` does for a token. For futures of other
    /// libraries (a `tokio::time::sleep`, a socket read) that know nothing of
    /// scopes.
    ///
    /// # Cancel safety
    ///
    /// Checked first at every poll, like every checkpoint: in a cancelled
    /// scope the future is dropped without being polled again, even if it
    /// would have been ready. Whatever dropping it loses is lost; the
    /// crate's own operations lose nothing when dropped.
    fn cancellable(self) -> Cancellable<Self> {
        Cancellable::new(self)
    }
}

impl<F: Future> ScopeExt for F {}
