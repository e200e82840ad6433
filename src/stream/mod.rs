//! Memory object streams: the stream wing.
//!
//! | file          | owns                                                          |
//! |---------------|---------------------------------------------------------------|
//! | `chan.rs`     | the core: buffer, waiter lines, commit points, the state table |
//! | `waiter.rs`   | what every waiter shares: its slot key and scope registration, and how its task's waker gets into its slot |
//! | `handle.rs`   | the body both handles share: opening, cloning, closing, reading the stream's state |
//! | `sender.rs`   | [`MemorySender`]: only what is a sender's own                 |
//! | `receiver.rs` | [`MemoryReceiver`]: only what is a receiver's own             |
//! | `send.rs`     | the send operation: [`SendFuture`], [`OwnedSendFuture`], one `Drop`       |
//! | `recv.rs`     | the receive operation: [`RecvFuture`], [`OwnedRecvFuture`], one `Drop`    |
//! | `listen.rs`   | the listener lines' users: the `Stream` receive and [`WaitBroken`] |
//! | `iter.rs`     | blocking iterators                                            |
//! | `weak.rs`     | [`WeakSender`], [`WeakReceiver`]                              |
//! | `sink.rs`     | [`SendSink`], the `Sink` over a sender                        |
//! | `blocking.rs` | running one of the futures above to completion on a thread    |
//!
//! The wing uses the floor (`sync`, `waitlist`, `wakeups`, `error`,
//! `statistics`) and, of the scope wing, only what a waiter needs: whether
//! the current scope is effectively cancelled, a waiter's scope (`ScopeRef`,
//! asked at delivery time) and its registration (`ScopeWait`).
//!
//! # A send and a receive mirror each other
//!
//! Each asynchronous operation is a small state machine: a first poll that
//! checks and transfers in one critical section or takes a slot in line, a
//! waiting poll that collects what a peer settled (or gives up, cancelled),
//! and an abandon step for a future dropped while waiting, run by the one
//! `Drop` of the operation's future. What the two share is `waiter::Waiting`
//! — the scope a waiter waits in and, in `Waiting::record`, the order of
//! recording the slot, waking and registering. The rest stays apart
//! on purpose: a send's item lives in its slot and comes back in its error,
//! while a receive's committed item must go back to the head when abandoned
//! and is counted until collected, so a common skeleton would be all
//! parameters and no shared code.

mod blocking;
pub(crate) mod chan;
mod handle;
mod iter;
mod listen;
mod receiver;
mod recv;
mod send;
mod sender;
mod sink;
mod waiter;
mod weak;

pub use iter::{IntoIter, Iter, TryIter};
pub use listen::WaitBroken;
pub use receiver::MemoryReceiver;
pub use recv::{OwnedRecvFuture, RecvFuture};
pub use send::{OwnedSendFuture, SendFuture};
pub use sender::MemorySender;
pub use sink::SendSink;
pub use weak::{WeakReceiver, WeakSender};
