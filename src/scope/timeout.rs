//! Timeouts: [`move_on_after`]/[`move_on_at`] and [`fail_after`]/[`fail_at`],
//! the helpers AnyIO and Trio users reach for first.
//!
//! Each runs a future inside a fresh [`CancelScope`] with a deadline. The
//! deadline is computed when the helper is *called* (as with tokio's
//! `timeout` and AnyIO's helpers; Trio ≥ 0.27 starts the clock on scope
//! entry instead), and the scope's parent is the scope current at the first
//! poll, as for any [`CancelScope::run`].
//!
//! # Cancellation is cooperative; the body always finishes
//!
//! Unlike `tokio::time::timeout`, the helpers never drop the future they
//! run. When the deadline passes, the scope is cancelled: the body's
//! checkpoints and stream operations fail with [`Cancelled`] (an operation
//! that has already committed still completes, SPEC C5), the body returns,
//! and only then does the helper look at what it returned. A value the body
//! did get — an item it received just before the deadline — is therefore
//! never thrown away. Futures from other libraries inside the body are not
//! interrupted; race them with [`CancelScope::cancelled`] where needed.
//!
//! # Which outputs mean "cancelled": [`MaybeCancelled`]
//!
//! The helpers report a timeout only when the body's output says it stopped
//! because of cancellation ([`MaybeCancelled::is_cancelled`]) *and* the
//! helper's own scope is the one that catches it: its own deadline passed
//! (or it was cancelled), and no cancellation from outside is visible in it.
//! As in Trio and AnyIO, the outermost cancelled scope up to a shield catches;
//! an inner one passes the body's output through unchanged so the outer one
//! can report it.
//!
//! `SendError` deliberately does not implement [`MaybeCancelled`]: a
//! cancelled send hands its item back inside the error, and a helper that
//! turned it into "no value" would drop the item. Run a send under a deadline
//! with [`CancelScope::with_deadline`] and match `SendError::Cancelled(item)`,
//! or return the item from the body yourself.
//!
//! # `fail_after`: AnyIO's rule, not Trio's
//!
//! [`fail_after`] fails with [`TimedOut`] only when its own deadline has
//! actually passed when the body returns, as AnyIO's `fail_after` raises
//! `TimeoutError` only then. Trio raises `TooSlowError` whenever the scope
//! caught a cancellation, even one from an explicit `cancel()` (trio#698). If
//! the scope was cancelled some other way, the body's output is returned as
//! `Ok` unchanged.
//!
//! # Timers
//!
//! See this wing's `timer` module: a blocked operation arms one timer for
//! its effective deadline — tokio's inside a tokio runtime (feature
//! `tokio`), async-io's elsewhere (feature `async-io`, on by default). The
//! README's "Deadline timers" section gives the measurements behind that
//! choice.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use super::clock;
use super::{CancelScope, Scoped};
use crate::error::{Cancelled, RecvError, StreamError};

/// An output that can say whether the code that produced it stopped because
/// its cancel scope was cancelled. The timeout helpers use it to tell a
/// timed-out body from one that finished.
///
/// The helpers never drop the future they run (unlike `tokio::time::timeout`):
/// when the deadline passes, the body's checkpoints and stream operations fail
/// with [`Cancelled`] — an operation already past its commit point still
/// completes — and the body returns. The helper then reports a timeout only
/// if that output [`is_cancelled`](MaybeCancelled::is_cancelled) *and* its own
/// scope is the one that catches it: its own deadline passed (or it was
/// cancelled), and no cancellation from outside is visible in it. As in Trio
/// and AnyIO the outermost cancelled scope up to a shield catches; an inner
/// one passes the output through. So a value the body did get is never
/// thrown away.
///
/// `SendError` deliberately does not implement this trait: a cancelled send
/// hands its item back inside the error, and turning it into "no value" would
/// drop the item. Run a send under [`CancelScope::with_deadline`] and match
/// `SendError::Cancelled(item)`, or return the item from the body yourself.
///
/// Implement it for your own error type to use `?` on stream operations
/// inside [`move_on_after`] and [`fail_after`]:
///
/// ```
/// use scopestream::{MaybeCancelled, RecvError};
///
/// enum AppError {
///     Recv(RecvError),
///     Parse(std::num::ParseIntError),
/// }
///
/// impl MaybeCancelled for AppError {
///     fn is_cancelled(&self) -> bool {
///         matches!(self, AppError::Recv(e) if e.is_cancelled())
///     }
/// }
/// ```
pub trait MaybeCancelled {
    /// `true` if this output means "stopped because the scope was cancelled".
    fn is_cancelled(&self) -> bool;
}

impl MaybeCancelled for Cancelled {
    fn is_cancelled(&self) -> bool {
        true
    }
}

/// A cancelled send's error is not "cancelled" here, so that a timeout
/// helper hands it back with its item (see the trait's docs).
impl<T> MaybeCancelled for StreamError<T> {
    fn is_cancelled(&self) -> bool {
        matches!(self, StreamError::Cancelled)
    }
}

impl<T> From<TimedOut> for StreamError<T> {
    fn from(_: TimedOut) -> Self {
        StreamError::TimedOut
    }
}

impl MaybeCancelled for RecvError {
    fn is_cancelled(&self) -> bool {
        matches!(self, RecvError::Cancelled)
    }
}

/// An `Err` that is a cancellation.
impl<T, E: MaybeCancelled> MaybeCancelled for Result<T, E> {
    fn is_cancelled(&self) -> bool {
        self.as_ref().is_err_and(E::is_cancelled)
    }
}

/// A [`fail_after`] nested in another helper: cancelled if it passed a
/// cancelled output through.
impl<T: MaybeCancelled> MaybeCancelled for Result<T, TimedOut> {
    fn is_cancelled(&self) -> bool {
        self.as_ref().is_ok_and(T::is_cancelled)
    }
}

