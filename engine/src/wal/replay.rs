//! Reading the WAL back at start-up.
//!
//! Segments are read in sequence order. A record cut short at the very end of the
//! last segment is a torn write from a crash: it was never acknowledged (the ack
//! waits for the write to finish), so the tail is truncated with a log line and
//! start-up continues. Anything else that fails to decode (a bad checksum in the
//! middle, a bad record in an older segment, a foreign file) refuses start-up with
//! the file and offset, because acknowledged writes may be behind it.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::record::{self, DecodeError, Entry, FILE_HEADER_LEN, MAGIC, VERSION};
use crate::error::{EngineError, EngineResult};

/// A segment file found on disk.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    /// Sequence number in the file name: no record in it is older.
    pub first_seq: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// Last sequence number found in it (`first_seq - 1` when empty).
    pub last_seq: u64,
    /// File length after any truncation.
    pub bytes: u64,
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Segments, oldest first.
    pub segments: Vec<SegmentFile>,
    /// Highest sequence number seen (0 if the log was empty).
    pub last_seq: u64,
    /// Records replayed.
    pub records: u64,
    /// Bytes cut from a torn tail.
    pub truncated_bytes: u64,
}

/// `00000000000000000042.wal` for first sequence number 42.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Lists segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> EngineResult<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries =
        fs::read_dir(dir).map_err(|e| startup(format!("cannot read WAL directory {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| startup(format!("cannot read WAL directory {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name.strip_suffix(".wal").and_then(|s| s.parse::<u64>().ok()) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Replays every record in `dir` through `apply(seq, entry)`.
pub fn replay(dir: &Path, mut apply: impl FnMut(u64, Entry)) -> EngineResult<Replayed> {
    let files = list_segments(dir)?;
    let mut out = Replayed::default();
    let count = files.len();
    for (index, (first_seq, path)) in files.into_iter().enumerate() {
        let is_last = index + 1 == count;
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| startup(format!("cannot read WAL segment {}: {e}", path.display())))?;
        if data.len() < FILE_HEADER_LEN {
            if is_last {
                // Crashed while creating the segment: nothing in it was acknowledged.
                tracing::warn!(file = %path.display(), "WAL segment header is torn; removing the empty segment");
                out.last_seq = out.last_seq.max(first_seq.saturating_sub(1));
                fs::remove_file(&path).map_err(|e| startup(format!("cannot remove {}: {e}", path.display())))?;
                continue;
            }
            return Err(corrupt(&path, 0, "segment shorter than its header"));
        }
        if &data[..8] != MAGIC || data[8..12] != VERSION.to_le_bytes() {
            return Err(corrupt(&path, 0, "not an Augur WAL segment (bad magic or version)"));
        }
        let mut offset = FILE_HEADER_LEN;
        let mut last_seq = first_seq.saturating_sub(1);
        while offset < data.len() {
            match record::decode(&data[offset..]) {
                Ok((rec, len)) => {
                    if rec.first_seq <= out.last_seq && out.records > 0 {
                        return Err(corrupt(&path, offset, "sequence numbers go backwards"));
                    }
                    let n = rec.entries.len() as u64;
                    for (i, entry) in rec.entries.into_iter().enumerate() {
                        apply(rec.first_seq + i as u64, entry);
                    }
                    if n > 0 {
                        last_seq = rec.first_seq + n - 1;
                        out.last_seq = last_seq;
                    }
                    out.records += 1;
                    offset += len;
                }
                Err(DecodeError::Truncated) if is_last => {
                    // A torn write is the end of the log. An intact record after this
                    // point means the "short" record is really a damaged length field
                    // in the middle, and truncating would drop acknowledged writes.
                    if let Some(next) = intact_record_after(&data, offset) {
                        return Err(corrupt(
                            &path,
                            offset,
                            &format!("record length is damaged (an intact record follows at offset {next})"),
                        ));
                    }
                    let cut = (data.len() - offset) as u64;
                    tracing::warn!(
                        file = %path.display(), offset, bytes = cut,
                        "WAL ends in a torn record (crash during a write that was never acknowledged); truncating it"
                    );
                    truncate(&path, offset as u64)?;
                    out.truncated_bytes = cut;
                    data.truncate(offset);
                    break;
                }
                Err(DecodeError::Truncated) => {
                    return Err(corrupt(&path, offset, "record cut short in an older segment"))
                }
                Err(DecodeError::Corrupt(why)) => return Err(corrupt(&path, offset, &why)),
            }
        }
        // Sequence numbers never go back, even when the newest segment is empty: a
        // segment named N was created after every number below N was handed out.
        out.last_seq = out.last_seq.max(first_seq.saturating_sub(1));
        if last_seq < first_seq {
            // Holds no record (created, then the process died before any write): it
            // protects nothing, and keeping it would block the deletion of the
            // segments after it.
            std::fs::remove_file(&path)
                .map_err(|e| startup(format!("cannot remove empty WAL segment {}: {e}", path.display())))?;
            continue;
        }
        out.segments.push(SegmentFile { first_seq, path, last_seq, bytes: data.len() as u64 });
    }
    Ok(out)
}

/// The offset of the first record after `offset` whose checksum verifies, if any.
/// Most positions fail on the length alone (it must fit in what is left), so the
/// scan is about linear in the tail's size.
fn intact_record_after(data: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..data.len()).find(|&p| record::decode(&data[p..]).is_ok())
}

fn truncate(path: &Path, len: u64) -> EngineResult<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| startup(format!("cannot open {} to truncate its torn tail: {e}", path.display())))?;
    file.set_len(len)
        .and_then(|_| file.sync_all())
        .map_err(|e| startup(format!("cannot truncate torn tail of {}: {e}", path.display())))
}

fn corrupt(path: &Path, offset: usize, why: &str) -> EngineError {
    startup(format!(
        "WAL segment {} is corrupt at byte offset {offset}: {why}. Refusing to start: acknowledged \
         writes may follow this point. Restore the file from a backup, or move it out of the WAL \
         directory to start without the writes it holds.",
        path.display()
    ))
}

fn startup(message: String) -> EngineError {
    EngineError::Startup(message)
}
