//! Batch normalisation shared by every table backend.
//!
//! The insert and erase kernels assume each fingerprint appears at most once per
//! launch: two lanes upserting one fingerprint at once could both find no copy and
//! both place one. So every backend, the CPU reference included, runs the same
//! host-side pass first, and the GPU and the reference see the same batches.

use std::collections::HashMap;

use crate::error::{KernelError, KernelResult};
use crate::layout::{EMPTY_FP, NO_PAYLOAD};

/// What one insert did, per item (the kernels write the same codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum InsertStatus {
    /// A new entry; nothing left the table.
    Inserted = 0,
    /// The fingerprint was present; its old payload was replaced and released.
    Updated = 1,
    /// A new key; the relocation chain ended by evicting an entry, whose payload
    /// is released. On a full table the chain can cycle back through the new
    /// key's own bucket, so the evicted entry may be the new one itself (its own
    /// payload comes back).
    Evicted = 2,
    /// A new entry; a relocated entry met a newer copy of itself (upserted by the
    /// same batch) and its old payload was released.
    Stale = 3,
    /// The item was dropped before the launch: a later item of the batch has the
    /// same fingerprint. Its own payload is released.
    Superseded = 4,
}

impl InsertStatus {
    /// Decodes a kernel's status word.
    pub fn from_code(code: u32) -> KernelResult<Self> {
        Ok(match code {
            0 => Self::Inserted,
            1 => Self::Updated,
            2 => Self::Evicted,
            3 => Self::Stale,
            4 => Self::Superseded,
            other => return Err(KernelError::Invalid(format!("unknown insert status {other}"))),
        })
    }
}

/// The result of one insert batch, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertReport {
    /// Per input item: what happened.
    pub status: Vec<InsertStatus>,
    /// Per input item: the payload that left the table because of it, or
    /// [`NO_PAYLOAD`]. The caller owns these again (e.g. frees their slab slots).
    pub released: Vec<u64>,
}

impl InsertReport {
    /// Net change in the number of entries.
    pub fn entries_delta(&self) -> i64 {
        self.status
            .iter()
            .map(|s| match s {
                InsertStatus::Inserted => 1,
                InsertStatus::Updated | InsertStatus::Evicted | InsertStatus::Superseded => 0,
                // The stale copy's key was counted again by the item that upserted it.
                InsertStatus::Stale => 0,
            })
            .sum()
    }

    /// Entries evicted to make room.
    pub fn evictions(&self) -> usize {
        self.status.iter().filter(|s| **s == InsertStatus::Evicted).count()
    }
}

/// Rejects the two reserved values.
pub fn validate(fps: &[u64], payloads: Option<&[u64]>) -> KernelResult<()> {
    if let Some(i) = fps.iter().position(|&fp| fp == EMPTY_FP) {
        return Err(KernelError::Invalid(format!("fingerprint {EMPTY_FP} (item {i}) is reserved for empty slots")));
    }
    if let Some(payloads) = payloads {
        if payloads.len() != fps.len() {
            return Err(KernelError::Invalid(format!("{} fingerprints but {} payloads", fps.len(), payloads.len())));
        }
        if let Some(i) = payloads.iter().position(|&p| p == NO_PAYLOAD) {
            return Err(KernelError::Invalid(format!("payload u64::MAX (item {i}) is reserved")));
        }
    }
    Ok(())
}

/// Indices to launch (the last occurrence of each fingerprint, in input order) and
/// a mask of the superseded ones.
pub fn dedupe_last(fps: &[u64]) -> (Vec<usize>, Vec<bool>) {
    let mut last: HashMap<u64, usize> = HashMap::with_capacity(fps.len());
    for (i, &fp) in fps.iter().enumerate() {
        last.insert(fp, i);
    }
    if last.len() == fps.len() {
        return ((0..fps.len()).collect(), vec![false; fps.len()]);
    }
    let mut superseded = vec![true; fps.len()];
    for &i in last.values() {
        superseded[i] = false;
    }
    ((0..fps.len()).filter(|&i| !superseded[i]).collect(), superseded)
}

/// Indices to launch for an erase: the first occurrence of each fingerprint (a
/// second erase of the same key in one batch finds nothing, as it would in order).
pub fn dedupe_first(fps: &[u64]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::with_capacity(fps.len());
    (0..fps.len()).filter(|&i| seen.insert(fps[i])).collect()
}

/// Spreads per-launched-item results back to input order; superseded items get
/// their own payload back.
pub(crate) fn assemble_insert(
    n: usize,
    launched: &[usize],
    superseded: &[bool],
    payloads: &[u64],
    status: &[u32],
    released: &[u64],
) -> KernelResult<InsertReport> {
    let mut report = InsertReport { status: vec![InsertStatus::Superseded; n], released: vec![NO_PAYLOAD; n] };
    for (i, sup) in superseded.iter().enumerate() {
        if *sup {
            report.released[i] = payloads[i];
        }
    }
    for (j, &i) in launched.iter().enumerate() {
        report.status[i] = InsertStatus::from_code(status[j])?;
        report.released[i] = released[j];
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_the_last_occurrence() {
        let (keep, sup) = dedupe_last(&[5, 6, 5, 7, 6]);
        assert_eq!(keep, vec![2, 3, 4]);
        assert_eq!(sup, vec![true, true, false, false, false]);
        assert_eq!(dedupe_first(&[5, 6, 5, 7, 6]), vec![0, 1, 3]);
    }

    #[test]
    fn reserved_values_are_rejected() {
        assert!(validate(&[1, 0], None).is_err());
        assert!(validate(&[1, 2], Some(&[3, u64::MAX])).is_err());
        assert!(validate(&[1, 2], Some(&[3])).is_err());
        assert!(validate(&[1, 2], Some(&[3, 4])).is_ok());
    }
}
