//! Cancel scopes: a tree of cancellation domains, as in Trio and AnyIO.
//!
//! # The tree
//!
//! Each [`CancelScope`] is a handle to a node with two live flags and a
//! parent link:
//!
//! ```text
//!            root (never cancelled, no node)
//!             │
//!          ┌──┴──┐           cancel_called: set once, by cancel() (or a deadline)
//!          A     B           shield:        toggled at any time by set_shield()
//!          │                 parent:        bound once: at child(), or at the
//!          C (shielded)                     first poll of a run() future
//!          │
//!          D
//! ```
//!
//! **Effective cancellation** (SPEC C2) is computed on demand, never cached:
//! walk from the scope outward; a scope whose `cancel_called` is set is
//! cancelled; else a shielded scope is not; else ask the parent. Above, with A
//! cancelled, D is not effectively cancelled while C is shielded, and is as
//! soon as the shield drops.
//!
//! # How cancellation reaches a blocked operation
//!
//! A blocked operation registers its waker in the node of its own scope
//! (a slab slot, recycled, so steady-state blocking does not allocate). Each
//! node also keeps weak links to its children. `cancel()` sets the flag and
//! then walks the subtree, waking every registered waker, and does not descend
//! into a child that is shielded or already cancelled (the latter woke its own
//! subtree). `set_shield(false)` on a scope that is then effectively cancelled
//! walks its subtree the same way.
//!
//! Two races need an argument, and both rest on the node's mutex:
//!
//! * *register vs cancel.* An operation registers under the node lock and only
//!   then checks the flags. `cancel()` stores its flag before it takes that
//!   lock. Whichever takes the lock second sees the other's write: either the
//!   walk finds the waker, or the check finds the flag.
//! * *cancel vs unshield.* The shield flag is written under the node lock, and
//!   the walk reads a child's shield under the same lock. If the walk comes
//!   second it sees the shield down and wakes; if `set_shield(false)` comes
//!   second it sees the ancestor's flag and walks itself.
//!
//! The operation, once woken, decides under its stream's lock (SPEC C5): an
//! item already committed to it wins; otherwise cancellation does.
//!
//! # Deadlines
//!
//! A node's deadline is one more live word beside its flags. A passed
//! deadline *is* a cancel: whoever first reads the chain after the instant —
//! a checkpoint, an operation's start, the delivery-time check of C6,
//! `is_cancel_called` — sets `cancel_called` then and there, so the scope
//! behaves exactly as if `cancel()` had been called at that read, with all of
//! C1–C6, and moving the deadline later afterwards changes nothing.
//!
//! That read may happen under a stream lock, so it only sets the flag and
//! wakes nobody. Prompt wake-ups come from the blocked operations themselves:
//! each one whose chain has a deadline (the *effective deadline*, the earliest
//! up to the nearest shield) arms one timer for it (see `timer`). When the
//! timer fires, the operation cancels every scope on its chain whose deadline
//! is no later than the timer's — the timer has seen that instant pass — which
//! wakes their subtrees like `cancel()`. Moving a deadline, or lowering a
//! shield under one, wakes the subtree so that its operations re-arm: the
//! *register-then-check* argument above covers this race too, with "the
//! deadline word" in place of "the flag".

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::chan::{swap_waker, Wakeups};
use crate::sync::{
    const_thread_local, AtomicU8, DeadlineWord, Mutex, OnceLock, Ordering, TreeArc, TreeWeak,
};
use crate::timer::{self, Timer};
use crate::waitlist::WaitList;

/// A cancellation domain. Cloning gives another handle to the same scope.
///
/// Code runs *inside* a scope while it is polled through [`CancelScope::run`].
/// Every [`checkpoint`] and every asynchronous stream operation started there
/// fails with [`Cancelled`] once the scope is *effectively* cancelled (see
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

// Unwind safety: a handle is a reference to a node whose flags are atomics
// and whose other state sits behind a lock that no user code ever runs
// under (wakers are woken and dropped after it), so a panic caught while a
// handle is borrowed cannot leave the scope half-updated; as with std's
// `Arc<Mutex<_>>`, the handle may be used again after `catch_unwind`.
impl std::panic::UnwindSafe for CancelScope {}
impl std::panic::RefUnwindSafe for CancelScope {}

