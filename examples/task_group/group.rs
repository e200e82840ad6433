//! A Trio-style task group (a nursery), built only on scopestream's public
//! API. `main.rs` beside it shows it at work; `tests/task_group.rs` tests it.
//!
//! * [`task_group`] runs a body with a [`Group`] handle; children spawned
//!   into it (by the body or by other children) run concurrently *inside the
//!   group's own future*, so they need not be `'static`, the group works on
//!   any executor, and dropping the group's future drops every child with
//!   it: no child ever outlives its group.
//! * The body runs in the group's scope, each child in a child scope of it.
//!   The first failure — a child's or the body's error, or a panic —
//!   cancels the group: siblings and body stop at their next cancellation
//!   point. The group returns only once every child has finished.
//! * A cancellation of the group's own (its `cancel()`, or a child's error)
//!   is caught: the group returns `Ok(None)`. One from outside passes
//!   through as the body's `Err`, for the scope that cancelled to catch.
//! * A panic is re-raised once every child has finished.
//!
//! Work that must run in parallel on a multi-thread runtime goes to
//! `tokio::spawn(work.in_current_scope())` from a child, which awaits the
//! handle: the spawned task stays under the child's scope.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use scopestream::{CancelScope, Cancelled, MaybeCancelled};

type Panic = Box<dyn Any + Send>;

/// How a child ended: its output and whether its own scope caught a
/// cancellation it stopped for, or its panic.
type Exit<E> = Result<(Result<(), E>, bool), Panic>;

struct Shared<'a, E> {
    spawned: Vec<BoxFuture<'a, Exit<E>>>,
    waker: Option<Waker>,
    exited: bool,
}

/// A running group: spawn children into it, or cancel it. Cheap to clone;
/// children may hold one to spawn siblings.
pub struct Group<'a, E> {
    scope: CancelScope,
    shared: Arc<Mutex<Shared<'a, E>>>,
}

impl<E> Clone for Group<'_, E> {
    fn clone(&self) -> Self {
        Group {
            scope: self.scope.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<'a, E: Send + 'a> Group<'a, E> {
    /// Starts `child` in a new child scope of the group.
    ///
    /// # Panics
    ///
    /// If the group has already exited, as Trio refuses `start_soon` on a
    /// closed nursery.
    pub fn spawn(&self, child: impl Future<Output = Result<(), E>> + Send + 'a) {
        let scope = self.scope.child();
        let run = async move {
            let out = scope.run(child).await;
            (out, scope.catches())
        };
        let exit = AssertUnwindSafe(run).catch_unwind().boxed();
        let waker = {
            let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            assert!(!shared.exited, "spawn into a task group that has exited");
            shared.spawned.push(exit);
            shared.waker.take()
        };
        // Woken after the lock: a waker is foreign code.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Cancels the group: body and children stop at their next
    /// cancellation point, and the group returns `Ok(None)`.
    pub fn cancel(&self) {
        self.scope.cancel();
    }

    /// The group's scope (its deadline, its shield, ...).
    #[allow(dead_code)] // used by the tests, not by the example
    pub fn scope(&self) -> &CancelScope {
        &self.scope
    }
}

/// Runs `body` with a new group, and returns once the body and every child
/// have finished: `Ok(Some(r))` if the body returned `Ok(r)` and nothing
/// failed; `Ok(None)` if the group's own cancellation stopped it; `Err(e)`
/// for the first failure, or the body's error when a scope outside the
/// group was cancelled (it is that scope's to catch). A panic is re-raised.
pub async fn task_group<'a, R, E, B, Fut>(body: B) -> Result<Option<R>, E>
where
    B: FnOnce(Group<'a, E>) -> Fut,
    Fut: Future<Output = Result<R, E>> + Send + 'a,
    E: MaybeCancelled + From<Cancelled> + Send + 'a,
    R: Send + 'a,
{
    let scope = CancelScope::new();
    let group = Group {
        scope: scope.clone(),
        shared: Arc::new(Mutex::new(Shared {
            spawned: Vec::new(),
            waker: None,
            exited: false,
        })),
    };
    let driver = Driver {
        body: Some(AssertUnwindSafe(body(group.clone())).catch_unwind().boxed()),
        body_out: None,
        children: FuturesUnordered::new(),
        group,
        failure: None,
        panic: None,
    };
    scope.run(driver).await
}

/// Polls the body and the children, inside the group's scope.
struct Driver<'a, R, E> {
    body: Option<BoxFuture<'a, Result<Result<R, E>, Panic>>>,
    body_out: Option<Result<R, E>>,
    children: FuturesUnordered<BoxFuture<'a, Exit<E>>>,
    group: Group<'a, E>,
    failure: Option<E>,
    panic: Option<Panic>,
}

// Nothing in a driver is pinned in place: the futures it polls are boxed.
impl<R, E> Unpin for Driver<'_, R, E> {}

impl<R, E: MaybeCancelled> Driver<'_, R, E> {
    /// The first failure cancels the group; later ones, and cancellations
    /// the group or a child's own scope caused, are not failures.
    fn failed(&mut self, err: E, caught: bool) {
        if caught || (err.is_cancelled() && self.group.scope.is_cancelled()) {
            return;
        }
        self.failure.get_or_insert(err);
        self.group.scope.cancel();
    }

    fn panicked(&mut self, panic: Panic) {
        self.panic.get_or_insert(panic);
        self.group.scope.cancel();
    }

    /// Moves newly spawned children in; `true` if there were any.
    fn adopt(&mut self, cx: &Context<'_>) -> bool {
        let spawned = {
            let mut shared = self
                .group
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shared.waker = Some(cx.waker().clone());
            std::mem::take(&mut shared.spawned)
        };
        let any = !spawned.is_empty();
        self.children.extend(spawned);
        any
    }
}

impl<R, E: MaybeCancelled> Future for Driver<'_, R, E> {
    type Output = Result<Option<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            this.adopt(cx);
            if let Some(body) = &mut this.body {
                if let Poll::Ready(out) = body.as_mut().poll(cx) {
                    this.body = None;
                    match out {
                        Ok(Ok(value)) => this.body_out = Some(Ok(value)),
                        Ok(Err(err)) if err.is_cancelled() => this.body_out = Some(Err(err)),
                        Ok(Err(err)) => this.failed(err, false),
                        Err(panic) => this.panicked(panic),
                    }
                }
            }
            while let Poll::Ready(Some(exit)) = this.children.poll_next_unpin(cx) {
                match exit {
                    Ok((Ok(()), _)) => {}
                    Ok((Err(err), caught)) => this.failed(err, caught),
                    Err(panic) => this.panicked(panic),
                }
            }
            // Children spawned during these polls are polled at once.
            if !this.adopt(cx) {
                break;
            }
        }
        if this.body.is_some() || !this.children.is_empty() {
            return Poll::Pending;
        }
        this.group
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .exited = true;
        if let Some(panic) = this.panic.take() {
            std::panic::resume_unwind(panic);
        }
        if let Some(err) = this.failure.take() {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(match this.body_out.take() {
            Some(Ok(value)) => Ok(Some(value)),
            // Stopped by cancellation: ours is caught, an outer one passes.
            Some(Err(_)) if this.group.scope.catches() => Ok(None),
            Some(Err(err)) => Err(err),
            None => Ok(None), // the body failed, and that failure was ours
        })
    }
}
