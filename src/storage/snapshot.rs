//! Snapshot bytes: stored in fjall in fixed-size chunks and read back on demand.
//!
//! A snapshot of 100,000 items is about 15 MB. Building it in one `Vec`, copying it
//! into one fjall value and handing it to openraft held it in memory three times over,
//! and a single huge value also passed whole through fjall's memtable and journal. Now
//! the builder streams records into [`CHUNK`]-sized values under one generation
//! number, and [`SnapshotData::Stored`] reads them back piece by piece when openraft
//! sends the snapshot to a follower, so a node never holds a whole snapshot it built.
//!
//! Layout in the `snapshot` keyspace: `current` = JSON [`Current`] (meta, generation,
//! length), written last and synced, so it only ever names complete chunks;
//! `chunk ‖ gen u64 BE ‖ seq u32 BE` = bytes `seq·CHUNK ..` of generation `gen`.

use std::collections::HashMap;
use std::io::{Cursor, SeekFrom};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use fjall::Keyspace;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::raft::SnapshotMeta;

/// Size of every chunk but the last.
pub const CHUNK: usize = 1024 * 1024;
pub const KEY_CURRENT: &[u8] = b"current";
const CHUNK_PREFIX: &[u8] = b"chunk";

/// What `current` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Current {
    pub meta: SnapshotMeta,
    pub gen: u64,
    pub len: u64,
}

/// The key of chunk `seq` of generation `gen`.
pub fn chunk_key(gen: u64, seq: u32) -> Vec<u8> {
    let mut k = CHUNK_PREFIX.to_vec();
    k.extend_from_slice(&gen.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The generation of a chunk key, if it is one.
pub fn chunk_gen(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(CHUNK_PREFIX)?;
    Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?))
}

/// Writes a byte stream as chunks of generation `gen` (not synced: the caller syncs
/// before it publishes `current`).
pub struct ChunkWriter<'a> {
    ks: &'a Keyspace,
    gen: u64,
    seq: u32,
    buf: Vec<u8>,
    len: u64,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(ks: &'a Keyspace, gen: u64) -> ChunkWriter<'a> {
        ChunkWriter { ks, gen, seq: 0, buf: Vec::with_capacity(CHUNK), len: 0 }
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> fjall::Result<()> {
        while !bytes.is_empty() {
            let n = (CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.len += n as u64;
            if self.buf.len() == CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> fjall::Result<()> {
        self.ks.insert(chunk_key(self.gen, self.seq), self.buf.as_slice())?;
        self.seq += 1;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last partial chunk; returns the total length.
    pub fn finish(mut self) -> fjall::Result<u64> {
        if !self.buf.is_empty() {
            self.flush()?;
        }
        Ok(self.len)
    }
}

/// Snapshot bytes as openraft reads and writes them.
pub enum SnapshotData {
    /// In memory: a snapshot being received from the leader.
    Memory(Cursor<Vec<u8>>),
    /// A stored snapshot, read chunk by chunk.
    Stored(StoredSnapshot),
}

/// A reader over the chunks of one stored generation.
pub struct StoredSnapshot {
    ks: Keyspace,
    gen: u64,
    len: u64,
    pos: u64,
    /// Keeps the generation's chunks on disk while this reader exists.
    _pin: ReaderPin,
}

/// The generations open readers still use. openraft may hold a snapshot for a long
/// time (retrying to send it to a node that is down) while newer ones are built; the
/// chunks of a generation in use are not removed until its last reader is dropped.
#[derive(Clone, Default)]
pub struct Readers(Arc<Mutex<HashMap<u64, usize>>>);

impl Readers {
    fn pin(&self, gen: u64) -> ReaderPin {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(gen).or_default() += 1;
        ReaderPin { readers: self.clone(), gen }
    }

    /// Whether a reader of generation `gen` exists.
    pub fn in_use(&self, gen: u64) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&gen)
    }
}

struct ReaderPin {
    readers: Readers,
    gen: u64,
}

impl Drop for ReaderPin {
    fn drop(&mut self) {
        let mut map = self.readers.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.gen) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.gen);
            }
        }
    }
}