/// `Node::flags`: `cancel()` was called (set once, never cleared).
const CANCEL_CALLED: u8 = 0b01;
/// `Node::flags`: the shield is up. ORDERING: changed only under the node
/// lock (see the module docs).
const SHIELD: u8 = 0b10;

/// `Node::deadline` when there is none.
const NO_DEADLINE: i64 = i64::MAX;

pub(crate) struct Node {
    /// `CANCEL_CALLED | SHIELD`, in one word so that a chain walk reads each
    /// scope once.
    flags: AtomicU8,
    /// Nanoseconds from [`epoch`], or [`NO_DEADLINE`].
    deadline: DeadlineWord,
    /// `None` inside: bound to the root. Unset: not bound yet.
    parent: OnceLock<Option<TreeArc<Node>>>,
    state: Mutex<NodeState>,
}

/// The wakers of the operations blocked in one scope: the first in a slot of
/// its own, so that a scope with one blocked operation — a task's own scope,
/// typically — never allocates a slab; the others in a slab.
struct Waiters {
    solo: Option<Waker>,
    rest: WaitList<Waker>,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters {
            solo: None,
            rest: WaitList::new(),
        }
    }
}

impl Waiters {
    /// The key of the `solo` slot (slab keys are indices, never this).
    const SOLO: usize = usize::MAX;

    fn push_back(&mut self, waker: Waker) -> usize {
        if self.solo.is_none() {
            self.solo = Some(waker);
            Self::SOLO
        } else {
            self.rest.push_back(waker)
        }
    }

    fn get_mut(&mut self, key: usize) -> &mut Waker {
        match key {
            Self::SOLO => self.solo.as_mut().expect("the solo waiter is registered"),
            key => self.rest.get_mut(key),
        }
    }

    fn remove(&mut self, key: usize) -> Waker {
        match key {
            Self::SOLO => self.solo.take().expect("the solo waiter is registered"),
            key => self.rest.remove(key),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Waker)) {
        self.solo.iter().for_each(&mut f);
        self.rest.iter().for_each(f);
    }
}

struct NodeState {
    /// Wakers of the operations blocked directly in this scope.
    waiters: Waiters,
    children: Vec<TreeWeak<Node>>,
    /// Dead children are pruned when `children` reaches this length.
    prune_at: usize,
}

const_thread_local! {
    /// The scope the current poll runs in; `None` is the root.
    static CURRENT: RefCell<Option<TreeArc<Node>>> = RefCell::new(None);
}

impl Default for Node {
    fn default() -> Self {
        Node {
            flags: AtomicU8::new(0),
            deadline: DeadlineWord::new(NO_DEADLINE),
            parent: OnceLock::new(),
            state: Mutex::new(NodeState {
                waiters: Waiters::default(),
                children: Vec::new(),
                prune_at: 8,
            }),
        }
    }
}

/// Serialises [`Node::bind`]'s cycle check with its binding.
static BINDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A deep chain of scopes is dropped iteratively: each node gives up its
/// parent link before it goes, so dropping the innermost of 100 000 nested
/// scopes does not recurse 100 000 frames deep.
impl Drop for Node {
    fn drop(&mut self) {
        let mut parent = self.parent.take().flatten();
        while let Some(node) = parent {
            parent = TreeArc::into_inner(node).and_then(|mut node| node.parent.take().flatten());
        }
    }
}

impl Node {
    /// The chain from this scope outward, up to and including the nearest
    /// shielded scope (or the root), each scope with its flags read once.
    /// Every rule of SPEC C2 and every deadline rule walks exactly this.
    fn chain(&self) -> impl Iterator<Item = (&Node, u8)> {
        let mut next = Some(self);
        std::iter::from_fn(move || {
            let node = next?;
            let flags = node.flags();
            next = match node.parent.get() {
                Some(Some(parent)) if flags & SHIELD == 0 => Some(&**parent),
                _ => None,
            };
            Some((node, flags))
        })
    }

    /// SPEC C2, from the live flags and deadlines of the whole chain.
    fn is_cancelled(&self) -> bool {
        self.cancelled_or_deadline().is_none()
    }

