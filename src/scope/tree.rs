//! The scope tree: nodes, their flags and deadlines, binding, cancel and
//! shield, and waking a subtree.
//!
//! Everything that decides whether a scope is cancelled lives here; the
//! public handle (`CancelScope`, in this wing's `mod.rs`) is a thin wrapper
//! over a [`Node`]. This module knows nothing of streams, of the current
//! scope, or of timers: a blocked operation's side of the protocol is in
//! `wait`.
//!
//! # The tree
//!
//! Each [`CancelScope`](crate::CancelScope) is a handle to a node with two live flags and a
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
//! into a child that is shielded or whose own `cancel()` already walked it
//! (a child cancelled only by a lazily read deadline has woken nobody, so the
//! walk goes on into it). `set_shield(false)` on a scope that is then effectively cancelled
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

use std::task::Waker;

use super::clock::{LazyNow, NO_DEADLINE};
use crate::sync::{
    AtomicU8, DeadlineWord, EpochWord, Mutex, OnceLock, Ordering, TreeArc, TreeWeak,
};
use crate::waitlist::WaitList;
use crate::wakeups::{give_back_spare, take_spare, Wakeups};

/// `Node::flags`: `cancel()` was called (set once, never cleared).
const CANCEL_CALLED: u8 = 0b01;
/// `Node::flags`: the shield is up. ORDERING: changed only under the node
/// lock (see the module docs).
const SHIELD: u8 = 0b10;
/// `Node::flags`: one binding has claimed the node (set once, never
/// cleared); whoever set it binds, every other binding gives up.
const CLAIMED: u8 = 0b100;
/// `Node::flags`: the parent is bound (set once, never cleared), after
/// [`Node::parent`] is published when the parent is a scope. ORDERING: set
/// with Release and read with Acquire, so whoever sees it sees the parent.
const BOUND: u8 = 0b1000;
/// `Node::flags`: a `cancel()` (or a firing timer) has walked, or is
/// walking, this node's subtree to wake it (set once, never cleared, always
/// with `CANCEL_CALLED`). Kept apart from `CANCEL_CALLED`, which a lazy
/// read of a passed deadline also sets without waking anyone: an
/// ancestor's walk skips a child only if the child woke its own subtree.
const WOKEN: u8 = 0b1_0000;

pub(super) struct Node {
    /// `CANCEL_CALLED | SHIELD | CLAIMED | BOUND`, in one word so that a
    /// chain walk reads each scope once.
    flags: AtomicU8,
    /// Bumped, under the node lock, by every walk that takes wakers out of
    /// this node's registrations to wake them (see [`Waiters`]): a
    /// registration that saw an older value may have lost its waker, and
    /// puts it back at its next poll. ORDERING: written under the lock;
    /// read with Acquire outside it, after a wake-up that the walk made
    /// after its bump.
    epoch: EpochWord,
    /// This node's key in its parent's `children`, once adopted there
    /// ([`NOT_A_CHILD`] until then). Written once, under the parent's lock,
    /// by the binder, which holds the node; read by `Drop`, which owns it.
    /// Never a loom point: no race can reach it.
    child_key: std::sync::atomic::AtomicUsize,
    /// Ticks of the `clock` module, or [`NO_DEADLINE`].
    deadline: DeadlineWord,
    /// Set once, when bound under a scope; never set for a scope bound
    /// under the root (the `BOUND` flag alone says that), which so costs no
    /// one-time initialisation.
    parent: OnceLock<TreeArc<Node>>,
    state: Mutex<NodeState>,
}

// Unwind safety: a node's state sits behind a lock that no user code runs
// under (wakers are cloned, woken and dropped outside it), so a panic never
// leaves it half-changed, and the lock has no poisoning. So scopes and every
// future over one are unwind-safe (those that wrap a future, as it is).
impl std::panic::UnwindSafe for Node {}
impl std::panic::RefUnwindSafe for Node {}

