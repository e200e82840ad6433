//! Blocking iterators over a receiver: [`Iter`] and [`IntoIter`] receive as
//! `recv_blocking` does, [`TryIter`] as `try_recv` does.

use std::fmt;
use std::iter::FusedIterator;

use super::receiver::MemoryReceiver;

impl<T> MemoryReceiver<T> {
    /// A blocking iterator: each item as [`recv_blocking`](MemoryReceiver::recv_blocking)
    /// gets it, until the end of the stream or this handle's close. Also
    /// `for item in &rx`.
    ///
    /// ```
    /// let (tx, rx) = scopestream::unbounded_memory_stream();
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send_blocking(i).unwrap();
    ///     }
    /// });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the items available now, as [`try_recv`](MemoryReceiver::try_recv)
    /// gets them; it ends at the first that is not (more may come later).
    ///
    /// ```
    /// let (tx, rx) = scopestream::memory_stream(4);
    /// tx.try_send(1).unwrap();
    /// tx.try_send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }
}

/// The iterator of [`MemoryReceiver::iter`]: blocks for each item.
pub struct Iter<'a, T> {
    receiver: &'a MemoryReceiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv_blocking().ok()
    }
}

/// `None` only at the end of the stream or when the handle is closed, and
/// both are final.
impl<T> FusedIterator for Iter<'_, T> {}

/// The iterator of [`MemoryReceiver::try_iter`]: the items available now.
pub struct TryIter<'a, T> {
    receiver: &'a MemoryReceiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// The iterator of `MemoryReceiver`'s `into_iter`: blocks for each item,
/// owning the handle.
pub struct IntoIter<T> {
    receiver: MemoryReceiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv_blocking().ok()
    }
}

impl<T> FusedIterator for IntoIter<T> {}

impl<'a, T> IntoIterator for &'a MemoryReceiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for MemoryReceiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}

// `Debug` whatever the item type, as the handles are.
macro_rules! debug_as_its_receiver {
    ($($iter:ident$(<$a:lifetime>)?),*) => {$(
        impl<$($a,)? T> fmt::Debug for $iter<$($a,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($iter))
                    .field("receiver", &self.receiver)
                    .finish()
            }
        }
    )*};
}

debug_as_its_receiver!(Iter<'a>, TryIter<'a>, IntoIter);
