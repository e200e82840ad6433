//! Memory object streams: the stream wing.
//!
//! | file          | owns                                                          |
//! |---------------|---------------------------------------------------------------|
//! | `chan.rs`     | the core: buffer, waiter lines, commit points, the state table |
//! | `sender.rs`   | [`MemorySender`] and its [`Send`] future                      |
//! | `receiver.rs` | [`MemoryReceiver`], its [`Recv`] future and its `Stream` receive |
//! | `blocking.rs` | running one of the futures above to completion on a thread    |
//! | `sink.rs`     | [`SendSink`], the `Sink` over a sender                        |
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
//! and an abandon step for a future dropped while waiting. What the two share
//! is `chan::Waiting` — the scope a waiter waits in and, in `Waiting::record`, the
//! order of recording the slot, waking and registering. The rest stays apart
//! on purpose: a send's item lives in its slot and comes back in its error,
//! while a receive's committed item must go back to the head when abandoned
//! and is counted until collected, so a common skeleton would be all
//! parameters and no shared code.

mod blocking;
pub(crate) mod chan;
mod receiver;
mod sender;
mod sink;

pub use receiver::{IntoIter, Iter, MemoryReceiver, OwnedRecv, Recv, TryIter, WeakReceiver};
pub use sender::{MemorySender, OwnedSend, Send, WaitBroken, WeakSender};
pub use sink::SendSink;
