//! Snapshot bytes: one file per snapshot in `<node dir>/snapshots/`, as etcd and TiKV
//! keep them.
//!
//! Why files and not fjall values: an LSM tree frees the space of a removed value only
//! when compaction reaches it, so every snapshot built stayed on disk until then (a
//! node with 164 MB of items held 629 MB of snapshot chunks). A file is gone, and its
//! space free, as soon as it is unlinked and its last reader closes it.
//!
//! Life of a snapshot file (build or install):
//! 1. written to `snap-<gen>.tmp` (a received one to `recv-<n>.tmp`), CRC-32 computed
//!    along the way;
//! 2. `fsync`ed, renamed to `snap-<gen>.bin`, the directory `fsync`ed;
//! 3. the `current` record in fjall's `snapshot` keyspace (meta, generation, length,
//!    CRC) is written and synced: from here on this is the snapshot served after a log
//!    purge, and it survives a crash;
//! 4. every other `snap-*.bin` is unlinked. A reader that has one open (openraft
//!    sending it to a follower) keeps reading it; its space is freed when it closes.
//!
//! At start, leftover `*.tmp` files and snapshot files `current` does not name are
//! removed (a crash between steps 2 and 4 leaves one), and the current file's length and
//! CRC are checked (see `StateMachine::new`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::raft::SnapshotMeta;

pub const KEY_CURRENT: &[u8] = b"current";

/// What `current` holds: which file is the snapshot and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Current {
    pub meta: SnapshotMeta,
    pub gen: u64,
    pub len: u64,
    /// CRC-32 of the file's bytes. `None` in records of the older chunked format, whose
    /// snapshot lived in fjall; such a record is replaced at start.
    #[serde(default)]
    pub crc: Option<u32>,
}

/// The snapshot directory of one node.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    pub dir: PathBuf,
}

impl SnapshotDir {
    /// Creates `dir` if needed.
    pub fn open(dir: PathBuf) -> std::io::Result<SnapshotDir> {
        std::fs::create_dir_all(&dir)?;
        Ok(SnapshotDir { dir })
    }

    /// `snap-<gen>.bin`: the published file of generation `gen`.
    pub fn path(&self, gen: u64) -> PathBuf {
        self.dir.join(format!("snap-{gen:020}.bin"))
    }

