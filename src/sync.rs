//! The one switch between `std` and loom.
//!
//! Every atomic, mutex, shared pointer, thread-local and park used by the
//! crate comes from here, so that `--features loom` model-checks the real code
//! without a `#[cfg]` at any call site.
//!
//! Some things are deliberately *not* swapped:
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
//! * [`EpochWord`]: a scope node's walk epoch. It is written under the node
//!   lock and read on the poll that follows a walk's wake-up; that wake-up
//!   is made after the write, so the poll sees it by the wake-up's own
//!   ordering, which loom models. A loom atomic here would add a scheduling
//!   point to every poll of an operation in a scope (it doubled the suite's
//!   running time); under loom the word reads the latest store in the
//!   explored schedule.
//! * [`OnceLock`]: a scope's parent is bound once, before the scope can become
//!   anyone's current scope. Its initialiser never reaches a loom
//!   synchronisation point, so the binding is atomic from loom's point of view.

pub(crate) use std::sync::atomic::AtomicI64 as DeadlineWord;
pub(crate) use std::sync::atomic::AtomicUsize as EpochWord;
pub(crate) use std::sync::OnceLock;
pub(crate) use std::sync::{Arc as TreeArc, Weak as TreeWeak};

#[cfg(not(feature = "loom"))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread::{current as current_thread, park, park_timeout, Thread};
    pub(crate) use std::thread_local;

    /// A test-and-test-and-set spin lock, released by a plain store
    /// (`spin`'s), with a bounded back-off: see [`super::lock_contended`].
    /// No poisoning: every critical section here leaves the protected state
    /// consistent before it can unwind, and none runs user code.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(spin::mutex::SpinMutex<T>);

    pub(crate) type MutexGuard<'a, T> = spin::mutex::SpinMutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(spin::mutex::SpinMutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            match self.0.try_lock() {
                Some(guard) => guard,
                None => crate::sync::lock_contended(&self.0),
            }
        }
    }
}

/// The `loom` build: every primitive is loom's when it is made inside a loom
/// model, and std's otherwise.
///
/// One build of the library serves both the models in `loom-tests/` and
/// everything else that `cargo test --features loom` runs — the doc tests,
/// which use real threads, runtimes and timers, where loom's primitives
/// would panic ("outside a Loom model"). The models announce themselves
/// through [`crate::__loom::model`]; each primitive picks its side when it
/// is made (a thread-local, at each access) and keeps it, so the crate's code
/// is the same on both sides and the models check the real thing. The
/// dispatch costs a branch per operation, only in this build.
#[cfg(feature = "loom")]
mod imp {
    use std::ops::{Deref, DerefMut};
    pub(crate) use std::sync::atomic::Ordering;

