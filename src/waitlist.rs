//! A FIFO of waiters with stable keys, stored in a slab.
//!
//! Each blocked operation owns one *slot*. A slot is **linked** while its
//! operation waits in line; a peer that serves or aborts the waiter only
//! *unlinks* it (and writes the outcome into the slot), it never frees it.
//! Only the owning operation frees its slot, when it collects the outcome or is
//! dropped. So a key is never reused while its owner still holds it, which is
//! what lets the owner find its outcome without any generation counter.
//!
//! ```text
//!   insert_back ──► linked ──unlink──► unlinked ──remove──► free
//!                      └─────────────remove────────────────┘
//! ```
//!
//! Freed slots are recycled, so once the slab has grown to the largest number
//! of simultaneous waiters, blocking allocates nothing.
//!
//! A slot is as large as its value (a blocked send's slot holds its item), so
//! the slab gives memory back as its waiters go: when none is left it keeps
//! at most a few kilobytes, and while at most a quarter of its slots are
//! taken, freeing the last slot drops the vacant slots at the end and makes
//! the lowest free slots the next to be reused, so that the slots in use
//! gather at the front and the end can be dropped in turn. Memory then stays
//! within a small factor of the slots in use, once the waiters that hold the
//! highest slots have gone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

const NIL: usize = usize::MAX;

pub(crate) struct WaitList<E> {
    slots: Vec<Slot<E>>,
    /// The vacant slots, lowest first: reusing low slots keeps the slots in
    /// use together at the front, so that the end can be given back.
    free: BinaryHeap<Reverse<usize>>,
    head: usize,
    tail: usize,
    linked: usize,
    /// Slots in use (linked or not): those not on the free chain.
    occupied: usize,
}

/// The slab is not shrunk below this many slots, except when emptied.
const SHRINK_FROM: usize = 64;

/// Bytes an empty slab may keep allocated, for the next waiter.
const KEEP_BYTES: usize = 4096;

enum Slot<E> {
    Vacant,
    Occupied(Node<E>),
}

struct Node<E> {
    value: E,
    prev: usize,
    next: usize,
    linked: bool,
}

