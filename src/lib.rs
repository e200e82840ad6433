//! Bounded MPMC memory object streams with cancel scopes, where every
//! operation either completes or is cancelled — never both, never neither —
//! and no item is ever lost or duplicated.
//!
//! This crate pairs two things that are usually glued together by hand:
//!
//! * **Memory object streams** ([`memory_stream`], [`unbounded_memory_stream`]),
//!   in the style of AnyIO's `create_memory_object_stream` and Trio's
//!   `open_memory_channel`: multi-producer multi-consumer, bounded (capacity 0
//!   is a true rendezvous), closable per clone, with [`Statistics`].
//! * **Cancel scopes** ([`CancelScope`]), as in Trio and AnyIO: cancel, shield,
//!   nesting, level-triggered [`checkpoint`]s. Every asynchronous stream
//!   operation is a checkpoint of the scope it runs in.
//! * **Deadlines and timeouts**: [`CancelScope::with_deadline`],
//!   [`set_deadline`](CancelScope::set_deadline),
//!   [`effective_deadline`](CancelScope::effective_deadline), and the helpers
//!   [`move_on_after`], [`fail_after`] (and their `_at` forms). A passed
//!   deadline is a cancel. Timers come from async-io (feature `async-io`, on
//!   by default) or, inside a tokio runtime, from tokio (feature `tokio`); the
//!   README gives the measurements behind that choice. The helpers cancel
//!   cooperatively and never drop a value the body got: see [`MaybeCancelled`].
//!
//! ```
//! use scopestream::{memory_stream, CancelScope, RecvError};
//!
//! # futures::executor::block_on(async {
//! let (tx, rx) = memory_stream::<&str>(0); // rendezvous
//! let task = CancelScope::new();
//! task.cancel();
//!
//! // In a cancelled scope every operation fails, and nothing moves...
//! assert_eq!(task.run(rx.recv()).await, Err(RecvError::Cancelled));
//!
//! // ...but cleanup code behind a shield still receives, and a sender
//! // delivers to it even though the scope around it is cancelled.
//! let cleanup = task.run(CancelScope::shielded().run(rx.recv()));
//! let (received, sent) = futures::join!(cleanup, tx.send("bye"));
//! assert_eq!((received, sent), (Ok("bye"), Ok(())));
//! # });
//! ```
//!
//! # Guarantees
//!
//! * **Commit or cancel.** An asynchronous operation has exactly one point of no
//!   return, under the stream's lock: the moment its item is taken (send) or it
//!   takes an item (receive). Before it, cancellation wins and nothing changed;
//!   after it, the operation returns `Ok` and the cancellation is seen at the
//!   next checkpoint. See the state table in `src/stream/chan.rs`.
//! * **Delivery-time deliverability.** A sender hands an item to a waiting
//!   receiver only if that receiver's scope is not effectively cancelled *at
//!   that moment*, computed from the live cancel and shield flags of its whole
//!   scope chain. A receiver behind a shield is always deliverable. This is
//!   the rule whose violation deadlocked AnyIO 4.4 (a shielded receiver was
//!   skipped and never woken).
//! * **Conservation.** Every item sent ends exactly once: received, returned in
//!   an error, still buffered, dropped by the stream because every receiver
//!   closed, or dropped with its own send future before anyone took it.
//! * **Drop safety and no ghosts.** Dropping a receive future puts an item
//!   already committed to it back at the head; dropping a send future
//!   withdraws its item. When any operation returns, its waiter is gone.
//!
//! # Hostile callbacks, panics and teardown
//!
//! Wakers and items are user code, and the crate expects the worst of them:
//!
//! * **No user code under a lock.** Wakers are woken, and wakers and items
//!   dropped, after the stream's lock (or a scope's) is released, so a waker
//!   or an item may own a handle of the very stream it belongs to and use it.
//! * **A waker that panics** does not stop the others: every waker collected
//!   is woken, then the first panic propagates from the call that woke it
//!   (`cancel`, `close`, a drop, a send or a receive). What that call did
//!   stands, and nothing is left waiting: a send whose item was taken has
//!   sent it; a receive that took an item puts it back at the head of the
//!   stream before the panic leaves it. A panic anywhere in a poll leaves no
//!   waiter behind — its slot is recorded before any waker runs and freed by
//!   the future's `Drop`. The same holds for the panic of a tokio runtime
//!   built without `enable_time` when a deadline timer is armed there.
//! * **Unwind safety.** Handles and scopes are `UnwindSafe` and
//!   `RefUnwindSafe`: every critical section leaves the state consistent.
//! * **Thread-local teardown.** Called from another thread-local's
//!   destructor, after the crate's own are gone, the blocking API works (with
//!   a waker made for the call) and scoped operations run in the root scope,
//!   as a scope can no longer be made current.
//! * **A leaked future.** A blocked `RecvFuture` that is `mem::forget`-ed keeps
//!   its place in line: the next item is committed to it and is never seen,
//!   as with any leaked future. Once its scope is cancelled it is skipped like
//!   any cancelled receive.
//! * **Cycles through receivers.** An item that owns a *receiver* of its own
//!   stream keeps the stream open, so neither is ever freed; the last
//!   receiver closing drops the buffered items, which breaks cycles through
//!   senders only. Every peer channel behaves so.
//!
//! # Building a task group
//!
//! What a task-group (nursery) library needs is public:
//! [`CancelScope::catches`] (the exit rule: the outermost cancelled scope up
//! to a shield catches), [`CancelScope::parent`], [`CancelScope::child`] for
//! each child, [`StreamError`] so that `?` works across checkpoints,
//! receives, sends (keeping the item) and timeouts,
//! [`ScopeExt::cancellable`] to make a foreign future a cancellation point,
//! and [`ScopeExt::in_current_scope`] to keep a spawned task inside the
//! scope that spawned it. The repository's `examples/task_group/` is a
//! complete Trio-style group built only on these, and its tests run that
//! very code.
//!
//! **Cancellation points** are the crate's asynchronous operations (`send`,
//! `recv`, `next()`, the sink's polls, `broken()`), [`checkpoint`],
//! [`CancelScope::cancelled`] and any `.cancellable()` future. Nothing else
//! is: `try_*`, the blocking API and futures of other libraries ignore
//! scopes.
//!
//! # Coming from async-channel, tokio, flume or crossbeam
//!
//! What their users reach for is here, with this crate's guarantees: a
//! [`Sink`](futures_sink::Sink) over a sender ([`MemorySender::into_sink`]),
//! fused futures and stream, `len`/`is_empty`/`is_full`/`capacity`, "every
//! receiver is gone" ([`MemorySender::broken`], [`MemorySender::is_broken`];
//! tokio's `Sender::closed`), blocking timeouts
//! ([`MemoryReceiver::recv_timeout`], [`MemorySender::send_timeout`] and the
//! `_deadline` forms), blocking iterators ([`MemoryReceiver::iter`],
//! [`MemoryReceiver::try_iter`], `for item in &rx`), owned `'static`
//! futures ([`MemorySender::send_owned`], [`MemoryReceiver::recv_owned`])
//! and weak handles ([`MemorySender::downgrade`], [`MemoryReceiver::downgrade`]).
//!
//! Left out on purpose:
//!
//! * **`reserve` and permits.** A permit lets a send be cancelled without
//!   losing its item; here a send cancelled before its commit point already
//!   hands its item back, and a permit held across a cancellation would be a
//!   second point of no return.
//! * **`force_send`** (evict the oldest item to make room): it drops an item
//!   nobody received, which the conservation guarantee rules out.
//! * **Panicking on capacity 0**: capacity 0 is a true rendezvous.
//!
//! # Design
//!
//! A stream is one mutex around a buffer and two FIFO lines of waiter slots
//! (a slab whose slots are recycled, so blocking does not allocate in steady
//! state). A blocked operation also registers its waker with its cancel scope,
//! so that `cancel()` or `set_shield(false)` can wake it from any thread; the
//! operation then settles its fate under the stream lock. All synchronisation
//! goes through one internal `sync` module that the `loom` feature swaps for
//! loom's model-checked primitives.
//!
//! # A map of the source
//!
//! Two wings over a floor. `src/stream/` holds the streams: `chan.rs` is the
//! shared core every operation settles its fate in (buffer, waiter lines,
//! commit points, and the state table), beside the two handles and the
//! blocking driver. `src/scope/` holds the scopes: the public handle in
//! `mod.rs`, the tree and its cancellation rules in `tree.rs`, the current
//! scope in `current.rs`, a blocked operation's registration in `wait.rs`,
//! time in `clock.rs` and `timer.rs`, the timeout helpers in `timeout.rs`.
//! The floor — `sync.rs` (the std/loom switch), `waitlist.rs` (the waiter
//! slab), `wakeups.rs` (waking after unlocking), `error.rs`, `statistics.rs`
//! — is used by both wings and uses neither. The scope wing knows nothing of
//! streams; the stream wing asks a scope only what a waiter must know: is it
//! effectively cancelled now, and register this waker. Each file opens with
//! what it owns.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