    /// `None` if effectively cancelled, else the effective deadline: one
    /// walk, reading each scope's flags and deadline once.
    fn cancelled_or_deadline(&self) -> Option<i64> {
        let mut now = LazyNow::default();
        let mut earliest = NO_DEADLINE;
        for (node, flags) in self.chain() {
            // ORDERING: Acquire pairs with the Release store in `set_deadline`.
            let deadline = node.deadline.load(Ordering::Acquire);
            if flags & CANCEL_CALLED != 0 || node.expire_if_passed(deadline, &mut now) {
                return None;
            }
            earliest = earliest.min(deadline);
        }
        Some(earliest)
    }

    /// `cancel_called`, expiring a passed deadline first.
    fn is_cancel_called(&self) -> bool {
        self.flags() & CANCEL_CALLED != 0
            || self.expire_if_passed(
                self.deadline.load(Ordering::Acquire),
                &mut LazyNow::default(),
            )
    }

    /// If `deadline` (this node's, as just read) has passed, sets
    /// `cancel_called` (waking nobody: we may be under a stream lock; see the
    /// module docs) and says so.
    #[inline]
    fn expire_if_passed(&self, deadline: i64, now: &mut LazyNow) -> bool {
        if deadline == NO_DEADLINE || deadline > now.ticks() {
            return false;
        }
        self.flags.fetch_or(CANCEL_CALLED, Ordering::AcqRel);
        true
    }

    /// The earliest deadline on the chain up to the nearest shield.
    fn effective_deadline(&self) -> i64 {
        self.chain()
            .map(|(node, _)| node.deadline.load(Ordering::Acquire))
            .min()
            .unwrap_or(NO_DEADLINE)
    }

    /// A timer armed for `deadline` fired: cancels every scope on the chain
    /// (up to the nearest shield) whose deadline is no later.
    fn expire_through(&self, deadline: i64) {
        for (node, _) in self.chain() {
            if node.deadline.load(Ordering::Acquire) <= deadline {
                node.cancel();
            }
        }
    }

    fn cancel(&self) {
        if self.flags.fetch_or(CANCEL_CALLED, Ordering::AcqRel) & CANCEL_CALLED == 0 {
            self.wake_subtree();
        }
    }

    #[inline]
    fn flags(&self) -> u8 {
        // ORDERING: Acquire pairs with the AcqRel updates in `cancel` and
        // `set_shield`; the lost-wakeup arguments rely on the node locks, not
        // on this ordering.
        self.flags.load(Ordering::Acquire)
    }

    fn has_ancestor_or_self(&self, target: &Node) -> bool {
        let mut node = self;
        loop {
            if std::ptr::eq(node, target) {
                return true;
            }
            match node.parent.get() {
                Some(Some(parent)) => node = parent,
                _ => return false,
            }
        }
    }

    /// Binds a node made just now under `parent`: O(1), as nobody can hold
    /// it yet, so it cannot be an ancestor of `parent`.
    fn bind_new(this: &TreeArc<Node>, parent: Option<TreeArc<Node>>) {
        if let Some(parent) = &parent {
            parent.adopt(this);
        }
        let _ = this.parent.set(parent);
    }

    /// Binds `this` under `parent` unless it is bound already, at the first
    /// poll of one of its `run` futures.
    ///
    /// A scope cannot become its own ancestor: such a parent is refused and
    /// the scope hangs off the root instead. The check and the binding are
    /// one step under [`BINDING`], so two scopes bound concurrently into
    /// each other's subtrees cannot both pass it and form a cycle. (Only
    /// these bindings can close a cycle: `child()` binds a node nobody holds
    /// yet.) The lock covers std operations only, never a loom point.
    ///
    /// The child link is pushed after the parent is published, and then the
    /// chain is checked: a `cancel()` of an ancestor either finds the link
    /// when it walks, or stored its flag before our push took the parent's
    /// lock and is seen by the check (register-then-check, as for a waiter).
    /// Anything already waiting on `this` — a `cancelled()` future awaited
    /// before the first `run` — is woken if the new chain is cancelled, or
    /// has a deadline for it to arm a timer for.
    fn bind(this: &TreeArc<Node>, parent: Option<TreeArc<Node>>) {
        let bound = {
            let _binding = BINDING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if this.parent.get().is_some() {
                return;
            }
            let parent = parent.filter(|p| !p.has_ancestor_or_self(this));
            let bound = parent.clone();
            let _ = this.parent.set(parent);
            bound
        };
        if let Some(parent) = bound {
            parent.adopt(this);
            if parent.cancelled_or_deadline() != Some(NO_DEADLINE) {
                this.wake_subtree();
            }
        }
    }

