//! [`Statistics`]: a consistent snapshot of one stream, as AnyIO's
//! `statistics()` gives. Filled in by the stream wing under the stream's
//! lock; this module only defines the shape.

/// A consistent snapshot of a stream's state, taken under its lock.
///
/// Waiting operations are counted only while they are still deliverable: one
/// whose scope is effectively cancelled, whose future was dropped, or whose
/// handle was closed is never counted.
///
/// ```
/// use scopestream::{memory_stream, Statistics};
///
/// let (tx, rx) = memory_stream::<u8>(2);
/// tx.try_send(1).unwrap();
/// let _rx2 = rx.clone();
/// assert_eq!(
///     tx.statistics(),
///     Statistics {
///         current_buffer_used: 1,
///         max_buffer_size: Some(2),
///         open_send_streams: 1,
///         open_receive_streams: 2,
///         tasks_waiting_send: 0,
///         tasks_waiting_receive: 0,
///     }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Statistics {
    /// Items in the buffer. May exceed `max_buffer_size` by the number of items
    /// put back at the head by dropped receive futures (an item already
    /// committed to a receive whose future was then dropped goes back).
    pub current_buffer_used: usize,
    /// The buffer's capacity; `None` for an unbounded stream.
    pub max_buffer_size: Option<usize>,
    /// Sender handles not yet closed.
    pub open_send_streams: usize,
    /// Receiver handles not yet closed.
    pub open_receive_streams: usize,
    /// Sends blocked and still deliverable.
    pub tasks_waiting_send: usize,
    /// Receives blocked and still deliverable.
    pub tasks_waiting_receive: usize,
}