// The two wings.
mod scope;
mod stream;

// The floor: used by both wings, using neither.
mod error;
mod statistics;
mod sync;
mod waitlist;
mod wakeups;

pub use error::{
    Cancelled, RecvError, RecvTimeoutError, SendError, SendTimeoutError, StreamError, TryRecvError,
    TrySendError,
};
pub use scope::timeout::{
    fail_after, fail_at, move_on_after, move_on_at, FailAfter, MaybeCancelled, MoveOn, TimedOut,
};
pub use scope::{
    checkpoint, CancelScope, Cancellable, Checkpoint, ScopeExt, Scoped, WaitCancelled,
};
pub use statistics::Statistics;
pub use stream::{
    IntoIter, Iter, MemoryReceiver, MemorySender, OwnedRecvFuture, OwnedSendFuture, RecvFuture,
    SendFuture, SendSink, TryIter, WaitBroken, WeakReceiver, WeakSender,
};

use stream::chan::Chan;
use sync::Arc;

/// Creates a stream that buffers up to `max_buffer_size` items.
///
/// With `max_buffer_size == 0` the stream is a rendezvous: a send completes
/// only once a receiver has taken its item.
///
/// ```
/// use scopestream::memory_stream;
///
/// # futures::executor::block_on(async {
/// let (tx, rx) = memory_stream::<u32>(0);
/// let receiving = async { rx.recv().await.unwrap() };
/// let sending = async { tx.send(42).await.unwrap() };
/// let (got, ()) = futures::join!(receiving, sending);
/// assert_eq!(got, 42);
/// # });
/// ```
pub fn memory_stream<T>(max_buffer_size: usize) -> (MemorySender<T>, MemoryReceiver<T>) {
    new_stream(Some(max_buffer_size))
}