impl<E> WaitList<E> {
    pub(crate) const fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: BinaryHeap::new(),
            head: NIL,
            tail: NIL,
            linked: 0,
            occupied: 0,
        }
    }

    /// Stores `value` in a slot linked at the back of the line; returns its key.
    pub(crate) fn push_back(&mut self, value: E) -> usize {
        let node = Node {
            value,
            prev: self.tail,
            next: NIL,
            linked: true,
        };
        let key = match self.free.pop() {
            None => {
                self.slots.push(Slot::Occupied(node));
                self.slots.len() - 1
            }
            Some(Reverse(key)) => {
                let old = std::mem::replace(&mut self.slots[key], Slot::Occupied(node));
                debug_assert!(matches!(old, Slot::Vacant), "a free slot is vacant");
                key
            }
        };
        if self.tail == NIL {
            self.head = key;
        } else {
            self.node_mut(self.tail).next = key;
        }
        self.tail = key;
        self.linked += 1;
        self.occupied += 1;
        key
    }

    /// The key of the oldest linked slot.
    #[inline]
    pub(crate) fn front(&self) -> Option<usize> {
        (self.head != NIL).then_some(self.head)
    }

    /// Number of linked slots.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.linked
    }

    #[cfg(test)]
    pub(crate) fn is_linked(&self, key: usize) -> bool {
        self.node(key).linked
    }

    /// Unlinks the oldest linked slot and returns its key; the slot stays
    /// allocated for its owner.
    #[inline]
    pub(crate) fn unlink_front(&mut self) -> Option<usize> {
        let key = self.front()?;
        let next = {
            let node = self.node_mut(key);
            node.linked = false;
            std::mem::replace(&mut node.next, NIL)
        };
        self.head = next;
        if next == NIL {
            self.tail = NIL;
        } else {
            self.node_mut(next).prev = NIL;
        }
        self.linked -= 1;
        Some(key)
    }

    /// Takes the slot out of the line; it stays allocated for its owner.
    #[inline]
    pub(crate) fn unlink(&mut self, key: usize) {
        let (prev, next) = {
            let node = self.node_mut(key);
            if !node.linked {
                return;
            }
            node.linked = false;
            let links = (node.prev, node.next);
            node.prev = NIL;
            node.next = NIL;
            links
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node_mut(next).prev = prev;
        }
        self.linked -= 1;
    }

    /// Unlinks (if needed) and frees the slot, returning its value.
    pub(crate) fn remove(&mut self, key: usize) -> E {
        self.unlink(key);
        match std::mem::replace(&mut self.slots[key], Slot::Vacant) {
            Slot::Occupied(node) => {
                self.occupied -= 1;
                if self.occupied == 0 {
                    // The common case of one waiter at a time: no free
                    // list to keep, every slot goes.
                    self.release();
                    return node.value;
                }
                self.free.push(Reverse(key));
                if self.slots.len() >= SHRINK_FROM
                    && self.occupied * 4 <= self.slots.len()
                    && matches!(self.slots.last(), Some(Slot::Vacant))
                {
                    self.shrink();
                }
                node.value
            }
            Slot::Vacant => unreachable!("removed a vacant waiter slot"),
        }
    }

    /// No slot in use: forget them all, keeping a few kilobytes for reuse.
    #[inline]
    fn release(&mut self) {
        self.slots.clear();
        self.free.clear();
        let keep = (KEEP_BYTES / std::mem::size_of::<Slot<E>>().max(1)).clamp(1, SHRINK_FROM);
        if self.slots.capacity() > keep {
            self.slots.shrink_to(keep);
            self.free.shrink_to(keep);
        }
    }

    /// Few slots in use and the last one vacant: drops the vacant slots at
    /// the end (and forgets them as free).
    #[cold]
    fn shrink(&mut self) {
        while matches!(self.slots.last(), Some(Slot::Vacant)) {
            self.slots.pop();
        }
        let len = self.slots.len();
        self.free.retain(|&Reverse(key)| key < len);
        self.slots.shrink_to(len * 2);
        self.free.shrink_to(len * 2);
    }

    /// Slots allocated, in use or not.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn get(&self, key: usize) -> &E {
        &self.node(key).value
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> &mut E {
        &mut self.node_mut(key).value
    }

    /// The linked values, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        let mut key = self.head;
        std::iter::from_fn(move || {
            if key == NIL {
                return None;
            }
            let node = self.node(key);
            key = node.next;
            Some(&node.value)
        })
    }

    /// Calls `f` on every linked value, oldest first, and unlinks those for
    /// which it returns `true`.
    pub(crate) fn unlink_where(&mut self, mut f: impl FnMut(&mut E) -> bool) {
        let mut key = self.head;
        while key != NIL {
            let node = self.node_mut(key);
            let next = node.next;
            if f(&mut node.value) {
                self.unlink(key);
            }
            key = next;
        }
    }

    #[inline]
    fn node(&self, key: usize) -> &Node<E> {
        match &self.slots[key] {
            Slot::Occupied(node) => node,
            Slot::Vacant => unreachable!("stale waiter key"),
        }
    }

    #[inline]
    fn node_mut(&mut self, key: usize) -> &mut Node<E> {
        match &mut self.slots[key] {
            Slot::Occupied(node) => node,
            Slot::Vacant => unreachable!("stale waiter key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WaitList;

    fn linked(list: &WaitList<u32>) -> Vec<u32> {
        list.iter().copied().collect()
    }

    #[test]
    fn fifo_order_and_middle_unlink() {
        let mut list = WaitList::new();
        let a = list.push_back(1);
        let b = list.push_back(2);
        let c = list.push_back(3);
        assert_eq!(linked(&list), [1, 2, 3]);
        list.unlink(b);
        assert_eq!(linked(&list), [1, 3]);
        assert!(!list.is_linked(b));
        assert_eq!(
            *list.get(b),
            2,
            "an unlinked slot keeps its value for its owner"
        );
        list.unlink(b); // idempotent
        assert_eq!(list.len(), 2);
        assert_eq!(list.front(), Some(a));
        list.unlink(a);
        assert_eq!(list.front(), Some(c));
        list.unlink(c);
        assert_eq!(list.front(), None);
        assert_eq!(list.len(), 0);
        assert_eq!([list.remove(a), list.remove(b), list.remove(c)], [1, 2, 3]);
    }

    #[test]
    fn unlink_front_takes_the_oldest_and_keeps_the_line_whole() {
        let mut list = WaitList::new();
        let a = list.push_back(1);
        let b = list.push_back(2);
        let c = list.push_back(3);
        assert_eq!(list.unlink_front(), Some(a));
        assert!(!list.is_linked(a));
        assert_eq!(linked(&list), [2, 3]);
        // A slot pushed now goes behind the others, and an unlink in the
        // middle still mends the links the front unlink left.
        let d = list.push_back(4);
        list.unlink(c);
        assert_eq!(linked(&list), [2, 4]);
        assert_eq!(list.unlink_front(), Some(b));
        assert_eq!(list.unlink_front(), Some(d));
        assert_eq!(
            (list.unlink_front(), list.front(), list.len()),
            (None, None, 0)
        );
        let e = list.push_back(5);
        assert_eq!((linked(&list), list.front()), (vec![5], Some(e)));
        assert_eq!([a, b, c, d].map(|k| list.remove(k)), [1, 2, 3, 4]);
    }

    #[test]
    fn slots_are_recycled_without_growth() {
        let mut list = WaitList::new();
        let a = list.push_back(1);
        let b = list.push_back(2);
        list.remove(a);
        list.remove(b);
        let cap = list.slots.len();
        for round in 0..100 {
            let x = list.push_back(round);
            let y = list.push_back(round + 1);
            assert_eq!(linked(&list), [round, round + 1]);
            assert_eq!(list.remove(y), round + 1);
            assert_eq!(list.remove(x), round);
        }
        assert_eq!(list.slots.len(), cap);
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn memory_follows_the_slots_in_use() {
        let mut list = WaitList::new();
        let keys: Vec<_> = (0..1000).map(|v| list.push_back(v)).collect();
        // All gone: nothing kept beyond a few slots.
        for &key in keys.iter().rev() {
            list.remove(key);
        }
        assert_eq!(list.allocated(), 0);
        assert!(list.slots.capacity() <= super::SHRINK_FROM);

        // Ten stay, at the front: the rest is given back as it goes, in any
        // order of leaving.
        let keys: Vec<_> = (0..1000).map(|v| list.push_back(v)).collect();
        for &key in keys[10..]
            .iter()
            .step_by(2)
            .chain(keys[11..].iter().step_by(2))
        {
            list.remove(key);
        }
        assert!(
            list.allocated() <= 40,
            "{} slots for 10 waiters",
            list.allocated()
        );
        assert_eq!(linked(&list), (0..10).collect::<Vec<_>>());

        // A waiter holding the last slot keeps the rest until it leaves;
        // then new waiters reuse the lowest slots, and it shrinks again.
        let keys: Vec<_> = (0..1000).map(|v| list.push_back(v)).collect();
        for &key in &keys[..keys.len() - 1] {
            list.remove(key);
        }
        let high = *keys.last().unwrap();
        assert!(list.allocated() > 1000);
        let low: Vec<_> = (0..5).map(|v| list.push_back(v)).collect();
        assert!(low.iter().all(|&k| k < high));
        list.remove(high);
        assert!(
            list.allocated() <= 40,
            "{} slots for 15 waiters",
            list.allocated()
        );
        assert_eq!(list.len(), 15);
    }

    #[test]
    fn unlink_where_keeps_order_of_the_rest() {
        let mut list = WaitList::new();
        let keys: Vec<_> = (0..6).map(|v| list.push_back(v)).collect();
        list.unlink_where(|v| *v % 2 == 0);
        assert_eq!(linked(&list), [1, 3, 5]);
        assert!(!list.is_linked(keys[0]) && list.is_linked(keys[1]));
        let tail = list.push_back(6);
        assert_eq!(linked(&list), [1, 3, 5, 6]);
        list.remove(tail);
        assert_eq!(linked(&list), [1, 3, 5]);
    }
}
