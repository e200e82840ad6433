//! The clock deadlines are read against, and deadlines as ticks.
//!
//! A scope's deadline lives in one atomic word beside its flags, as signed
//! nanoseconds from an epoch fixed at first use ([`to_ticks`]/[`from_ticks`]),
//! with [`NO_DEADLINE`] for none. A chain walk reads the clock at most once,
//! and only if some scope on the chain has a deadline ([`LazyNow`]).
//!
//! With the `tokio` feature the clock is tokio's, which is the system's
//! monotonic clock except in a runtime whose time is paused; deadlines then
//! follow the paused clock, as tokio's own timeouts do.
//!
//! This module owns time and nothing else: it knows no scope and no timer.

use std::time::{Duration, Instant};

use crate::sync::OnceLock;

/// A deadline word when there is no deadline.
pub(super) const NO_DEADLINE: i64 = i64::MAX;

/// Now, on the clock deadlines are compared with.
pub(crate) fn now() -> Instant {
    #[cfg(feature = "tokio")]
    let now = tokio::time::Instant::now().into_std();
    #[cfg(not(feature = "tokio"))]
    let now = Instant::now();
    #[cfg(feature = "loom")]
    let now = now + model_clock::offset();
    now
}

/// The `loom` build's hand on the clock: the models move it forward to
/// make a deadline pass at a point of their choosing (loom has no clock of
/// its own). A plain std atomic, never a loom point; it only ever grows, so
/// deadlines set relative to [`now`] stay meaningful across a model's
/// iterations.
#[cfg(feature = "loom")]
pub(crate) mod model_clock {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    static OFFSET_NANOS: AtomicU64 = AtomicU64::new(0);

    pub(crate) fn offset() -> Duration {
        Duration::from_nanos(OFFSET_NANOS.load(Ordering::SeqCst))
    }

    pub(crate) fn advance(by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        OFFSET_NANOS.fetch_add(nanos, Ordering::SeqCst);
    }
}

/// Deadlines are stored as signed nanoseconds from this instant, fixed at
/// first use, so that a deadline fits in one atomic word and reads back
/// exactly.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(now)
}

pub(super) fn to_ticks(at: Instant) -> i64 {
    let epoch = epoch();
    // Seconds and nanoseconds in i64, not `as_nanos`' u128.
    let nanos = |d: Duration| {
        i64::try_from(d.as_secs())
            .ok()
            .and_then(|secs| secs.checked_mul(1_000_000_000))
            .and_then(|n| n.checked_add(i64::from(d.subsec_nanos())))
            .unwrap_or(i64::MAX)
    };
    if at >= epoch {
        // Beyond ~292 years: as good as never, but still a deadline.
        nanos(at - epoch).min(NO_DEADLINE - 1)
    } else {
        -nanos(epoch - at)
    }
}

pub(super) fn from_ticks(ticks: i64) -> Instant {
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
pub(super) struct LazyNow(Option<i64>);

impl LazyNow {
    pub(super) fn ticks(&mut self) -> i64 {
        *self.0.get_or_insert_with(|| to_ticks(now()))
    }
}