/// Creates a stream whose buffer is unbounded: sends never wait.
///
/// ```
/// let (tx, rx) = scopestream::unbounded_memory_stream();
/// for i in 0..1000 {
///     tx.try_send(i).unwrap();
/// }
/// assert_eq!(rx.statistics().current_buffer_used, 1000);
/// assert_eq!(rx.statistics().max_buffer_size, None);
/// ```
pub fn unbounded_memory_stream<T>() -> (MemorySender<T>, MemoryReceiver<T>) {
    new_stream(None)
}

/// For the crate's own loom models only (`loom-tests/`); not part of the API.
#[cfg(feature = "loom")]
#[doc(hidden)]
pub mod __loom {
    /// Runs `f` as a loom model, every interleaving of it, with the crate's
    /// primitives made by loom (see `src/sync.rs`). Outside such a call the
    /// `loom` build uses std's, so its doc tests run on real threads.
    pub fn model(f: impl Fn() + Sync + Send + 'static) {
        check(&loom::model::Builder::new(), f);
    }

    /// Now, on the clock the crate's deadlines are read against; in this
    /// build it runs ahead of the system's by what [`advance_clock`] added.
    pub fn now() -> std::time::Instant {
        crate::scope::clock::now()
    }

    /// Moves the crate's clock forward by `by`, so that a model can make a
    /// deadline pass at a point of its choosing.
    pub fn advance_clock(by: std::time::Duration) {
        crate::scope::clock::model_clock::advance(by);
    }

    /// [`model`] with the exploration settings of `builder` (a preemption
    /// bound, say).
    pub fn check(builder: &loom::model::Builder, f: impl Fn() + Sync + Send + 'static) {
        crate::sync::enter_model_checking();
        builder.check(f);
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

fn new_stream<T>(capacity: Option<usize>) -> (MemorySender<T>, MemoryReceiver<T>) {
    let chan = Arc::new(Chan::new(capacity));
    (
        MemorySender::from_chan(Arc::clone(&chan), 0),
        MemoryReceiver::from_chan(chan, 1),
    )
}