    fn tmp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.tmp"))
    }

    /// The generation of a published file name.
    pub fn gen_of(name: &str) -> Option<u64> {
        name.strip_prefix("snap-")?.strip_suffix(".bin")?.parse().ok()
    }

    /// Generations of the published files on disk.
    pub fn gens(&self) -> std::io::Result<Vec<u64>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            if let Some(g) = e?.file_name().to_str().and_then(SnapshotDir::gen_of) {
                out.push(g);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Starts writing the file of generation `gen` (under a temporary name).
    pub fn writer(&self, gen: u64) -> std::io::Result<FileWriter> {
        let tmp = self.tmp_path(&format!("snap-{gen:020}"));
        let file = File::create(&tmp)?;
        Ok(FileWriter {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            crc: crc32fast::Hasher::new(),
            len: 0,
            flushed: 0,
            tmp,
            dest: self.path(gen),
            dir: self.dir.clone(),
        })
    }

    /// A fresh temporary file for a snapshot being received.
    pub fn receiving(&self, n: u64) -> std::io::Result<Receiving> {
        let path = self.tmp_path(&format!("recv-{n:020}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Receiving { file: tokio::fs::File::from_std(file), path })
    }

    /// A received file holding a copy of `src` from its start (installing a snapshot
    /// that was read, not received: openraft's conformance suite does that).
    pub async fn receive_copy(
        &self,
        n: u64,
        mut src: tokio::fs::File,
    ) -> std::io::Result<Receiving> {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        let mut r = self.receiving(n)?;
        src.seek(std::io::SeekFrom::Start(0)).await?;
        tokio::io::copy(&mut src, &mut r.file).await?;
        r.file.flush().await?;
        Ok(r)
    }

    /// Moves a fully received file into place as generation `gen` (file and directory
    /// synced).
    pub fn publish_received(&self, path: &Path, gen: u64) -> std::io::Result<PathBuf> {
        File::open(path)?.sync_all()?;
        let dest = self.path(gen);
        std::fs::rename(path, &dest)?;
        sync_dir(&self.dir)?;
        Ok(dest)
    }

    /// Removes every published file but generation `keep`, and with `tmp` also every
    /// temporary file (only safe before anything is being written: at start).
    pub fn remove_others(&self, keep: Option<u64>, tmp: bool) -> std::io::Result<()> {
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = match SnapshotDir::gen_of(name) {
                Some(g) => Some(g) != keep,
                None => tmp && name.ends_with(".tmp"),
            };
            if stale {
                std::fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }

    /// Opens the published file of `current` for reading.
    pub fn open_current(&self, current: &Current) -> std::io::Result<SnapshotData> {
        let file = File::open(self.path(current.gen))?;
        Ok(SnapshotData::File(tokio::fs::File::from_std(file)))
    }

    /// Checks that the file of `current` exists, has the recorded length and CRC.
    /// Returns a description of what is wrong, if anything.
    pub fn check(&self, current: &Current) -> Option<String> {
        let path = self.path(current.gen);
        let (len, crc) = match crc_of(&path) {
            Ok(x) => x,
            Err(e) => return Some(format!("cannot read {}: {e}", path.display())),
        };
        if len != current.len {
            return Some(format!(
                "{} is {len} bytes long, {} were written",
                path.display(),
                current.len
            ));
        }
        if current.crc.is_some_and(|c| c != crc) {
            return Some(format!("{} fails its CRC-32 check", path.display()));
        }
        None
    }
}

/// Length and CRC-32 of a file.
pub fn crc_of(path: &Path) -> std::io::Result<(u64, u32)> {
    let mut f = std::io::BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    loop {
        let buf = std::io::BufRead::fill_buf(&mut f)?;
        if buf.is_empty() {
            break;
        }
        crc.update(buf);
        len += buf.len() as u64;
        let n = buf.len();
        std::io::BufRead::consume(&mut f, n);
    }
    Ok((len, crc.finalize()))
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to disk, without
/// waiting. Only a hint: durability still comes from the fsync in [`FileWriter::finish`],
/// so an error is ignored.
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor this `File` owns.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// `fsync` of a directory, so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bytes of a snapshot file written between two starts of write-back
/// ([`FileWriter::write`]).
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Writes one snapshot file: buffered, with its CRC-32; [`FileWriter::finish`] syncs it
/// and gives it its final name.
///
/// Every [`WRITEBACK_EVERY`] bytes it asks the kernel to start writing the new range to
/// disk (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait). Without it a
/// snapshot of hundreds of MB sits in the page cache as dirty pages until the final
/// fsync, which then flushes all of it at once, and the Raft log's fsyncs queue behind
/// that flush: writes stall for the length of it. With it the final fsync has little
/// left to do. (RocksDB's `bytes_per_sync` does the same.)
pub struct FileWriter {
    out: Option<BufWriter<File>>,
    crc: crc32fast::Hasher,
    len: u64,
    /// Bytes already handed to write-back.
    flushed: u64,
    tmp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
}

impl FileWriter {
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        let out = self.out.as_mut().expect("written before finish");
        out.write_all(bytes)?;
        if self.len - self.flushed >= WRITEBACK_EVERY {
            out.flush()?;
            start_writeback(out.get_ref(), self.flushed, self.len - self.flushed);
            self.flushed = self.len;
        }
        Ok(())
    }

    /// fsync, rename into place, fsync the directory. Returns length and CRC-32.
    pub fn finish(mut self) -> std::io::Result<(u64, u32)> {
        let out = self.out.take().expect("finished once");
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        sync_dir(&self.dir)?;
        Ok((self.len, self.crc.clone().finalize()))
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // Unfinished (an error midway): the temporary file goes. After `finish` it has
        // been renamed and this does nothing.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A snapshot being received: a temporary file openraft writes chunks into. Removed
/// when dropped unless it was moved into place.
pub struct Receiving {
    file: tokio::fs::File,
    pub path: PathBuf,
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Snapshot bytes as openraft reads and writes them.
pub enum SnapshotData {
    /// A published snapshot file, open for reading. It stays readable after a newer
    /// snapshot replaced (unlinked) it, until this handle is dropped.
    File(tokio::fs::File),
    /// A snapshot being received from the leader.
    Receiving(Receiving),
}

impl SnapshotData {
    fn file(self: Pin<&mut Self>) -> Pin<&mut tokio::fs::File> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file),
        }
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.file().poll_read(cx, buf)
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        self.file().start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        self.file().poll_complete(cx)
    }
}

fn read_only() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, "a stored snapshot is read-only")
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SnapshotData::File(_) => Poll::Ready(Err(read_only())),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File(_) => Poll::Ready(Ok(())),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File(_) => Poll::Ready(Ok(())),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::SeekFrom;

    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    use super::*;

    /// A written file reads back whole and from any offset, passes its check, and stays
    /// readable through an open handle after it was removed; a flipped byte or a
    /// truncation fails the check.
    #[tokio::test]
    async fn files_read_back_survive_unlink_while_open_and_fail_checks_when_damaged() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("snapshots")).unwrap();
        let bytes: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
        let mut w = dir.writer(7).unwrap();
        for piece in bytes.chunks(10_000) {
            w.write(piece).unwrap();
        }
        let (len, crc) = w.finish().unwrap();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(dir.gens().unwrap(), vec![7]);
        let current = Current { meta: SnapshotMeta::default(), gen: 7, len, crc: Some(crc) };
        assert_eq!(dir.check(&current), None);

        let mut all = Vec::new();
        dir.open_current(&current).unwrap().read_to_end(&mut all).await.unwrap();
        assert!(all == bytes);
        let mut s = dir.open_current(&current).unwrap();
        s.seek(SeekFrom::Start(1000)).await.unwrap();
        let mut buf = vec![0; 50];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, bytes[1000..1050]);

        dir.remove_others(None, true).unwrap();
        assert!(dir.gens().unwrap().is_empty(), "unlinked");
        s.seek(SeekFrom::Start(0)).await.unwrap();
        let mut again = Vec::new();
        s.read_to_end(&mut again).await.unwrap();
        assert!(again == bytes, "an open reader still reads an unlinked file");

        let mut r = dir.receiving(1).unwrap();
        r.file.write_all(&bytes).await.unwrap();
        r.file.flush().await.unwrap();
        let path = r.path.clone();
        dir.publish_received(&path, 8).unwrap();
        drop(r);
        let mut current = Current { gen: 8, ..current };
        assert_eq!(dir.check(&current), None, "received file moved into place");
        let mut damaged = std::fs::read(dir.path(8)).unwrap();
        damaged[12345] ^= 0x40;
        std::fs::write(dir.path(8), &damaged).unwrap();
        assert!(dir.check(&current).unwrap().contains("CRC"));
        std::fs::write(dir.path(8), &bytes[..1000]).unwrap();
        assert!(dir.check(&current).unwrap().contains("long"));
        current.gen = 9;
        assert!(dir.check(&current).unwrap().contains("cannot read"));
    }
}
