//! Snapshot bytes on disk and on the wire.
//!
//! At rest a node keeps no copy of its snapshot: the state keyspaces themselves are the
//! snapshot. Building one makes the state durable (an fsync of fjall's journal) and
//! records what it covers; the log behind it may then be purged, and after a crash the
//! state is at least that new. A snapshot is written out as bytes only to send it:
//! [`Lazy`] streams a consistent fjall read view of the state into an unlinked scratch
//! file the first time openraft reads from it, and the space is gone when openraft drops
//! it. (etcd and TiKV keep one file per snapshot; here even that copy, which doubled a
//! node's disk use, is avoided.)
//!
//! A snapshot received from the leader is written to `recv-<n>.tmp`, checked, synced and
//! renamed to `snap-<gen>.bin`, loaded into the state keyspaces, and removed once the
//! load is synced. A crash in between leaves an `installing` record naming the file and
//! its length and CRC-32, and the next start loads it again.
//!
//! At start, leftover `*.tmp` files and snapshot files no record names are removed.

use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::raft::SnapshotMeta;

/// Key of the record of the older format, in which the current snapshot was a file kept
/// at rest (see `StateMachine::new`, which replaces it).
pub const KEY_CURRENT: &[u8] = b"current";

/// A snapshot file: what it covers, which file it is and how to check it. Stored under
/// `installing` while a received snapshot is loaded (under `current` in the older
/// format).
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

    /// `snap-<gen>.bin`: the received file of generation `gen`.
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

    /// A scratch file to write a snapshot into for sending: created and unlinked at
    /// once, so its space is freed when the returned writer's file is closed, after a
    /// crash too.
    pub fn scratch(&self, n: u64) -> std::io::Result<FileWriter> {
        let path = self.tmp_path(&format!("send-{n:020}"));
        let file = create_rw(&path)?;
        std::fs::remove_file(&path)?;
        Ok(FileWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            len: 0,
            flushed: 0,
        })
    }

    /// A fresh temporary file for a snapshot being received.
    pub fn receiving(&self, n: u64) -> std::io::Result<Receiving> {
        let path = self.tmp_path(&format!("recv-{n:020}"));
        let file = create_rw(&path)?;
        Ok(Receiving { file: tokio::fs::File::from_std(file), path })
    }

    /// A received file holding a copy of `src` from its start (installing a snapshot
    /// that was read, not received: openraft's conformance suite does that).
    pub async fn receive_copy<S>(&self, n: u64, mut src: S) -> std::io::Result<Receiving>
    where
        S: AsyncRead + AsyncSeek + Unpin,
    {
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

    /// Checks that the file of `current` exists, has the recorded length and CRC.
    /// Returns a description of what is wrong, if anything.
    pub fn check(&self, current: &Current) -> Option<String> {
        let path = self.path(current.gen);
        let (len, crc) = match crc_of(&path) {
            Ok(x) => x,
            // The file is deleted only after the record of the install is removed
            // (synced): the database has lost writes it had made durable.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(format!(
                    "{} does not exist: it is removed only after the install is recorded \
                     as finished, so the database lost writes it had synced (a journal cut \
                     short or damaged)",
                    path.display()
                ))
            }
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

/// Creates (or empties) `path`, open for reading and writing.
fn create_rw(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)
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
/// waiting. Only a hint, so an error is ignored.
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

/// Writes a snapshot into a scratch file: buffered, with its CRC-32.
///
/// Every [`WRITEBACK_EVERY`] bytes it asks the kernel to start writing the new range to
/// disk (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait). Without it a
/// snapshot of hundreds of MB sits in the page cache as dirty pages until the kernel
/// flushes all of it at once, and the Raft log's fsyncs queue behind that flush: writes
/// stall for the length of it. (RocksDB's `bytes_per_sync` does the same.)
pub struct FileWriter {
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    len: u64,
    /// Bytes already handed to write-back.
    flushed: u64,
}

