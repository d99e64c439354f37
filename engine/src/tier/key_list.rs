//! An O(1) doubly linked list of keys in a slab (indices, not pointers) with a map
//! from key to slot and one flag bit per node: the mechanism under LRU (order,
//! move to head on access), FIFO (order alone), CLOCK and SIEVE (the flag as their
//! reference/visited bit).
//!
//! The map's hasher is a type parameter: the server keeps `std`'s randomly seeded
//! SipHash (clients choose keys, so the hash must resist flooding), the simulator
//! passes `FxBuildHasher` for its integer ids.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

pub(super) const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node<K> {
    key: Option<K>,
    prev: usize,
    next: usize,
    flag: bool,
}

/// Keys in insertion order (head = newest, tail = oldest) with a flag each.
#[derive(Debug)]
pub(super) struct KeyList<K, S = RandomState> {
    slots: HashMap<K, usize, S>,
    nodes: Vec<Node<K>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> KeyList<K, S> {
    pub(super) fn new() -> Self {
        Self { slots: HashMap::with_hasher(S::default()), nodes: Vec::new(), free: Vec::new(), head: NIL, tail: NIL }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn index(&self, key: &K) -> Option<usize> {
        self.slots.get(key).copied()
    }

    pub(super) fn tail(&self) -> usize {
        self.tail
    }

    /// The neighbour towards the head (newer), or `NIL`.
    pub(super) fn newer(&self, i: usize) -> usize {
        self.nodes[i].prev
    }

    pub(super) fn flag(&self, i: usize) -> bool {
        self.nodes[i].flag
    }

    pub(super) fn set_flag(&mut self, i: usize, flag: bool) {
        self.nodes[i].flag = flag;
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
    }

    fn link_head(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Adds `key` at the head with `flag`; a key already present is left where it
    /// is (the mechanism contract says `on_insert` comes once per key).
    pub(super) fn push_head(&mut self, key: &K, flag: bool) {
        if self.slots.contains_key(key) {
            return;
        }
        let node = Node { key: Some(key.clone()), prev: NIL, next: NIL, flag };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.slots.insert(key.clone(), i);
        self.link_head(i);
    }

    /// Moves node `i` to the head.
    pub(super) fn move_to_head(&mut self, i: usize) {
        self.unlink(i);
        self.link_head(i);
    }

    /// Removes node `i`, returning its key.
    pub(super) fn remove_at(&mut self, i: usize) -> Option<K> {
        self.unlink(i);
        self.free.push(i);
        let key = self.nodes[i].key.take()?;
        self.slots.remove(&key);
        Some(key)
    }

    /// Removes the oldest key (the tail); `None` when empty.
    pub(super) fn pop_tail(&mut self) -> Option<K> {
        if self.tail == NIL {
            return None;
        }
        self.remove_at(self.tail)
    }

    /// Removes `key` if present; returns its former slot.
    pub(super) fn remove(&mut self, key: &K) -> Option<usize> {
        let i = self.slots.get(key).copied()?;
        self.remove_at(i);
        Some(i)
    }
}