/// The wakers of the operations blocked in one scope: the first in a slot of
/// its own, so that a scope with one blocked operation — a task's own scope,
/// typically — never allocates a slab; the others in a slab, boxed so that
/// a node stays small to make and to drop until it has two waiters at once.
///
/// A walk that wakes the scope *takes* each waker out of its registration
/// (leaving `None`) instead of cloning it: a clone is user code and must not
/// run under the node lock. Every waker taken is woken, so its operation is
/// polled again, sees the node's [`epoch`](Node::epoch) moved, and puts a
/// waker back (cloned before it locks).
#[derive(Default)]
struct Waiters {
    solo: Option<Option<Waker>>,
    rest: Option<Box<WaitList<Option<Waker>>>>,
}

impl Waiters {
    /// The key of the `solo` slot (slab keys are indices, never this).
    const SOLO: usize = usize::MAX;

    fn push_back(&mut self, waker: Waker) -> usize {
        if self.solo.is_none() {
            self.solo = Some(Some(waker));
            Self::SOLO
        } else {
            self.rest
                .get_or_insert_with(|| Box::new(WaitList::new()))
                .push_back(Some(waker))
        }
    }

    fn get_mut(&mut self, key: usize) -> &mut Option<Waker> {
        match key {
            Self::SOLO => self.solo.as_mut().expect("the solo waiter is registered"),
            key => self.rest().get_mut(key),
        }
    }

    fn remove(&mut self, key: usize) -> Option<Waker> {
        match key {
            Self::SOLO => self.solo.take().expect("the solo waiter is registered"),
            key => self.rest().remove(key),
        }
    }

    fn rest(&mut self) -> &mut WaitList<Option<Waker>> {
        self.rest
            .as_mut()
            .expect("a slab key is only handed out by the slab")
    }

    /// Takes every waker still registered; `true` if any was.
    fn take_each(&mut self, mut f: impl FnMut(Waker)) -> bool {
        let mut took = false;
        let mut take = |registration: &mut Option<Waker>| {
            if let Some(waker) = registration.take() {
                took = true;
                f(waker);
            }
        };
        self.solo.iter_mut().for_each(&mut take);
        if let Some(rest) = &mut self.rest {
            rest.unlink_where(|registration| {
                take(registration);
                false
            });
        }
        took
    }
}

struct NodeState {
    /// Wakers of the operations blocked directly in this scope.
    waiters: Waiters,
    /// Weak links to the children bound under this scope. A child unlinks
    /// itself when it is dropped (its key is [`Node::child_key`]), so the
    /// memory of dead children goes back with them, with no walk.
    children: WaitList<TreeWeak<Node>>,
}

impl Default for Node {
    fn default() -> Self {
        Node::with_deadline(NO_DEADLINE)
    }
}

impl Node {
    /// A new node with its deadline (ticks) set from the start: nobody can
    /// be waiting in it yet, so there is nobody to wake, as
    /// [`set_deadline`](Node::set_deadline) would. A passed deadline cancels
    /// the scope at the first read of its chain, as ever.
    pub(super) fn with_deadline(deadline: i64) -> Self {
        Node {
            flags: AtomicU8::new(0),
            epoch: EpochWord::new(0),
            child_key: std::sync::atomic::AtomicUsize::new(NOT_A_CHILD),
            deadline: DeadlineWord::new(deadline),
            parent: OnceLock::new(),
            state: Mutex::new(NodeState {
                waiters: Waiters::default(),
                children: WaitList::new(),
            }),
        }
    }
}

/// [`Node::child_key`] of a node that no parent has adopted.
const NOT_A_CHILD: usize = usize::MAX;

/// Serialises [`Node::bind`]'s cycle check with its binding.
static BINDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A node leaves its parent's list of children when it goes, so a
/// long-lived scope keeps nothing of the children it had. A deep chain of
/// scopes is dropped iteratively: each node gives up its parent link before
/// it goes, so dropping the innermost of 100 000 nested scopes does not
/// recurse 100 000 frames deep.
impl Drop for Node {
    fn drop(&mut self) {
        let mut parent = self.leave_parent();
        while let Some(node) = parent {
            parent = TreeArc::into_inner(node).and_then(|mut node| node.leave_parent());
        }
    }
}

