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

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use crate::sync::{const_thread_local, AtomicU8, Mutex, OnceLock, Ordering, TreeArc, TreeWeak};
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
/// The scope returned by [`CancelScope::current`] outside any `run` is the
/// *root*: it is never cancelled, and `cancel`/`set_shield` on it do nothing.
#[derive(Clone, Default)]
pub struct CancelScope {
    /// `None` is the root.
    node: Option<TreeArc<Node>>,
}

/// `Node::flags`: `cancel()` was called (set once, never cleared).
const CANCEL_CALLED: u8 = 0b01;
/// `Node::flags`: the shield is up. ORDERING: changed only under the node
/// lock (see the module docs).
const SHIELD: u8 = 0b10;

pub(crate) struct Node {
    /// `CANCEL_CALLED | SHIELD`, in one word so that a chain walk reads each
    /// scope once.
    flags: AtomicU8,
    /// `None` inside: bound to the root. Unset: not bound yet.
    parent: OnceLock<Option<TreeArc<Node>>>,
    state: Mutex<NodeState>,
}

struct NodeState {
    /// Wakers of the operations blocked directly in this scope.
    waiters: WaitList<Waker>,
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
            parent: OnceLock::new(),
            state: Mutex::new(NodeState {
                waiters: WaitList::new(),
                children: Vec::new(),
                prune_at: 8,
            }),
        }
    }
}

impl Node {
    /// SPEC C2, from the live flags of the whole chain.
    fn is_cancelled(&self) -> bool {
        let mut node = self;
        loop {
            let flags = node.flags();
            if flags & CANCEL_CALLED != 0 {
                return true;
            }
            if flags & SHIELD != 0 {
                return false;
            }
            match node.parent.get() {
                Some(Some(parent)) => node = parent,
                _ => return false,
            }
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

    /// Binds `this` under `parent` unless it is bound already.
    ///
    /// The child link is pushed *before* the parent is published, so whoever
    /// sees the parent also sees the link (and every cancel that preceded it).
    /// A losing racer leaves a stray link, which costs a spurious wake-up at
    /// most.
    fn bind(this: &TreeArc<Node>, parent: Option<TreeArc<Node>>) {
        if this.parent.get().is_some() {
            return;
        }
        // A scope cannot become its own ancestor: such a parent is refused and
        // the scope hangs off the root instead.
        let parent = parent.filter(|p| !p.has_ancestor_or_self(this));
        if let Some(parent) = &parent {
            parent.adopt(this);
        }
        let _ = this.parent.set(parent);
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
    fn wake_subtree(root: &TreeArc<Node>) {
        let mut wakers = Vec::new();
        let mut stack = vec![TreeArc::clone(root)];
        let mut is_root = true;
        while let Some(node) = stack.pop() {
            let state = node.state.lock();
            // Shielded children keep the cancellation out; cancelled ones
            // woke their own subtree.
            if !std::mem::take(&mut is_root) && node.flags() != 0 {
                continue;
            }
            wakers.extend(state.waiters.iter().cloned());
            stack.extend(state.children.iter().filter_map(TreeWeak::upgrade));
        }
        for waker in wakers {
            waker.wake();
        }
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
        Node::bind(&child, self.node.clone());
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
            if node.flags.fetch_or(CANCEL_CALLED, Ordering::AcqRel) & CANCEL_CALLED == 0 {
                Node::wake_subtree(node);
            }
        }
    }

    /// Whether [`cancel`](CancelScope::cancel) was called on this very scope.
    pub fn is_cancel_called(&self) -> bool {
        self.node
            .as_ref()
            .is_some_and(|node| node.flags() & CANCEL_CALLED != 0)
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
        if !shield && node.is_cancelled() {
            Node::wake_subtree(node);
        }
    }

    /// Whether the shield is up.
    pub fn is_shielded(&self) -> bool {
        self.node
            .as_ref()
            .is_some_and(|node| node.flags() & SHIELD != 0)
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

    /// `true` if both handles refer to the same scope.
    pub fn same_scope(&self, other: &CancelScope) -> bool {
        match (&self.node, &other.node) {
            (Some(a), Some(b)) => TreeArc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
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
        let _current = EnterGuard::enter(this.scope.node.clone());
        this.fut.poll(cx)
    }
}

/// Restores the previous current scope, even if the poll unwinds.
struct EnterGuard {
    previous: Option<TreeArc<Node>>,
}

impl EnterGuard {
    fn enter(scope: Option<TreeArc<Node>>) -> Self {
        EnterGuard {
            previous: CURRENT.with(|current| current.replace(scope)),
        }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
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

/// The current scope's node (`None`: the root), cloned.
fn current_node() -> Option<TreeArc<Node>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Whether the current scope is effectively cancelled, without cloning it.
pub(crate) fn current_is_cancelled() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|node| node.is_cancelled())
    })
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

/// A blocked operation's registration with its scope, so that `cancel()` can
/// wake it. Deregisters on drop.
#[derive(Default)]
pub(crate) struct ScopeWait {
    scope: ScopeRef,
    /// Our slot in the node's waiter slab, and the waker stored there (kept
    /// here too, so a re-poll with the same waker needs no lock).
    registered: Option<(usize, Waker)>,
}

impl ScopeWait {
    pub(crate) fn new(scope: ScopeRef) -> Self {
        ScopeWait {
            scope,
            registered: None,
        }
    }

    /// Registers `waker` (or refreshes it) and then reports whether the scope
    /// is effectively cancelled. Register-then-check: a concurrent `cancel()`
    /// either finds the waker or is seen by the check.
    pub(crate) fn register_and_check(&mut self, waker: &Waker) -> bool {
        let Some(node) = &self.scope.0 else {
            return false;
        };
        match &mut self.registered {
            Some((_, stored)) if stored.will_wake(waker) => {}
            Some((key, stored)) => {
                *node.state.lock().waiters.get_mut(*key) = waker.clone();
                stored.clone_from(waker);
            }
            None => {
                let key = node.state.lock().waiters.push_back(waker.clone());
                self.registered = Some((key, waker.clone()));
            }
        }
        node.is_cancelled()
    }

    pub(crate) fn deregister(&mut self) {
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
