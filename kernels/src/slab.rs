//! Where values live: an arena of device memory cut into pages, each page serving
//! one size class (memcached's slab design), managed from the host.
//!
//! The hash table's payload is a *handle*: the byte offset of a record in the
//! arena. A record is a 16-byte header (`key_len`, `value_len`, `flags`, reserved;
//! little-endian u32s) followed by the key and the value, in the smallest class
//! that holds it. Allocation happens on the host, before a batch is launched, so
//! the kernels never allocate: the host knows every handle's owner fingerprint and
//! frees the handles the insert kernel reports as released.
//!
//! Records above [`MAX_RECORD`] are refused: the GPU tier leaves such entries to
//! the CPU tier. When a class has no free slot and no page is left, the class
//! evicts its own entries round-robin (oldest page and slot first, approximately
//! FIFO); pages never move between classes once assigned (memcached's
//! "calcification", acceptable while value sizes are stable; see docs/gpu-table.md).

use std::collections::HashSet;

use crate::error::{KernelError, KernelResult};
use crate::layout::EMPTY_FP;

/// Bytes of record header before the key.
pub const RECORD_HEADER: usize = 16;
/// Smallest size class.
pub const MIN_CLASS: usize = 64;
/// Number of size classes: 64 B, 128 B, …, 64 KiB.
pub const CLASSES: usize = 11;
/// Largest record (header + key + value) the GPU tier stores.
pub const MAX_RECORD: usize = MIN_CLASS << (CLASSES - 1);
/// Default page size: 16 records of the largest class.
pub const DEFAULT_PAGE_BYTES: u64 = 1 << 20;

/// Header + key + value bytes.
pub fn record_size(key_len: usize, value_len: usize) -> usize {
    RECORD_HEADER + key_len + value_len
}

/// The class index holding a record of `size` bytes, or `None` above [`MAX_RECORD`].
pub fn class_of(size: usize) -> Option<usize> {
    (0..CLASSES).find(|&c| MIN_CLASS << c >= size)
}

/// Bytes per slot of class `class`.
pub fn class_size(class: usize) -> u64 {
    (MIN_CLASS as u64) << class
}

/// Appends one record, padded to 16 bytes (the scatter kernel copies 16-byte words).
pub fn encode_record(key: &[u8], value: &[u8], flags: u32, out: &mut Vec<u8>) -> KernelResult<()> {
    let klen = u32::try_from(key.len()).map_err(|_| KernelError::Invalid("key longer than 4 GiB".into()))?;
    let vlen = u32::try_from(value.len()).map_err(|_| KernelError::Invalid("value longer than 4 GiB".into()))?;
    out.extend_from_slice(&klen.to_le_bytes());
    out.extend_from_slice(&vlen.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(16), 0);
    Ok(())
}

/// A record's header fields, decoded from its first 16 bytes.
pub fn decode_header(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    let word = |i: usize| bytes.get(i * 4..i * 4 + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    Some((word(0)?, word(1)?, word(2)?))
}

#[derive(Debug, Default, Clone)]
struct Class {
    /// Freed handles, reused first.
    free: Vec<u64>,
    /// Pages assigned to this class, in assignment order.
    pages: Vec<u64>,
    /// Next never-used slot in the last page.
    bump: u64,
    /// Round-robin eviction position: (index into `pages`, slot).
    hand: (usize, u64),
    /// Slots handed out and not freed.
    used: u64,
}

/// How a slot was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// A free slot.
    Fresh(u64),
    /// A slot taken from the entry with fingerprint `victim_fp`, which the caller
    /// must erase from the index (by handle) before the new record lands.
    Evicted {
        /// The slot.
        handle: u64,
        /// Its previous owner.
        victim_fp: u64,
    },
}

impl Allocation {
    /// The slot's handle.
    pub fn handle(self) -> u64 {
        match self {
            Self::Fresh(h) | Self::Evicted { handle: h, .. } => h,
        }
    }
}

/// Host-side bookkeeping of the arena's pages and slots.
#[derive(Debug, Clone)]
pub struct SlabAllocator {
    page_bytes: u64,
    pages: u64,
    next_page: u64,
    classes: Vec<Class>,
    /// Per page: the owner fingerprint of each slot ([`EMPTY_FP`] when free).
    owners: Vec<Vec<u64>>,
}

impl SlabAllocator {
    /// An allocator over `arena_bytes` (rounded down to whole pages).
    pub fn new(arena_bytes: u64, page_bytes: u64) -> KernelResult<Self> {
        if page_bytes < MAX_RECORD as u64 || !page_bytes.is_multiple_of(MAX_RECORD as u64) {
            return Err(KernelError::Config(format!("page size {page_bytes} must be a multiple of {MAX_RECORD}")));
        }
        let pages = arena_bytes / page_bytes;
        if pages == 0 {
            return Err(KernelError::Config(format!(
                "arena of {arena_bytes} B is smaller than one {page_bytes} B page"
            )));
        }
        Ok(Self { page_bytes, pages, next_page: 0, classes: vec![Class::default(); CLASSES], owners: Vec::new() })
    }

    /// Arena bytes managed (whole pages).
    pub fn arena_bytes(&self) -> u64 {
        self.pages * self.page_bytes
    }

    /// Bytes in slots handed out and not freed.
    pub fn used_bytes(&self) -> u64 {
        self.classes.iter().enumerate().map(|(c, k)| k.used * class_size(c)).sum()
    }

    fn slots_per_page(&self, class: usize) -> u64 {
        self.page_bytes / class_size(class)
    }