impl Node {
    /// Takes the parent link, unlinking this node from the parent's
    /// children first.
    fn leave_parent(&mut self) -> Option<TreeArc<Node>> {
        let parent = self.parent.take()?;
        let key = *self.child_key.get_mut();
        if key != NOT_A_CHILD {
            let link = parent.state.lock().children.remove(key);
            drop(link); // a dead weak link: frees at most our own memory
        }
        Some(parent)
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
                Some(parent) if flags & SHIELD == 0 => Some(&**parent),
                _ => None,
            };
            Some((node, flags))
        })
    }

    /// SPEC C2, from the live flags and deadlines of the whole chain. Inline,
    /// as every operation makes it: up to the first scope with a deadline
    /// the walk reads two words and the parent link per scope; from there
    /// on it is [`cancelled_or_deadline`](Node::cancelled_or_deadline)'s,
    /// which reads the clock.
    #[inline]
    pub(super) fn is_cancelled(&self) -> bool {
        let mut node = self;
        loop {
            let flags = node.flags();
            if flags & CANCEL_CALLED != 0 {
                return true;
            }
            // ORDERING: Acquire pairs with the Release store in `set_deadline`.
            if node.deadline.load(Ordering::Acquire) != NO_DEADLINE {
                return node.is_cancelled_from_a_deadline();
            }
            match node.parent.get() {
                Some(parent) if flags & SHIELD == 0 => node = parent,
                _ => return false,
            }
        }
    }

    /// [`is_cancelled`](Node::is_cancelled) from the first scope on the
    /// chain with a deadline.
    #[inline(never)]
    fn is_cancelled_from_a_deadline(&self) -> bool {
        self.cancelled_or_deadline().is_none()
    }

    /// `None` if effectively cancelled, else the effective deadline: one
    /// walk, reading each scope's flags and deadline once.
    pub(super) fn cancelled_or_deadline(&self) -> Option<i64> {
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
    pub(super) fn is_cancel_called(&self) -> bool {
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
    pub(super) fn effective_deadline(&self) -> i64 {
        self.chain()
            .map(|(node, _)| node.deadline.load(Ordering::Acquire))
            .min()
            .unwrap_or(NO_DEADLINE)
    }

    /// A timer armed for `deadline` fired: cancels every scope on the chain
    /// (up to the nearest shield) whose deadline is no later.
    pub(super) fn expire_through(&self, deadline: i64) {
        for (node, _) in self.chain() {
            if node.deadline.load(Ordering::Acquire) <= deadline {
                node.cancel();
            }
        }
    }

    /// Sets `cancel_called` and wakes the subtree, unless a `cancel()` did
    /// so before. A scope cancelled only by a lazy read of its passed
    /// deadline (which wakes nobody) is walked now.
    pub(super) fn cancel(&self) {
        if self.flags.fetch_or(CANCEL_CALLED | WOKEN, Ordering::AcqRel) & WOKEN == 0 {
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
                Some(parent) => node = parent,
                None => return false,
            }
        }
    }

    /// Binds a node made just now under `parent`: O(1), as nobody can hold
    /// it yet, so it cannot be an ancestor of `parent`.
    pub(super) fn bind_new(this: &TreeArc<Node>, parent: Option<TreeArc<Node>>) {
        if let Some(parent) = parent {
            parent.adopt(this);
            let _ = this.parent.set(parent);
        }
        this.claim();
        this.mark_bound();
    }

    /// Claims the binding of this node: `true` for the one caller that set
    /// `CLAIMED`, which then binds; `false` for every other.
    #[inline]
    fn claim(&self) -> bool {
        // ORDERING: AcqRel, as the other flag updates; the claim decides
        // only who binds.
        self.flags.fetch_or(CLAIMED, Ordering::AcqRel) & CLAIMED == 0
    }

    #[inline]
    fn mark_bound(&self) {
        // ORDERING: Release publishes the parent set just before (see BOUND).
        self.flags.fetch_or(BOUND, Ordering::Release);
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
    ///
    /// Two first polls may race to bind, from different scopes: the first
    /// to [`claim`](Node::claim) the node binds it, the other gives up and
    /// polls in the scope as it is (the loser's poll comes before the
    /// binding, as any poll before the first does; a cancel of the new
    /// parent still reaches it, through the wake-up below).
    ///
    /// Under the root no cycle can form and no chain above can be
    /// cancelled: binding there is the claim and a flag, with neither the
    /// lock nor a wake-up.
    pub(super) fn bind(this: &TreeArc<Node>, parent: Option<TreeArc<Node>>) {
        let Some(parent) = parent else {
            if this.claim() {
                this.mark_bound();
            }
            return;
        };
        // The claim and the flag are loom points, so they stay outside the
        // lock, which covers std operations only.
        if !this.claim() {
            return;
        }
        let bound = {
            let _binding = BINDING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let parent = Some(parent).filter(|p| !p.has_ancestor_or_self(this));
            if let Some(parent) = &parent {
                let _ = this.parent.set(parent.clone());
            }
            parent
        };
        this.mark_bound();
        if let Some(parent) = bound {
            parent.adopt(this);
            if parent.cancelled_or_deadline() != Some(NO_DEADLINE) {
                this.wake_subtree();
            }
        }
    }

    fn adopt(&self, child: &TreeArc<Node>) {
        let key = self
            .state
            .lock()
            .children
            .push_back(TreeArc::downgrade(child));
        // ORDERING: Relaxed: read only by the node's `Drop`, which the
        // reference count's own ordering puts after this.
        child
            .child_key
            .store(key, std::sync::atomic::Ordering::Relaxed);
    }

    /// Wakes every operation blocked in `root`'s subtree, not descending into
    /// children that are shielded or cancelled themselves.
    ///
    /// Allocates nothing for a scope with at most one blocked operation and
    /// no live children, the common case of a per-task scope.
    pub(super) fn wake_subtree(&self) {
        let mut wakers = Wakeups::default();
        let mut stack = WalkStack::take();
        self.collect_wakers(&mut wakers, &mut stack);
        while let Some(node) = stack.pop() {
            // Shielded children keep the cancellation out; children whose
            // own `cancel()` walked them woke their own subtree (a child
            // cancelled by a lazily read deadline did not, and is walked).
            // Flags read under the child's lock.
            node.collect_wakers_unless(WOKEN | SHIELD, &mut wakers, &mut stack);
        }
        WalkStack::give_back(stack);
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
        let mut state = self.state.lock();
        if self.flags() & skip != 0 {
            return;
        }
        if state.waiters.take_each(|waker| wakers.push(waker)) {
            // ORDERING: under the lock, before the wake-ups (see `epoch`).
            self.epoch.fetch_add(1, Ordering::Release);
        }
        stack.extend(state.children.iter().filter_map(TreeWeak::upgrade));
    }
}

/// The stack of nodes still to visit in [`Node::wake_subtree`], borrowed
/// from a per-thread cache and given back emptied, so that waking a subtree
/// allocates only the first time a thread walks one that wide (as the
/// wakers themselves, see `wakeups`).
struct WalkStack;

/// Stacks larger than this are freed instead of kept.
const WALK_STACK_LIMIT: usize = 256;

// Not a synchronisation primitive (each thread has its own, and a borrow
// that races a nested walk just allocates), so std's even under loom.
std::thread_local! {
    static SPARE_STACK: std::cell::Cell<Vec<TreeArc<Node>>> =
        const { std::cell::Cell::new(Vec::new()) };
}

impl WalkStack {
    fn take() -> Vec<TreeArc<Node>> {
        take_spare(&SPARE_STACK)
    }

    fn give_back(stack: Vec<TreeArc<Node>>) {
        give_back_spare(&SPARE_STACK, stack, WALK_STACK_LIMIT);
    }
}

/// What the public handle and a blocked operation's registration do with a
/// node.
impl Node {
    /// `cancel_called` as it stands, without expiring a passed deadline (for
    /// `Debug`, which must not change what it shows).
    pub(super) fn cancel_called_flag(&self) -> bool {
        self.flags() & CANCEL_CALLED != 0
    }

    pub(super) fn is_shielded(&self) -> bool {
        self.flags() & SHIELD != 0
    }

    /// Raises or lowers the shield; lowered, wakes the subtree if it may
    /// now be cancelled, or under an outer deadline its operations must arm
    /// a timer for.
    pub(super) fn set_shield(&self, shield: bool) {
        {
            let _state = self.state.lock();
            // ORDERING: under the node lock; see the module docs.
            if shield {
                self.flags.fetch_or(SHIELD, Ordering::AcqRel);
            } else {
                self.flags.fetch_and(!SHIELD, Ordering::AcqRel);
            }
        }
        if !shield && self.cancelled_or_deadline() != Some(NO_DEADLINE) {
            self.wake_subtree();
        }
    }

    /// This node's own deadline, in ticks, or [`NO_DEADLINE`].
    pub(super) fn deadline(&self) -> i64 {
        // ORDERING: Acquire pairs with the Release store in `set_deadline`.
        self.deadline.load(Ordering::Acquire)
    }

    /// Sets, moves or removes (`NO_DEADLINE`) this node's deadline.
    pub(super) fn set_deadline(&self, deadline: i64) {
        // The old deadline, if passed, has cancelled the scope (this read
        // expires it): its operations are woken by `cancel()` or by their own
        // timers, and nothing more is to be done.
        let was_cancelled = self.is_cancel_called();
        // ORDERING: stored before `wake_subtree` takes the subtree's locks,
        // so a waiter that registers after those locks reads the new deadline
        // (register-then-check, as for `cancel`).
        self.deadline.store(deadline, Ordering::Release);
        if !was_cancelled {
            // Passed already: cancelled now (this read sets the flag), and the
            // wake below fails the blocked operations. Otherwise they re-arm.
            let _ = self.is_cancel_called();
            self.wake_subtree();
        }
    }

    /// Trio's and AnyIO's rule at a scope's exit: its own cancel was called
    /// (or its deadline passed), and no cancellation from outside is visible
    /// in it, so that the outermost cancelled scope up to a shield catches.
    pub(super) fn catches(&self) -> bool {
        self.is_cancel_called()
            && (self.is_shielded()
                || !matches!(self.parent.get(), Some(parent) if parent.is_cancelled()))
    }

    /// The parent, once bound (`Some(None)`: the root).
    pub(super) fn parent(&self) -> Option<Option<TreeArc<Node>>> {
        (!self.is_unbound()).then(|| self.parent.get().cloned())
    }

    /// Whether the parent is still to be bound (at a first poll of `run`).
    #[inline]
    pub(super) fn is_unbound(&self) -> bool {
        self.flags() & BOUND == 0
    }

    /// Registers the waker of an operation blocked in this scope (cloned by
    /// the caller, before the lock); returns its key, valid until
    /// [`deregister`](Node::deregister), and the [`epoch`](Node::epoch) it
    /// registered in.
    pub(super) fn register(&self, waker: Waker) -> (usize, usize) {
        let mut state = self.state.lock();
        let key = state.waiters.push_back(waker);
        (key, self.epoch.load(Ordering::Relaxed))
    }

    /// The epoch now: a registration made in an older one may have had its
    /// waker taken by a walk.
    #[inline]
    pub(super) fn epoch(&self) -> usize {
        // ORDERING: see `epoch`.
        self.epoch.load(Ordering::Acquire)
    }

    /// Puts `waker` (cloned by the caller, before the lock) into a
    /// registration, in place of whatever it held; returns the old one, for
    /// the caller to drop after the lock, and the epoch now.
    pub(super) fn install_waker(&self, key: usize, waker: Waker) -> (Option<Waker>, usize) {
        let mut state = self.state.lock();
        let old = state.waiters.get_mut(key).replace(waker);
        (old, self.epoch.load(Ordering::Relaxed))
    }

    /// Frees a registration's slot; its waker, if a walk did not take it,
    /// is returned, to be dropped by the caller after the lock.
    pub(super) fn deregister(&self, key: usize) -> Option<Waker> {
        self.state.lock().waiters.remove(key)
    }
}

/// Whether two nodes (`None`: the root) are the same scope.
pub(super) fn same_node(a: &Option<TreeArc<Node>>, b: &Option<TreeArc<Node>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => TreeArc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
