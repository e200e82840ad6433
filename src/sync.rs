//! The one switch between `std` and loom.
//!
//! Every atomic, mutex, shared pointer, thread-local and park used by the
//! crate comes from here, so that `--features loom` model-checks the real code
//! without a `#[cfg]` at any call site.
//!
//! Two things are deliberately *not* swapped:
//!
//! * [`TreeArc`]/[`TreeWeak`]: the cancel-scope tree needs weak parent → child
//!   links and loom has no `Weak`. Only the reference counts of scope nodes go
//!   through std; every flag and lock inside a node is loom's, so the
//!   interleavings that decide cancellation are still explored.
//! * [`DeadlineWord`]: a scope's deadline. Its races with blocked operations
//!   are decided by the node lock (register-then-check, as for the cancel
//!   flag), which loom does model; a loom atomic here would add a scheduling
//!   point to every chain walk and tripled the suite's running time. Under
//!   loom the word still reads the value of the latest store in the explored
//!   schedule.
//! * [`OnceLock`]: a scope's parent is bound once, before the scope can become
//!   anyone's current scope. Its initialiser never reaches a loom
//!   synchronisation point, so the binding is atomic from loom's point of view.

pub(crate) use std::sync::atomic::AtomicI64 as DeadlineWord;
pub(crate) use std::sync::OnceLock;
pub(crate) use std::sync::{Arc as TreeArc, Weak as TreeWeak};

#[cfg(not(feature = "loom"))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread::{current as current_thread, park, Thread};
    pub(crate) use std::thread_local;

    /// parking_lot's mutex: it spins briefly before parking, which suits
    /// the crate's short critical sections under contention, and it has no
    /// poisoning (every critical section here leaves the protected state
    /// consistent before it can unwind).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[cfg(feature = "loom")]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread::{current as current_thread, park, Thread};
    pub(crate) use loom::thread_local;

    /// loom's mutex behind the same poison-ignoring `lock` as the std build.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

pub(crate) use imp::*;

/// `thread_local!` with a `const` initialiser where std allows it (loom's
/// macro takes only plain expressions).
#[cfg(not(feature = "loom"))]
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        std::thread_local! { $(#[$attr])* static $name: $t = const { $init }; }
    };
}

#[cfg(feature = "loom")]
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
    };
}

pub(crate) use const_thread_local;