    fn locate(&self, handle: u64) -> (usize, usize) {
        let page = (handle / self.page_bytes) as usize;
        let class = self.page_class(page);
        (page, ((handle % self.page_bytes) / class_size(class)) as usize)
    }

    fn page_class(&self, page: usize) -> usize {
        let per_slot = self.page_bytes / self.owners[page].len() as u64;
        per_slot.trailing_zeros() as usize - MIN_CLASS.trailing_zeros() as usize
    }

    /// The owner fingerprint of an allocated handle.
    pub fn owner(&self, handle: u64) -> u64 {
        let (page, slot) = self.locate(handle);
        self.owners[page][slot]
    }

    /// A slot of `class` for the entry `fp`. `reserved` holds the handles already
    /// given to this batch, which eviction must not take back. `None`: the class is
    /// out of slots this batch can use.
    pub fn alloc(&mut self, class: usize, fp: u64, reserved: &HashSet<u64>) -> Option<Allocation> {
        let per_page = self.slots_per_page(class);
        let size = class_size(class);
        let allocation = if let Some(h) = self.classes[class].free.pop() {
            Allocation::Fresh(h)
        } else if self.classes[class].pages.last().is_some() && self.classes[class].bump < per_page {
            let k = &mut self.classes[class];
            let h = k.pages[k.pages.len() - 1] * self.page_bytes + k.bump * size;
            k.bump += 1;
            Allocation::Fresh(h)
        } else if self.next_page < self.pages {
            let page = self.next_page;
            self.next_page += 1;
            self.owners.push(vec![EMPTY_FP; per_page as usize]);
            let k = &mut self.classes[class];
            k.pages.push(page);
            k.bump = 1;
            Allocation::Fresh(page * self.page_bytes)
        } else {
            let victim = self.next_victim(class, reserved)?;
            Allocation::Evicted { handle: victim, victim_fp: self.owner(victim) }
        };
        let (page, slot) = self.locate(allocation.handle());
        if let Allocation::Fresh(_) = allocation {
            self.classes[class].used += 1;
        }
        self.owners[page][slot] = fp;
        Some(allocation)
    }

    fn next_victim(&mut self, class: usize, reserved: &HashSet<u64>) -> Option<u64> {
        let per_page = self.slots_per_page(class);
        let k = &self.classes[class];
        let total = k.pages.len() as u64 * per_page;
        let (mut pi, mut slot) = k.hand;
        for _ in 0..total {
            let page = k.pages[pi];
            let h = page * self.page_bytes + slot * class_size(class);
            let owned = self.owners[page as usize][slot as usize] != EMPTY_FP;
            slot += 1;
            if slot == per_page {
                slot = 0;
                pi = (pi + 1) % k.pages.len();
            }
            if owned && !reserved.contains(&h) {
                self.classes[class].hand = (pi, slot);
                return Some(h);
            }
        }
        None
    }

    /// Returns a slot released by the index.
    pub fn free(&mut self, handle: u64) {
        let (page, slot) = self.locate(handle);
        if self.owners[page][slot] == EMPTY_FP {
            return;
        }
        self.owners[page][slot] = EMPTY_FP;
        let class = self.page_class(page);
        self.classes[class].free.push(handle);
        self.classes[class].used -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_up_to_the_limit() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(64), Some(0));
        assert_eq!(class_of(65), Some(1));
        assert_eq!(class_of(MAX_RECORD), Some(CLASSES - 1));
        assert_eq!(class_of(MAX_RECORD + 1), None);
    }

    #[test]
    fn records_round_trip_and_are_padded() {
        let mut buf = Vec::new();
        encode_record(b"key", b"value!", 3, &mut buf).unwrap();
        assert_eq!(buf.len(), 32);
        assert_eq!(decode_header(&buf), Some((3, 6, 3)));
        assert_eq!(&buf[16..19], b"key");
        assert_eq!(&buf[19..25], b"value!");
    }

    #[test]
    fn a_full_class_evicts_its_oldest_slots_but_not_this_batchs() {
        let page = MAX_RECORD as u64;
        let mut slabs = SlabAllocator::new(page, page).unwrap();
        let class = CLASSES - 1; // one slot per page: the arena holds one record
        let none = HashSet::new();
        let a = slabs.alloc(class, 11, &none).unwrap();
        assert_eq!(a, Allocation::Fresh(0));
        let b = slabs.alloc(class, 22, &none).unwrap();
        assert_eq!(b, Allocation::Evicted { handle: 0, victim_fp: 11 });
        assert_eq!(slabs.owner(0), 22);
        let reserved: HashSet<u64> = [0].into();
        assert_eq!(slabs.alloc(class, 33, &reserved), None);
        // Another class has no page left at all.
        assert_eq!(slabs.alloc(0, 44, &none), None);
        slabs.free(0);
        assert_eq!(slabs.used_bytes(), 0);
        assert_eq!(slabs.alloc(class, 55, &none), Some(Allocation::Fresh(0)));
    }

    #[test]
    fn small_classes_pack_a_page() {
        let mut slabs = SlabAllocator::new(DEFAULT_PAGE_BYTES * 2, DEFAULT_PAGE_BYTES).unwrap();
        let none = HashSet::new();
        let per_page = DEFAULT_PAGE_BYTES / 64;
        let handles: Vec<u64> = (0..per_page + 1).map(|i| slabs.alloc(0, i + 1, &none).unwrap().handle()).collect();
        assert_eq!(handles[1], 64);
        assert_eq!(handles[per_page as usize], DEFAULT_PAGE_BYTES, "the second page starts a new run");
        assert_eq!(slabs.used_bytes(), (per_page + 1) * 64);
    }
}