impl SnapshotData {
    /// A reader of the stored snapshot `current`, registered in `readers`.
    pub fn stored(ks: Keyspace, current: &Current, readers: &Readers) -> SnapshotData {
        SnapshotData::Stored(StoredSnapshot {
            ks,
            gen: current.gen,
            len: current.len,
            pos: 0,
            _pin: readers.pin(current.gen),
        })
    }

    /// All the bytes, from the start.
    pub fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            SnapshotData::Memory(c) => Ok(c.into_inner()),
            SnapshotData::Stored(s) => {
                let mut out = Vec::with_capacity(s.len as usize);
                for seq in 0..s.len.div_ceil(CHUNK as u64) {
                    out.extend_from_slice(&s.chunk(seq as u32)?);
                }
                if out.len() as u64 != s.len {
                    return Err(std::io::Error::other("stored snapshot is shorter than recorded"));
                }
                Ok(out)
            }
        }
    }
}

impl StoredSnapshot {
    fn chunk(&self, seq: u32) -> std::io::Result<fjall::Slice> {
        self.ks
            .get(chunk_key(self.gen, seq))
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other(format!("snapshot chunk {seq} is missing")))
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_read(cx, buf),
            SnapshotData::Stored(s) => {
                if s.pos >= s.len || buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                let seq = (s.pos / CHUNK as u64) as u32;
                let off = (s.pos % CHUNK as u64) as usize;
                let chunk = s.chunk(seq)?;
                let Some(rest) = chunk.get(off..) else {
                    return Poll::Ready(Err(std::io::Error::other("snapshot chunk too short")));
                };
                let n = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..n]);
                s.pos += n as u64;
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).start_seek(position),
            SnapshotData::Stored(s) => {
                let to = match position {
                    SeekFrom::Start(p) => Some(p),
                    SeekFrom::End(d) => s.len.checked_add_signed(d),
                    SeekFrom::Current(d) => s.pos.checked_add_signed(d),
                };
                s.pos = to.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start")
                })?;
                Ok(())
            }
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_complete(cx),
            SnapshotData::Stored(s) => Poll::Ready(Ok(s.pos)),
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
            SnapshotData::Memory(c) => Pin::new(c).poll_write(cx, buf),
            SnapshotData::Stored(_) => Poll::Ready(Err(read_only())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_flush(cx),
            SnapshotData::Stored(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_shutdown(cx),
            SnapshotData::Stored(_) => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    use super::*;

    #[tokio::test]
    async fn chunks_read_back_whole_and_from_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let ks = db.keyspace("s", fjall::KeyspaceCreateOptions::default).unwrap();
        let bytes: Vec<u8> = (0..(2 * CHUNK + 12345)).map(|i| (i % 251) as u8).collect();
        let mut w = ChunkWriter::new(&ks, 7);
        for piece in bytes.chunks(100_000) {
            w.write(piece).unwrap();
        }
        let len = w.finish().unwrap();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(chunk_gen(&chunk_key(7, 2)), Some(7));

        let meta = SnapshotMeta::default();
        let current = Current { meta, gen: 7, len };
        let readers = Readers::default();
        let mut all = Vec::new();
        SnapshotData::stored(ks.clone(), &current, &readers).read_to_end(&mut all).await.unwrap();
        assert!(all == bytes, "read_to_end returns every byte");
        assert!(
            SnapshotData::stored(ks.clone(), &current, &readers).into_bytes().unwrap() == bytes
        );

        let mut s = SnapshotData::stored(ks.clone(), &current, &readers);
        let at = CHUNK as u64 - 10;
        assert_eq!(s.seek(SeekFrom::Start(at)).await.unwrap(), at);
        let mut buf = vec![0; 50];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, bytes[at as usize..at as usize + 50], "a read across a chunk edge");
        assert_eq!(s.seek(SeekFrom::End(0)).await.unwrap(), len);
        assert_eq!(s.read(&mut buf).await.unwrap(), 0, "end of data");
        assert!(readers.in_use(7), "an open reader pins its generation");
        drop(s);
        assert!(!readers.in_use(7), "released with the last reader");

        let missing = Current { meta: SnapshotMeta::default(), gen: 8, len: 10 };
        assert!(SnapshotData::stored(ks, &missing, &readers).into_bytes().is_err());
    }
}
