//! A node's disk: how much it uses next to its live data, how much is free, and how a
//! full disk or damaged data is told apart from other storage failures.
//!
//! *Live data* is what the node must keep: the items (key and value bytes, as apply
//! counts them per table) plus the Raft log entries still held after the last
//! snapshot. *Used* is what its data directory takes on disk: fjall's journals and
//! segment files, and the snapshot files. The node's own `node.log` is shown apart.
//!
//! A storage error that says "No space left on device" (ENOSPC) or "Disk quota
//! exceeded" (EDQUOT) is a full disk: the node logs `storage_full` and exits with
//! [`EXIT_DISK_FULL`], which the supervisor reads as "wait for free space" rather than
//! "crash, restart at once". Data found damaged at start exits with [`EXIT_CORRUPT`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Exit status of a node that stopped because its disk is full (ENOSPC's errno).
pub const EXIT_DISK_FULL: u8 = 28;
/// Exit status of a node that refused to start on damaged data (sysexits' EX_DATAERR).
pub const EXIT_CORRUPT: u8 = 65;

/// Replaces the file at `path` with `bytes` so that a crash leaves the old or the new
/// content, never a mix: written to `<path>.tmp`, fsynced, renamed over `path`, and the
/// directory fsynced so the rename is durable.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// The remedy for damaged data of node `id`.
pub fn rejoin_remedy(id: u64) -> String {
    format!(
        "to recover, run 'raft-nosql node --id {id} --rejoin': it wipes this node's data and \
         catches up from the leader (the other nodes hold every acknowledged write)"
    )
}

/// Size of the reserve file kept in every node directory.
pub const RESERVE_BYTES: usize = 1 << 20;

/// Keeps `<dir>/reserve`, [`RESERVE_BYTES`] of zeros, so that a node whose disk fills
/// up can free that much and still write its last log lines (the `storage_full` event)
/// and its final persist. Best effort: on a disk already full it is left out.
pub fn keep_reserve(dir: &Path) {
    let path = dir.join("reserve");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
        return;
    }
    if std::fs::write(&path, vec![0u8; RESERVE_BYTES]).is_err() {
        let _ = std::fs::remove_file(&path);
    }
}

/// Frees the reserve file (the disk is full).
pub fn release_reserve(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("reserve"));
}

/// What a node's data directory holds, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Everything the node stores: journals + segment files + snapshot files.
    pub used_bytes: u64,
    /// Items plus the log kept after the last snapshot.
    pub live_bytes: u64,
    pub items_bytes: u64,
    pub log_bytes: u64,
    /// fjall's journals (write-ahead logs).
    pub journal_bytes: u64,
    /// fjall's segment files (all keyspaces).
    pub segment_bytes: u64,
    /// Snapshot files (the current one; an old one until its last reader closes it).
    pub snapshot_bytes: u64,
    /// `node.log` and other files of the node directory (not counted in `used_bytes`).
    pub other_bytes: u64,
    /// Free and total bytes of the file system holding the data directory.
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// Measures the node directory `dir` (layout of [`super::Store::open`]).
pub fn usage(dir: &Path, items_bytes: u64, log_bytes: u64) -> DiskUsage {
    let mut u = DiskUsage {
        items_bytes,
        log_bytes,
        live_bytes: items_bytes + log_bytes,
        ..Default::default()
    };
    let db = dir.join("db");
    u.segment_bytes = dir_bytes(&db.join("keyspaces"));
    u.journal_bytes = dir_bytes(&db).saturating_sub(u.segment_bytes);
    u.snapshot_bytes = dir_bytes(&dir.join("snapshots"));
    u.used_bytes = u.journal_bytes + u.segment_bytes + u.snapshot_bytes;
    u.other_bytes = dir_bytes(dir).saturating_sub(u.used_bytes);
    if let Some((free, total)) = free_space(dir) {
        u.free_bytes = free;
        u.total_bytes = total;
    }
    u
}

/// Bytes the regular files under `dir` take on disk: allocated blocks, not apparent
/// length (fjall's journal is a 64 MiB file that fills as it is written), 0 if `dir`
/// does not exist.
pub fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.blocks() * 512),
            _ => 0,
        })
        .sum()
}

/// Free (for unprivileged users) and total bytes of the file system holding `path`.
pub fn free_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    Some((s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize))
}

/// Whether an error's text says the disk is full (the kernel's ENOSPC / EDQUOT texts,
/// however many layers of wrapping they went through).
pub fn is_disk_full(message: &str) -> bool {
    message.contains("No space left on device")
        || message.contains("os error 28")
        || message.contains("Disk quota exceeded")
        || message.contains("os error 122")
}

/// `123.4 MB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// The first segment file under `db_dir` (fjall's data directory) that fails lsm-tree's
/// checks when read whole, with the error: fjall's own errors (a checksum mismatch, a
/// short read) name no file, so a node that refuses to start reads every segment to
/// name the damaged one. `None` when every segment reads back (the damage is elsewhere:
/// a journal, or items that fail the digest).
pub fn damaged_segment(db_dir: &Path) -> Option<(PathBuf, String)> {
    let cache = std::sync::Arc::new(lsm_tree::Cache::with_capacity_bytes(1 << 20));
    let mut files: Vec<PathBuf> = std::fs::read_dir(db_dir.join("keyspaces"))
        .ok()?
        .flatten()
        .filter_map(|ks| std::fs::read_dir(ks.path().join("tables")).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().find_map(|path| {
        let read = || -> lsm_tree::Result<()> {
            let checksum = lsm_tree::Checksum::from_raw(0); // not checked on recovery
            let table = lsm_tree::Table::recover(
                path.clone(),
                checksum,
                0,
                0,
                cache.clone(),
                None,
                false,
                false,
            )?;
            for item in table.iter() {
                item?;
            }
            Ok(())
        };
        read().err().map(|e| (path.clone(), format!("{e:?}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_is_recognised_through_wrapping() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_disk_full(&format!("raft stopped: storage error: {e}")));
        assert!(!is_disk_full("connection refused"));
    }

    #[test]
    fn usage_splits_journals_segments_and_snapshots() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("db/keyspaces/1")).unwrap();
        std::fs::create_dir_all(d.path().join("snapshots")).unwrap();
        std::fs::write(d.path().join("db/0.jnl"), vec![0; 100]).unwrap();
        std::fs::write(d.path().join("db/keyspaces/1/seg"), vec![0; 1000]).unwrap();
        std::fs::write(d.path().join("snapshots/snap-1.bin"), vec![0; 10]).unwrap();
        std::fs::write(d.path().join("node.log"), vec![0; 5]).unwrap();
        let u = usage(d.path(), 7, 3);
        // Allocated blocks: each small file takes at least one block.
        let block = dir_bytes(&d.path().join("snapshots"));
        assert!(block >= 10);
        assert_eq!(
            (u.journal_bytes, u.segment_bytes, u.snapshot_bytes, u.other_bytes),
            (block, block, block, block)
        );
        assert_eq!((u.used_bytes, u.live_bytes), (3 * block, 10));
        assert!(u.total_bytes > 0);
    }
}