    fn adopt(&self, child: &TreeArc<Node>) {
        let mut state = self.state.lock();
        if state.children.len() >= state.prune_at {
            state.children.retain(|c| c.strong_count() > 0);
            state.prune_at = (state.children.len() * 2).max(8);
        }
        state.children.push(TreeArc::downgrade(child));
    }

    /// Wakes every operation blocked in `root`'s subtree, not descending into
    /// children that are shielded or cancelled themselves.
    ///
    /// Allocates nothing for a scope with at most one blocked operation and
    /// no live children, the common case of a per-task scope.
    fn wake_subtree(&self) {
        let mut wakers = Wakeups::default();
        let mut stack = Vec::new();
        self.collect_wakers(&mut wakers, &mut stack);
        while let Some(node) = stack.pop() {
            // Shielded children keep the cancellation out; cancelled ones
            // woke their own subtree. Flags read under the child's lock.
            node.collect_wakers_unless(CANCEL_CALLED | SHIELD, &mut wakers, &mut stack);
        }
        wakers.wake_all();
    }

    fn collect_wakers(&self, wakers: &mut Wakeups, stack: &mut Vec<TreeArc<Node>>) {
        self.collect_wakers_unless(0, wakers, stack);
    }

    /// Under this node's lock: unless one of `skip` is set in its flags,
    /// takes its wakers and queues its live children.
    fn collect_wakers_unless(
        &self,
        skip: u8,
        wakers: &mut Wakeups,
        stack: &mut Vec<TreeArc<Node>>,
    ) {
        let state = self.state.lock();
        if self.flags() & skip != 0 {
            return;
        }
        state.waiters.for_each(|waker| wakers.push(waker.clone()));
        stack.extend(state.children.iter().filter_map(TreeWeak::upgrade));
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
            node: current_node(),
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
    /// [`Cancelled`]. Does nothing on the root.
    pub fn set_shield(&self, shield: bool) {
        let Some(node) = &self.node else { return };
        {
            let _state = node.state.lock();
            // ORDERING: under the node lock; see the module docs.
            if shield {
                node.flags.fetch_or(SHIELD, Ordering::AcqRel);
            } else {
                node.flags.fetch_and(!SHIELD, Ordering::AcqRel);
            }
        }
        // Lowered: the subtree may now be cancelled, or under an outer
        // deadline its operations must arm a timer for.
        if !shield && node.cancelled_or_deadline() != Some(NO_DEADLINE) {
            node.wake_subtree();
        }
    }

    /// Whether the shield is up.
    pub fn is_shielded(&self) -> bool {
        self.node
            .as_ref()
            .is_some_and(|node| node.flags() & SHIELD != 0)
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
        let scope = Self::new();
        scope.set_deadline(Some(deadline));
        scope
    }

    /// This scope's own deadline, if it has one (the root never has).
    pub fn deadline(&self) -> Option<Instant> {
        let node = self.node.as_ref()?;
        match node.deadline.load(Ordering::Acquire) {
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
        let Some(node) = &self.node else { return };
        // The old deadline, if passed, has cancelled the scope (this read
        // expires it): its operations are woken by `cancel()` or by their own
        // timers, and nothing more is to be done.
        let was_cancelled = node.is_cancel_called();
        // ORDERING: stored before `wake_subtree` takes the subtree's locks,
        // so a waiter that registers after those locks reads the new deadline
        // (register-then-check, as for `cancel`).
        node.deadline
            .store(deadline.map_or(NO_DEADLINE, to_ticks), Ordering::Release);
        if !was_cancelled {
            // Passed already: cancelled now (this read sets the flag), and the
            // wake below fails the blocked operations. Otherwise they re-arm.
            let _ = node.is_cancel_called();
            node.wake_subtree();
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

    /// Whether this scope catches a cancellation its body stopped for, as
    /// Trio's and AnyIO's scopes do on exit: its own cancel was called (or its
    /// deadline passed), and no cancellation from outside is visible in it —
    /// the outermost cancelled scope up to a shield is the one that catches.
    pub(crate) fn catches(&self) -> bool {
        let Some(node) = &self.node else { return false };
        node.is_cancel_called()
            && (node.flags() & SHIELD != 0
                || !matches!(node.parent.get(), Some(Some(parent)) if parent.is_cancelled()))
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
        WaitCancelled {
            wait: ScopeWait::new(ScopeRef(self.node.clone())),
        }
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
                .field("cancel_called", &(node.flags() & CANCEL_CALLED != 0))
                .field("shielded", &(node.flags() & SHIELD != 0))
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
        if let Some(node) = this
            .scope
            .node
            .as_ref()
            .filter(|n| n.parent.get().is_none())
        {
            Node::bind(node, current_node());
        }
        // The node moves into the thread-local for the poll and back after
        // it: no reference-count traffic per poll.
        let _current = EnterGuard::enter(&mut this.scope.node);
        this.fut.poll(cx)
    }
}

/// Makes a scope current for one poll, and restores the previous one (and
/// gives the scope back to its owner) afterwards, even if the poll unwinds.
struct EnterGuard<'a> {
    owner: &'a mut Option<TreeArc<Node>>,
    previous: Option<TreeArc<Node>>,
}

impl<'a> EnterGuard<'a> {
    /// `None` while this thread's thread-locals are being destroyed: the
    /// scope cannot be made current, and the poll runs in the root.
    fn enter(owner: &'a mut Option<TreeArc<Node>>) -> Option<Self> {
        let previous = CURRENT
            .try_with(|current| current.replace(owner.take()))
            .ok()?;
        Some(EnterGuard { owner, previous })
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| *self.owner = current.replace(previous));
    }
}

/// The future of [`CancelScope::cancelled`].
#[must_use = "futures do nothing unless polled"]
pub struct WaitCancelled {
    wait: ScopeWait,
}

impl Future for WaitCancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.wait.scope.0.is_none() {
            return Poll::Pending; // the root: never
        }
        if this.wait.register_and_check(cx) {
            this.wait.deregister();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for WaitCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitCancelled").finish_non_exhaustive()
    }
}

/// The error of an operation that its cancel scope cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled by its cancel scope")
    }
}