/// A [`move_on_after`] nested in another helper: cancelled if it passed a
/// cancelled output through (`None` means it caught its own).
impl<T: MaybeCancelled> MaybeCancelled for Option<T> {
    fn is_cancelled(&self) -> bool {
        self.as_ref().is_some_and(T::is_cancelled)
    }
}

/// The error of [`fail_after`] and [`fail_at`]: the deadline passed and the
/// body stopped because of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline passed")
    }
}

impl std::error::Error for TimedOut {}

/// Runs `fut` in a new scope that is cancelled `delay` from now; `None` if
/// that cancelled it. See [`move_on_at`].
///
/// ```
/// use std::time::Duration;
/// use scopestream::{memory_stream, move_on_after};
///
/// # futures::executor::block_on(async {
/// let (tx, rx) = memory_stream::<&str>(1);
/// // Nothing arrives in time: no value.
/// assert_eq!(move_on_after(Duration::from_millis(20), rx.recv()).await, None);
/// // Something does: the body's output.
/// tx.try_send("hello").unwrap();
/// assert_eq!(move_on_after(Duration::from_secs(5), rx.recv()).await, Some(Ok("hello")));
/// # });
/// ```
pub fn move_on_after<F: IntoFuture>(delay: Duration, fut: F) -> MoveOn<F::IntoFuture>
where
    F::Output: MaybeCancelled,
{
    move_on_at(deadline_after(delay), fut)
}

/// Runs `fut` in a new scope that is cancelled at `deadline`.
///
/// Completes with `Some(output)` when `fut` finished on its own — including
/// when it got its value just as the deadline passed — or when its output is
/// a cancellation this scope does not catch (an outer scope's). Completes
/// with `None` when `fut` stopped because this scope was cancelled: its
/// deadline passed, or someone called [`cancel`](CancelScope::cancel) on it
/// ([`MoveOn::scope`] or [`CancelScope::current`] inside). See
/// [`MaybeCancelled`] for how "stopped because" is decided.
pub fn move_on_at<F: IntoFuture>(deadline: Instant, fut: F) -> MoveOn<F::IntoFuture>
where
    F::Output: MaybeCancelled,
{
    MoveOn {
        inner: CancelScope::with_deadline(deadline).run(fut.into_future()),
    }
}

/// Runs `fut` in a new scope that is cancelled `delay` from now; fails with
/// [`TimedOut`] if that cancelled it. See [`fail_at`].
///
/// ```
/// use std::time::Duration;
/// use scopestream::{fail_after, memory_stream, TimedOut};
///
/// # futures::executor::block_on(async {
/// let (_tx, rx) = memory_stream::<u32>(0);
/// assert_eq!(fail_after(Duration::from_millis(20), rx.recv()).await, Err(TimedOut));
/// # });
/// ```
pub fn fail_after<F: IntoFuture>(delay: Duration, fut: F) -> FailAfter<F::IntoFuture>
where
    F::Output: MaybeCancelled,
{
    fail_at(deadline_after(delay), fut)
}

/// Runs `fut` in a new scope that is cancelled at `deadline`.
///
/// Fails with [`TimedOut`] only when `fut` stopped because this scope was
/// cancelled *and* its deadline has passed (AnyIO's rule). Otherwise
/// completes with `Ok(output)`: `fut` finished on its own, an outer scope's
/// cancellation is passing through, or the scope was cancelled explicitly
/// before its deadline.
pub fn fail_at<F: IntoFuture>(deadline: Instant, fut: F) -> FailAfter<F::IntoFuture>
where
    F::Output: MaybeCancelled,
{
    FailAfter {
        inner: CancelScope::with_deadline(deadline).run(fut.into_future()),
    }
}

/// `now + delay`, saturating far in the future.
fn deadline_after(delay: Duration) -> Instant {
    let now = clock::now();
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

pin_project! {
    /// The future of [`move_on_after`] and [`move_on_at`].
    #[must_use = "futures do nothing unless polled"]
    pub struct MoveOn<F> {
        #[pin]
        inner: Scoped<F>,
    }
}

impl<F> MoveOn<F> {
    /// The scope the body runs in: move its deadline, or cancel it.
    pub fn scope(&self) -> &CancelScope {
        self.inner.scope()
    }
}

impl<F: Future> Future for MoveOn<F>
where
    F::Output: MaybeCancelled,
{
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let output = ready!(this.inner.as_mut().poll(cx));
        let caught = output.is_cancelled() && this.inner.scope().catches();
        Poll::Ready((!caught).then_some(output))
    }
}

impl<F> fmt::Debug for MoveOn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MoveOn")
            .field("scope", self.scope())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`fail_after`] and [`fail_at`].
    #[must_use = "futures do nothing unless polled"]
    pub struct FailAfter<F> {
        #[pin]
        inner: Scoped<F>,
    }
}

impl<F> FailAfter<F> {
    /// The scope the body runs in: move its deadline, or cancel it.
    pub fn scope(&self) -> &CancelScope {
        self.inner.scope()
    }
}

impl<F: Future> Future for FailAfter<F>
where
    F::Output: MaybeCancelled,
{
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let output = ready!(this.inner.as_mut().poll(cx));
        let scope = this.inner.scope();
        let timed_out = output.is_cancelled()
            && scope.catches()
            && scope
                .deadline()
                .is_some_and(|deadline| deadline <= clock::now());
        Poll::Ready(if timed_out { Err(TimedOut) } else { Ok(output) })
    }
}

impl<F> fmt::Debug for FailAfter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailAfter")
            .field("scope", self.scope())
            .finish_non_exhaustive()
    }
}
