//! A strict check of fjall's journals (its write-ahead logs), run before the database
//! is opened.
//!
//! fjall reads a journal batch by batch and, at the first entry it cannot decode (an
//! unknown tag, a bad end marker, the end of the file), cuts the journal there and
//! opens without an error. That is right for a batch torn by a crash, which was never
//! acknowledged, but a flipped byte in the middle of a journal is handled the same way:
//! every batch after it is dropped, acknowledged Raft log entries and votes included,
//! and the file is truncated so the evidence is gone. (A checksum mismatch is an error.)
//!
//! This check reads every journal the way fjall writes it and tells the two apart:
//! - a batch that fails to read, with no complete batch (an end marker) anywhere after
//!   it, is a torn tail: fjall may drop it;
//! - a batch that fails with an end marker after it is damage: data written after it
//!   would be lost, so the node refuses to start and names the journal and the offset;
//! - a journal that is not the newest one was synced whole when fjall moved on to the
//!   next (it rotates only after `fsync`), so one that ends inside a batch was cut.
//!
//! One crash is refused too: a power loss can leave an unsynced last batch whose end
//! marker reached the disk but an earlier page of it did not. Its checksum fails with
//! an end marker present, which fjall itself refuses (a checksum mismatch is its one
//! journal error); the remedy (`--rejoin`) then costs a catch-up, never data.
//!
//! The format (fjall 3.1, `journal/entry.rs`), little-endian, no file header; the file
//! is preallocated with zeros, so content ends where a zero tag stands:
//!
//! | entry | bytes |
//! |-------|-------|
//! | start | `1`, item count u32, seqno u64 |
//! | item  | `2`, value type u8, compression u8, keyspace u64, key len u16, value len u32, stored len u32, key, stored value |
//! | clear | `4`, keyspace u64 |
//! | end   | `3`, xxh3-64 of the batch's item/clear bytes u64, `FJL\x03` |
//!
//! A unit test below writes journals through fjall itself and reads them back with
//! this check, so a change of the format shows up as a failing test, not as a node
//! that refuses good data.

use std::path::{Path, PathBuf};

/// The trailer of every end marker.
const MAGIC: &[u8; 4] = b"FJL\x03";
const START: u8 = 1;
const ITEM: u8 = 2;
const END: u8 = 3;
const CLEAR: u8 = 4;

/// A journal that cannot be read without losing data written after the damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalDamage {
    pub path: PathBuf,
    /// Where the first batch that fails to read starts.
    pub offset: u64,
    /// What is wrong there.
    pub why: String,
}

impl std::fmt::Display for JournalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is damaged at byte {}: {}", self.path.display(), self.offset, self.why)
    }
}

/// The first of fjall's journals in `db_dir` that is damaged (see the module docs), or
/// `None` when every journal reads back, up to at most a torn tail. A journal that
/// cannot be read at all (permissions, I/O) is reported too: fjall could not open it.
pub fn damaged_journal(db_dir: &Path) -> Option<JournalDamage> {
    let journals = journals(db_dir);
    let newest = journals.len().saturating_sub(1);
    journals.into_iter().enumerate().find_map(|(i, path)| {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                return Some(JournalDamage { path, offset: 0, why: format!("unreadable: {e}") })
            }
        };
        check(&bytes, i == newest).err().map(|(offset, why)| JournalDamage { path, offset, why })
    })
}

