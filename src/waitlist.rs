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

const NIL: usize = usize::MAX;

pub(crate) struct WaitList<E> {
    slots: Vec<Slot<E>>,
    /// Head of the free-slot chain, or `NIL`.
    free: usize,
    head: usize,
    tail: usize,
    linked: usize,
}

enum Slot<E> {
    Vacant { next_free: usize },
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
            free: NIL,
            head: NIL,
            tail: NIL,
            linked: 0,
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
        let key = if self.free == NIL {
            self.slots.push(Slot::Occupied(node));
            self.slots.len() - 1
        } else {
            let key = self.free;
            match std::mem::replace(&mut self.slots[key], Slot::Occupied(node)) {
                Slot::Vacant { next_free } => self.free = next_free,
                Slot::Occupied(_) => unreachable!("free chain points at an occupied slot"),
            }
            key
        };
        if self.tail == NIL {
            self.head = key;
        } else {
            self.node_mut(self.tail).next = key;
        }
        self.tail = key;
        self.linked += 1;
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

    /// Takes the slot out of the line; it stays allocated for its owner.
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
        match std::mem::replace(
            &mut self.slots[key],
            Slot::Vacant {
                next_free: self.free,
            },
        ) {
            Slot::Occupied(node) => {
                self.free = key;
                node.value
            }
            Slot::Vacant { .. } => unreachable!("removed a vacant waiter slot"),
        }
    }

    #[cfg(test)]
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
            Slot::Vacant { .. } => unreachable!("stale waiter key"),
        }
    }

    #[inline]
    fn node_mut(&mut self, key: usize) -> &mut Node<E> {
        match &mut self.slots[key] {
            Slot::Occupied(node) => node,
            Slot::Vacant { .. } => unreachable!("stale waiter key"),
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