impl std::error::Error for Cancelled {}

/// A cancellation point: fails with [`Cancelled`] if the current scope is
/// effectively cancelled, and otherwise yields to the executor once.
///
/// ```
/// # futures::executor::block_on(async {
/// let scope = scopestream::CancelScope::new();
/// scope.cancel();
/// assert!(scope.run(scopestream::checkpoint()).await.is_err());
/// assert!(scopestream::checkpoint().await.is_ok()); // the root is never cancelled
/// # });
/// ```
pub async fn checkpoint() -> Result<(), Cancelled> {
    if current_is_cancelled() {
        return Err(Cancelled);
    }
    YieldNow { yielded: false }.await;
    Ok(())
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.yielded, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Deadlines are stored as signed nanoseconds from this instant, fixed at
/// first use, so that a deadline fits in one atomic word and reads back
/// exactly.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(timer::now)
}

fn to_ticks(at: Instant) -> i64 {
    let epoch = epoch();
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    if at >= epoch {
        // Beyond ~292 years: as good as never, but still a deadline.
        nanos(at - epoch).min(NO_DEADLINE - 1)
    } else {
        -nanos(epoch - at)
    }
}

fn from_ticks(ticks: i64) -> Instant {
    let epoch = epoch();
    let offset = Duration::from_nanos(ticks.unsigned_abs());
    // Both in range: `ticks` came from an `Instant` at that offset (or a
    // nearer one, when clamped).
    if ticks >= 0 {
        epoch.checked_add(offset).unwrap_or(epoch)
    } else {
        epoch.checked_sub(offset).unwrap_or(epoch)
    }
}

/// The clock, read at most once per chain walk and only if some scope on
/// the chain has a deadline.
#[derive(Default)]
struct LazyNow(Option<i64>);

impl LazyNow {
    fn ticks(&mut self) -> i64 {
        *self.0.get_or_insert_with(|| to_ticks(timer::now()))
    }
}