    static MODEL_CHECKING: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);

    /// From now on, primitives are loom's: this process runs loom models.
    pub(crate) fn enter_model_checking() {
        MODEL_CHECKING.store(true, Ordering::SeqCst);
    }

    #[inline]
    pub(crate) fn model_checking() -> bool {
        MODEL_CHECKING.load(Ordering::Relaxed)
    }

    macro_rules! dual_atomic {
        ($name:ident, $t:ty, $($op:ident($arg:ident)),*) => {
            #[derive(Debug)]
            pub(crate) enum $name {
                Std(std::sync::atomic::$name),
                Loom(loom::sync::atomic::$name),
            }

            impl $name {
                pub(crate) fn new(value: $t) -> Self {
                    if model_checking() {
                        Self::Loom(loom::sync::atomic::$name::new(value))
                    } else {
                        Self::Std(std::sync::atomic::$name::new(value))
                    }
                }

                pub(crate) fn load(&self, order: Ordering) -> $t {
                    match self {
                        Self::Std(a) => a.load(order),
                        Self::Loom(a) => a.load(order),
                    }
                }

                #[allow(dead_code)] // not every atomic is stored to
                pub(crate) fn store(&self, value: $t, order: Ordering) {
                    match self {
                        Self::Std(a) => a.store(value, order),
                        Self::Loom(a) => a.store(value, order),
                    }
                }

                $(
                    pub(crate) fn $op(&self, $arg: $t, order: Ordering) -> $t {
                        match self {
                            Self::Std(a) => a.$op($arg, order),
                            Self::Loom(a) => a.$op($arg, order),
                        }
                    }
                )*
            }
        };
    }

    dual_atomic!(AtomicBool, bool, swap(value));
    dual_atomic!(AtomicU8, u8, fetch_or(bits), fetch_and(bits));

    /// A shared pointer: loom's (which checks for leaks) or std's.
    pub(crate) enum Arc<T> {
        Std(std::sync::Arc<T>),
        Loom(loom::sync::Arc<T>),
    }

    impl<T> Arc<T> {
        pub(crate) fn new(value: T) -> Self {
            if model_checking() {
                Self::Loom(loom::sync::Arc::new(value))
            } else {
                Self::Std(std::sync::Arc::new(value))
            }
        }
    }

    impl<T> Arc<T> {
        pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
            match (a, b) {
                (Self::Std(a), Self::Std(b)) => std::sync::Arc::ptr_eq(a, b),
                (Self::Loom(a), Self::Loom(b)) => loom::sync::Arc::ptr_eq(a, b),
                _ => false,
            }
        }
    }

    impl<T> Clone for Arc<T> {
        fn clone(&self) -> Self {
            match self {
                Self::Std(a) => Self::Std(std::sync::Arc::clone(a)),
                Self::Loom(a) => Self::Loom(loom::sync::Arc::clone(a)),
            }
        }
    }

    impl<T> Deref for Arc<T> {
        type Target = T;

        fn deref(&self) -> &T {
            match self {
                Self::Std(a) => a,
                Self::Loom(a) => a,
            }
        }
    }

    /// loom's mutex, or the std build's spin lock, behind the same
    /// poison-ignoring `lock`.
    #[derive(Debug)]
    pub(crate) enum Mutex<T> {
        Std(spin::mutex::SpinMutex<T>),
        Loom(loom::sync::Mutex<T>),
    }

    pub(crate) enum MutexGuard<'a, T> {
        Std(spin::mutex::SpinMutexGuard<'a, T>),
        Loom(loom::sync::MutexGuard<'a, T>),
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            if model_checking() {
                Self::Loom(loom::sync::Mutex::new(value))
            } else {
                Self::Std(spin::mutex::SpinMutex::new(value))
            }
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            match self {
                Self::Std(m) => MutexGuard::Std(match m.try_lock() {
                    Some(guard) => guard,
                    None => crate::sync::lock_contended(m),
                }),
                Self::Loom(m) => {
                    MutexGuard::Loom(m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                }
            }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            match self {
                Self::Std(g) => g,
                Self::Loom(g) => g,
            }
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            match self {
                Self::Std(g) => g,
                Self::Loom(g) => g,
            }
        }
    }

    pub(crate) enum Thread {
        Std(std::thread::Thread),
        Loom(loom::thread::Thread),
    }

    impl Thread {
        pub(crate) fn unpark(&self) {
            match self {
                Self::Std(t) => t.unpark(),
                Self::Loom(t) => t.unpark(),
            }
        }
    }

    pub(crate) fn current_thread() -> Thread {
        if model_checking() {
            Thread::Loom(loom::thread::current())
        } else {
            Thread::Std(std::thread::current())
        }
    }

    pub(crate) fn park() {
        if model_checking() {
            loom::thread::park();
        } else {
            std::thread::park();
        }
    }

    /// Inside a model, loom has no clock: the blocking timeouts are not
    /// modelled, and this is a yield (a spurious wake-up, which every caller
    /// allows for).
    pub(crate) fn park_timeout(timeout: std::time::Duration) {
        if model_checking() {
            loom::thread::yield_now();
        } else {
            std::thread::park_timeout(timeout);
        }
    }

    /// A thread-local with one copy on each side.
    pub(crate) struct LocalKey<T: 'static> {
        pub(crate) std: &'static std::thread::LocalKey<T>,
        pub(crate) loom: &'static loom::thread::LocalKey<T>,
    }

    impl<T: 'static> LocalKey<T> {
        pub(crate) fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, ()> {
            if model_checking() {
                self.loom.try_with(f).map_err(drop)
            } else {
                self.std.try_with(f).map_err(drop)
            }
        }
    }

    macro_rules! dual_thread_local {
        ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
            $(#[$attr])*
            static $name: $crate::sync::LocalKey<$t> = {
                std::thread_local! { static STD: $t = $init; }
                loom::thread_local! { static LOOM: $t = $init; }
                $crate::sync::LocalKey { std: &STD, loom: &LOOM }
            };
        };
    }

    pub(crate) use dual_thread_local as thread_local;
}

pub(crate) use imp::*;

/// The stream's and the scope's lock when it is taken: wait with a bounded
/// back-off, reading the flag (no write) until it looks free, then try again.
///
/// Critical sections here are short and run no user code, so the holder is
/// almost always about to release: first a few rounds of `spin_loop`
/// hints, doubling, then `yield_now`, so that a holder preempted on a busy
/// machine (more threads than cores) gets the core back instead of the
/// waiters spinning out their time slices. It never sleeps: a sleep in an
/// executor's worker would stall every task queued on it.
#[cold]
#[inline(never)]
fn lock_contended<T>(lock: &spin::mutex::SpinMutex<T>) -> spin::mutex::SpinMutexGuard<'_, T> {
    const SPIN_ROUNDS: u32 = 6;
    let mut round = 0;
    loop {
        while lock.is_locked() {
            if round < SPIN_ROUNDS {
                for _ in 0..1 << round {
                    std::hint::spin_loop();
                }
                round += 1;
            } else {
                std::thread::yield_now();
            }
        }
        if let Some(guard) = lock.try_lock() {
            return guard;
        }
    }
}

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
        $crate::sync::thread_local! { $(#[$attr])* static $name: $t = $init; }
    };
}

pub(crate) use const_thread_local;