impl FileWriter {
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        self.out.write_all(bytes)?;
        if self.len - self.flushed >= WRITEBACK_EVERY {
            self.out.flush()?;
            start_writeback(self.out.get_ref(), self.flushed, self.len - self.flushed);
            self.flushed = self.len;
        }
        Ok(())
    }

    /// Flushes the buffer; returns the file (positioned at its start), its length and
    /// CRC-32.
    pub fn finish(self) -> std::io::Result<(File, u64, u32)> {
        use std::io::Seek;
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(std::io::SeekFrom::Start(0))?;
        Ok((file, self.len, self.crc.finalize()))
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

/// Writes a snapshot's bytes into a scratch file (blocking) and returns the file.
pub type Materialize = Box<dyn FnOnce() -> std::io::Result<File> + Send>;

/// A snapshot whose bytes are written only when first read: openraft asks for the
/// current snapshot at start and after every build only for its metadata, and reads the
/// bytes only to send them to a follower. The writing runs on a blocking thread.
pub struct Lazy {
    state: LazyState,
    /// A seek asked for before the bytes were ready.
    seek: Option<std::io::SeekFrom>,
}

enum LazyState {
    Pending(Option<Materialize>),
    Writing(tokio::task::JoinHandle<std::io::Result<File>>),
    Ready(tokio::fs::File),
}

impl Lazy {
    pub fn new(materialize: Materialize) -> Lazy {
        Lazy { state: LazyState::Pending(Some(materialize)), seek: None }
    }

    /// The file, once written (starting the writing on first call).
    fn poll_file(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<&mut tokio::fs::File>> {
        loop {
            let next = match &mut self.state {
                LazyState::Pending(f) => {
                    let f = f.take().expect("materialized once");
                    LazyState::Writing(tokio::task::spawn_blocking(f))
                }
                LazyState::Writing(h) => match std::task::ready!(Pin::new(h).poll(cx)) {
                    Ok(Ok(file)) => LazyState::Ready(tokio::fs::File::from_std(file)),
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(e) => return Poll::Ready(Err(std::io::Error::other(e))),
                },
                LazyState::Ready(_) => break,
            };
            self.state = next;
        }
        match &mut self.state {
            LazyState::Ready(file) => Poll::Ready(Ok(file)),
            _ => unreachable!("the loop ends only when ready"),
        }
    }
}

/// Snapshot bytes as openraft reads and writes them.
pub enum SnapshotData {
    /// The state, written out when first read.
    Lazy(Lazy),
    /// A snapshot being received from the leader.
    Receiving(Receiving),
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Lazy(l) => {
                let file = std::task::ready!(l.poll_file(cx))?;
                Pin::new(file).poll_read(cx, buf)
            }
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_read(cx, buf),
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        match self.get_mut() {
            SnapshotData::Lazy(l) => match &mut l.state {
                LazyState::Ready(file) => Pin::new(file).start_seek(position),
                _ => {
                    l.seek = Some(position);
                    Ok(())
                }
            },
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).start_seek(position),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        match self.get_mut() {
            SnapshotData::Lazy(l) => {
                let pending_seek = l.seek.take();
                let file = match l.poll_file(cx) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => {
                        l.seek = pending_seek;
                        return Poll::Pending;
                    }
                };
                if let Some(position) = pending_seek {
                    Pin::new(&mut *file).start_seek(position)?;
                }
                Pin::new(file).poll_complete(cx)
            }
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_complete(cx),
        }
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
            SnapshotData::Lazy(_) => Poll::Ready(Err(read_only())),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Lazy(_) => Poll::Ready(Ok(())),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Lazy(_) => Poll::Ready(Ok(())),
            SnapshotData::Receiving(r) => Pin::new(&mut r.file).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::SeekFrom;

    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    use super::*;

    /// A lazy snapshot writes its bytes into an unlinked scratch file only when read,
    /// reads back whole and from any offset (a seek before the first read too), and
    /// leaves no file behind.
    #[tokio::test]
    async fn lazy_snapshots_are_written_when_first_read_into_an_unlinked_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("snapshots")).unwrap();
        let bytes: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lazy = |n: u64| {
            let (dir, bytes, written) = (dir.clone(), bytes.clone(), written.clone());
            SnapshotData::Lazy(Lazy::new(Box::new(move || {
                written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut w = dir.scratch(n)?;
                for piece in bytes.chunks(10_000) {
                    w.write(piece)?;
                }
                let (file, len, _) = w.finish()?;
                assert_eq!(len, bytes.len() as u64);
                Ok(file)
            })))
        };
        drop(lazy(1));
        assert_eq!(
            written.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "never read: never written"
        );

        let mut all = Vec::new();
        lazy(2).read_to_end(&mut all).await.unwrap();
        assert!(all == bytes);
        let mut s = lazy(3);
        s.seek(SeekFrom::Start(1000)).await.unwrap();
        let mut buf = vec![0; 50];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, bytes[1000..1050]);
        s.seek(SeekFrom::Start(0)).await.unwrap();
        let mut again = Vec::new();
        s.read_to_end(&mut again).await.unwrap();
        assert!(again == bytes);
        assert_eq!(written.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(std::fs::read_dir(&dir.dir).unwrap().count(), 0, "scratch files are unlinked");
    }

    /// A received file moved into place passes its check; a flipped byte or a
    /// truncation fails it.
    #[tokio::test]
    async fn received_files_are_checked_by_length_and_crc() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("snapshots")).unwrap();
        let bytes: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
        let mut r = dir.receiving(1).unwrap();
        r.file.write_all(&bytes).await.unwrap();
        r.file.flush().await.unwrap();
        let path = r.path.clone();
        dir.publish_received(&path, 8).unwrap();
        drop(r);
        let (len, crc) = crc_of(&dir.path(8)).unwrap();
        let mut current = Current { meta: SnapshotMeta::default(), gen: 8, len, crc: Some(crc) };
        assert_eq!(dir.check(&current), None, "received file moved into place");
        assert_eq!(dir.gens().unwrap(), vec![8]);
        let mut damaged = std::fs::read(dir.path(8)).unwrap();
        damaged[12345] ^= 0x40;
        std::fs::write(dir.path(8), &damaged).unwrap();
        assert!(dir.check(&current).unwrap().contains("CRC"));
        std::fs::write(dir.path(8), &bytes[..1000]).unwrap();
        assert!(dir.check(&current).unwrap().contains("long"));
        current.gen = 9;
        assert!(dir.check(&current).unwrap().contains("does not exist"));
        dir.remove_others(None, true).unwrap();
        assert!(dir.gens().unwrap().is_empty());
    }
}