/// fjall's journals in `db_dir`, oldest first (the last one is the one written to).
pub fn journals(db_dir: &Path) -> Vec<PathBuf> {
    let mut journals: Vec<(u64, PathBuf)> = std::fs::read_dir(db_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let id = name.to_str()?.strip_suffix(".jnl")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    journals.sort();
    journals.into_iter().map(|(_, p)| p).collect()
}

/// Checks one journal's bytes; `newest`: the active journal, which may end in a torn
/// batch. The error is the offset of the failing batch and what is wrong.
fn check(bytes: &[u8], newest: bool) -> Result<(), (u64, String)> {
    let mut pos = 0;
    while pos < bytes.len() {
        match read_batch(bytes, pos) {
            Ok(next) => pos = next,
            Err(Failure::Zeros) if bytes[pos..].iter().all(|&b| b == 0) => return Ok(()),
            Err(f) => {
                let why = f.to_string();
                if let Some(end) = end_marker_at_or_after(bytes, pos) {
                    return Err((
                        pos as u64,
                        format!("{why}, and a complete batch ends after it (at byte {end})"),
                    ));
                }
                if !newest && matches!(f, Failure::Short) {
                    return Err((pos as u64, format!("{why} in a journal synced whole")));
                }
                // A torn tail: never acknowledged, fjall drops it.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Where the batches that read whole end: the length fjall keeps when it opens `bytes`.
pub fn content_len(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while let Ok(next) = read_batch(bytes, pos) {
        pos = next;
    }
    pos
}

/// Why a batch did not read.
#[derive(Debug)]
enum Failure {
    /// A zero tag where a batch should start: the preallocated end of the content.
    Zeros,
    /// The file ends inside the batch.
    Short,
    /// Anything else, said in words.
    Bad(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Zeros => write!(f, "zeros where a batch should start"),
            Failure::Short => write!(f, "the file ends inside a batch"),
            Failure::Bad(why) => write!(f, "{why}"),
        }
    }
}

/// Reads `n` bytes at `*pos`, moving past them.
fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], Failure> {
    let end = pos.checked_add(n).filter(|&e| e <= bytes.len()).ok_or(Failure::Short)?;
    let out = &bytes[*pos..end];
    *pos = end;
    Ok(out)
}

fn u16_at(bytes: &[u8], pos: &mut usize) -> Result<u16, Failure> {
    Ok(u16::from_le_bytes(take(bytes, pos, 2)?.try_into().expect("2 bytes")))
}

fn u32_at(bytes: &[u8], pos: &mut usize) -> Result<u32, Failure> {
    Ok(u32::from_le_bytes(take(bytes, pos, 4)?.try_into().expect("4 bytes")))
}

fn u64_at(bytes: &[u8], pos: &mut usize) -> Result<u64, Failure> {
    Ok(u64::from_le_bytes(take(bytes, pos, 8)?.try_into().expect("8 bytes")))
}

/// Reads the batch starting at `start`; the offset after it.
fn read_batch(bytes: &[u8], start: usize) -> Result<usize, Failure> {
    let mut pos = start;
    match take(bytes, &mut pos, 1)?[0] {
        START => {}
        0 => return Err(Failure::Zeros),
        tag => return Err(Failure::Bad(format!("tag {tag} where a batch should start"))),
    }
    let count = u32_at(bytes, &mut pos)?;
    let _seqno = u64_at(bytes, &mut pos)?;
    let body = pos;
    for n in 0..count {
        let entry = pos;
        match take(bytes, &mut pos, 1)?[0] {
            ITEM => {
                take(bytes, &mut pos, 2 + 8)?; // value type, compression, keyspace
                let key_len = u16_at(bytes, &mut pos)? as usize;
                let _value_len = u32_at(bytes, &mut pos)?;
                let stored_len = u32_at(bytes, &mut pos)? as usize;
                take(bytes, &mut pos, key_len)?;
                take(bytes, &mut pos, stored_len)?;
            }
            CLEAR => {
                take(bytes, &mut pos, 8)?;
            }
            tag => {
                return Err(Failure::Bad(format!(
                    "tag {tag} at byte {entry} where entry {} of {count} should be",
                    n + 1
                )))
            }
        }
    }
    let items = &bytes[body..pos];
    let end_at = pos;
    match take(bytes, &mut pos, 1)?[0] {
        END => {}
        tag => {
            return Err(Failure::Bad(format!(
                "tag {tag} at byte {end_at} where the end of a {count}-entry batch should be"
            )))
        }
    }
    let checksum = u64_at(bytes, &mut pos)?;
    if take(bytes, &mut pos, MAGIC.len())? != MAGIC {
        return Err(Failure::Bad(format!("a bad end marker at byte {end_at}")));
    }
    let got = xxhash_rust::xxh3::xxh3_64(items);
    if got != checksum {
        return Err(Failure::Bad(format!(
            "the batch's checksum does not match (stored {checksum:#018x}, computed {got:#018x})"
        )));
    }
    Ok(pos)
}

/// Where the first end marker (tag, checksum, trailer) at or after `from` ends: proof
/// that a complete batch was written after that point.
fn end_marker_at_or_after(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from + 1 + 8; // the earliest trailer: after a tag and a checksum
    while let Some(i) = bytes.get(at..)?.windows(MAGIC.len()).position(|w| w == MAGIC) {
        let trailer = at + i;
        if bytes[trailer - 9] == END {
            return Some(trailer + MAGIC.len());
        }
        at = trailer + 1; // the same bytes inside a value: look further
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `batches` batches through fjall and closes it; the journal's path.
    fn write_journal(dir: &Path, batches: usize) -> PathBuf {
        let db = fjall::Database::builder(dir).open().unwrap();
        let ks = db.keyspace("items", fjall::KeyspaceCreateOptions::default).unwrap();
        for i in 0..batches {
            let mut b = db.batch();
            b.insert(&ks, format!("key{i:05}"), "v".repeat(100 + i % 50));
            b.insert(&ks, format!("other{i:05}"), vec![i as u8; 30]);
            if i % 7 == 0 {
                b.remove(&ks, format!("key{:05}", i / 2));
            }
            b.commit().unwrap();
        }
        db.persist(fjall::PersistMode::SyncAll).unwrap();
        drop(ks);
        drop(db);
        let mut j: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
            .collect();
        j.sort();
        j.pop().expect("a journal")
    }

    /// The offsets where batches start, read with the check's own reader.
    fn batch_starts(bytes: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Ok(next) = read_batch(bytes, pos) {
            out.push(pos);
            pos = next;
        }
        out
    }

    /// A journal of `batches` batches fjall wrote: its directory, path, bytes and the
    /// offsets where its batches start.
    fn fresh(batches: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>, Vec<usize>) {
        let d = tempfile::tempdir().unwrap();
        let path = write_journal(d.path(), batches);
        let bytes = std::fs::read(&path).unwrap();
        let starts = batch_starts(&bytes);
        (d, path, bytes, starts)
    }

    fn keys(dir: &Path) -> usize {
        let db = fjall::Database::builder(dir).open().unwrap();
        let ks = db.keyspace("items", fjall::KeyspaceCreateOptions::default).unwrap();
        ks.iter().count()
    }

    #[test]
    fn journals_fjall_wrote_read_back_whole() {
        let (d, _, _, starts) = fresh(300);
        assert_eq!(starts.len(), 300, "every batch fjall wrote reads back");
        assert_eq!(damaged_journal(d.path()), None);
    }

    #[test]
    fn a_flipped_tag_in_the_middle_is_damage_fjall_would_hide() {
        let (d, path, mut bytes, starts) = fresh(300);
        let at = starts[150];
        bytes[at] = 0x2a; // not a tag: fjall stops reading here without an error
        std::fs::write(&path, &bytes).unwrap();
        let damage = damaged_journal(d.path()).expect("damage found");
        assert_eq!((damage.path.clone(), damage.offset), (path.clone(), at as u64), "{damage}");
        assert!(damage.to_string().contains("complete batch ends after it"), "{damage}");
        // Why the check exists: fjall opens this journal, dropping the batches after.
        let kept = keys(d.path());
        let whole = {
            let d2 = tempfile::tempdir().unwrap();
            write_journal(d2.path(), 300);
            keys(d2.path())
        };
        assert!(kept < whole, "fjall silently kept {kept} of {whole} keys");
    }

    #[test]
    fn a_flipped_value_byte_or_a_cut_sealed_journal_is_damage() {
        let (d, path, mut bytes, starts) = fresh(300);
        let at = starts[100] + 13 + 30; // inside the first item's key or value
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let damage = damaged_journal(d.path()).expect("damage found");
        assert_eq!(damage.offset, starts[100] as u64);
        assert!(damage.why.contains("checksum"), "{damage}");

        // The same content cut short: the newest journal may end in a torn batch, an
        // older one (synced whole before the next was started) may not.
        bytes[at] ^= 0x01;
        let cut = starts[200] + 20;
        bytes.truncate(cut);
        assert_eq!(check(&bytes, true), Ok(()), "a torn tail of the newest journal");
        let (offset, why) = check(&bytes, false).unwrap_err();
        assert_eq!((offset, why.contains("ends inside")), (starts[200] as u64, true), "{why}");
        // Cut at a batch boundary, or with only zeros after the content: whole.
        assert_eq!(check(&bytes[..starts[200]], false), Ok(()));
    }

    #[test]
    fn a_torn_tail_or_a_flip_in_the_preallocated_zeros_is_not_damage() {
        let (_d, _, mut bytes, starts) = fresh(50);
        let content = read_batch(&bytes, *starts.last().unwrap()).unwrap();
        assert!(bytes.len() > content, "fjall preallocates the journal");
        // A batch torn by a crash: its start and part of its items, then zeros.
        let mut torn = bytes.clone();
        torn.copy_within(starts[10]..starts[10] + 40, content);
        assert_eq!(check(&torn, true), Ok(()));
        // A flip far out in the zeros.
        let mut flipped = bytes.clone();
        let far = content + (bytes.len() - content) / 2;
        flipped[far] ^= 0x5a;
        assert_eq!(check(&flipped, true), Ok(()));
        // A flip in the middle of the content is damage.
        bytes[content / 2] ^= 0x5a;
        assert!(check(&bytes, true).is_err());
    }
}