/// Whether two nodes (`None`: the root) are the same scope.
fn same_node(a: &Option<TreeArc<Node>>, b: &Option<TreeArc<Node>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => TreeArc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The current scope's node (`None`: the root), cloned. While this thread's
/// thread-locals are being destroyed, the root.
fn current_node() -> Option<TreeArc<Node>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Whether the current scope is effectively cancelled, without cloning it.
pub(crate) fn current_is_cancelled() -> bool {
    CURRENT
        .try_with(|current| {
            current
                .borrow()
                .as_ref()
                .is_some_and(|node| node.is_cancelled())
        })
        .unwrap_or(false)
}

/// A scope as seen by a stream waiter: enough to decide deliverability (C6).
#[derive(Clone, Default)]
pub(crate) struct ScopeRef(Option<TreeArc<Node>>);

impl ScopeRef {
    pub(crate) const ROOT: ScopeRef = ScopeRef(None);

    pub(crate) fn current() -> ScopeRef {
        ScopeRef(current_node())
    }

    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|node| node.is_cancelled())
    }
}

/// A blocked stream operation: its slot in the stream's line, and its
/// registration with its scope (dropped: deregistered).
pub(crate) struct Waiting {
    pub(crate) key: usize,
    pub(crate) scope: ScopeWait,
}

/// A blocked operation's registration with its scope, so that `cancel()`
/// (or a deadline) can wake it. Deregisters on drop.
pub(crate) struct ScopeWait {
    scope: ScopeRef,
    /// Our slot in the node's waiter slab, and the waker stored there (kept
    /// here too, so a re-poll with the same waker needs no lock).
    registered: Option<(usize, Waker)>,
    /// Armed for the chain's effective deadline, while there is one. Boxed:
    /// only operations that block under a deadline pay for its size, which
    /// would otherwise be copied with every `Send`/`Recv` future.
    timer: Option<Box<Timer>>,
}

impl ScopeWait {
    pub(crate) fn new(scope: ScopeRef) -> Self {
        ScopeWait {
            scope,
            registered: None,
            timer: None,
        }
    }

    /// Registers the task's waker (or refreshes it), arms or polls the
    /// deadline timer, and then reports whether the scope is effectively
    /// cancelled. Register-then-check: a concurrent `cancel()` or
    /// `set_deadline()` either finds the waker or is seen by the check.
    pub(crate) fn register_and_check(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(node) = &self.scope.0 else {
            return false;
        };
        let waker = cx.waker();
        match &mut self.registered {
            Some((_, stored)) if stored.will_wake(waker) => {}
            Some((key, stored)) => {
                // The replaced waker is dropped after the node lock.
                let old = swap_waker(node.state.lock().waiters.get_mut(*key), waker);
                drop(old);
                stored.clone_from(waker);
            }
            None => {
                let key = node.state.lock().waiters.push_back(waker.clone());
                self.registered = Some((key, waker.clone()));
            }
        }
        loop {
            let deadline = match node.cancelled_or_deadline() {
                None => return true,
                Some(NO_DEADLINE) => {
                    self.timer = None;
                    return false;
                }
                Some(ticks) => ticks,
            };
            let at = from_ticks(deadline);
            let timer = match &mut self.timer {
                Some(timer) => {
                    if timer.deadline() != at {
                        timer.reset(at);
                    }
                    timer
                }
                None => self.timer.insert(Box::new(Timer::new(at))),
            };
            if timer.poll(cx).is_pending() {
                return false;
            }
            // The timer saw `at` pass. Unless the deadlines moved meanwhile,
            // this cancels a scope on the chain and the next check returns.
            node.expire_through(deadline);
        }
    }

    /// Whether this registration is with the scope current now.
    pub(crate) fn is_current(&self) -> bool {
        CURRENT
            .try_with(|current| same_node(&current.borrow(), &self.scope.0))
            .unwrap_or(self.scope.0.is_none())
    }

    pub(crate) fn deregister(&mut self) {
        self.timer = None;
        if let (Some((key, _)), Some(node)) = (self.registered.take(), &self.scope.0) {
            let waker = node.state.lock().waiters.remove(key);
            drop(waker);
        }
    }
}

impl Drop for ScopeWait {
    fn drop(&mut self) {
        self.deregister();
    }
}
