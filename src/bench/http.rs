//! The benchmark's own HTTP/1.1 client: one persistent keep-alive connection per
//! (client task, node), and nothing else on the hot path.
//!
//! The general client ([`crate::client::Client`], on `reqwest`) parses a URL, looks up a
//! pool, applies a redirect policy and decodes every JSON answer per request. With the
//! load generator sharing the machine with the cluster, that work is taken from the
//! nodes. Here instead:
//!
//! - each client task owns a [`Conns`]: one slot per node address, each with at most one
//!   open connection (`hyper`'s HTTP/1.1 connection, `TCP_NODELAY` set), opened on first
//!   use and reopened after any error;
//! - requests are built from a pre-encoded path and query ([`Uri`] over reused bytes)
//!   and a `Host` header formatted once per node;
//! - an answer's body is kept only when the caller needs it (error answers always);
//!   a `200` body the caller does not look at is read and dropped, so the connection
//!   stays usable.
//!
//! With TLS installed for the process ([`crate::tls::install`], from `--ca-file`), the
//! connections are https (rustls), opened once and kept like the plain ones.
//!
//! What it does not do: proxies, redirects (callers follow `307` themselves, see
//! [`parse_location`]), chunked request bodies, HTTP/2.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Upper bound for one exchange with one node (as the general client).
pub const REQUEST_TIMEOUT: Duration = crate::client::DEFAULT_REQUEST_TIMEOUT;
/// Upper bound for opening a connection (as the general client).
pub const CONNECT_TIMEOUT: Duration = crate::client::DEFAULT_CONNECT_TIMEOUT;

/// An answer: status, headers and (if asked for, or not a 200) the body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body; empty for a 200 whose body the caller did not ask for.
    pub body: Bytes,
}

impl Answer {
    /// A header as text, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok().map(str::trim)
    }

    /// A header as an unsigned number.
    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name)?.parse().ok()
    }
}

/// Why an exchange brought no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The request never left: no connection could be opened (or the one opened was
    /// closed before the request was written). Safe to send elsewhere.
    Connect(String),
    /// No complete answer in time; the request may have arrived.
    Timeout,
    /// The connection broke during the exchange; the request may have arrived.
    Broken(String),
}

impl Transport {
    /// The kind of the failure, for the error counts.
    pub fn kind(&self) -> String {
        match self {
            Transport::Timeout => "timeout".into(),
            Transport::Connect(_) => "unreachable".into(),
            Transport::Broken(_) => "connection broken".into(),
        }
    }
}

/// One node: its address, its `Host` header, and the open connection if any.
struct Conn {
    addr: String,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// One client task's connections, one slot per node address.
pub struct Conns {
    slots: Vec<Conn>,
}

impl Default for Conns {
    fn default() -> Self {
        Conns::new()
    }
}

impl Conns {
    /// No slots, no connections.
    pub fn new() -> Conns {
        Conns { slots: Vec::new() }
    }

    /// The slot of `addr` (`host:port`, already normalized), added if new. No connection
    /// is opened until the slot is used.
    pub fn slot(&mut self, addr: &str) -> Result<usize, String> {
        if let Some(i) = self.slots.iter().position(|c| c.addr == addr) {
            return Ok(i);
        }
        let host = HeaderValue::from_str(addr)
            .map_err(|_| format!("invalid node address {addr:?}: not a valid Host header"))?;
        self.slots.push(Conn { addr: addr.to_string(), host, sender: None });
        Ok(self.slots.len() - 1)
    }

    /// The address of a slot.
    pub fn addr(&self, slot: usize) -> &str {
        &self.slots[slot].addr
    }

    /// One exchange with the node of `slot`: opens a connection if there is none (or the
    /// old one was closed), sends `method uri` with `body` (JSON) and reads the answer,
    /// all within `timeout`. The body of a 200 is read but only kept if `keep_ok_body`.
    /// Any failure closes the connection; the next exchange opens a new one.
    pub async fn send(
        &mut self,
        slot: usize,
        method: &Method,
        uri: &Uri,
        body: Option<&Bytes>,
        keep_ok_body: bool,
        timeout: Duration,
    ) -> Result<Answer, Transport> {
        self.send_with(slot, method, uri, body, &[], keep_ok_body, timeout).await
    }

    /// [`Conns::send`] with `headers` added to the request; they replace the default
    /// `Content-Type` (`application/json`) if they name one.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_with(
        &mut self,
        slot: usize,
        method: &Method,
        uri: &Uri,
        body: Option<&Bytes>,
        headers: &[(HeaderName, HeaderValue)],
        keep_ok_body: bool,
        timeout: Duration,
    ) -> Result<Answer, Transport> {
        let conn = &mut self.slots[slot];
        let result =
            tokio::time::timeout(timeout, exchange(conn, method, uri, body, headers, keep_ok_body))
                .await;
        match result {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                conn.sender = None;
                Err(e)
            }
            Err(_elapsed) => {
                // The dropped request future has closed the connection already.
                conn.sender = None;
                Err(Transport::Timeout)
            }
        }
    }
}

/// The request and the answer, on the slot's connection. A connection kept from an
/// earlier exchange may have been closed by the node meanwhile; if the request provably
/// was not written, it is sent once more on a new connection.
async fn exchange(
    conn: &mut Conn,
    method: &Method,
    uri: &Uri,
    body: Option<&Bytes>,
    extra: &[(HeaderName, HeaderValue)],
    keep_ok_body: bool,
) -> Result<Answer, Transport> {
    let mut reused = match &conn.sender {
        Some(s) if s.is_closed() => {
            conn.sender = None;
            false
        }
        Some(_) => true,
        None => false,
    };
    loop {
        let sender = match conn.sender.take() {
            Some(s) => conn.sender.insert(s),
            None => conn.sender.insert(connect(&conn.addr).await?),
        };
        if sender.ready().await.is_err() {
            conn.sender = None;
            if std::mem::take(&mut reused) {
                continue;
            }
            return Err(Transport::Connect("connection closed".into()));
        }
        let mut req = Request::new(Full::new(body.cloned().unwrap_or_default()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        let headers = req.headers_mut();
        headers.insert(HOST, conn.host.clone());
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in extra {
            headers.insert(name.clone(), value.clone());
        }
        let resp = match sender.try_send_request(req).await {
            Ok(resp) => resp,
            Err(mut e) => {
                conn.sender = None;
                let unsent = e.take_message().is_some();
                if unsent && std::mem::take(&mut reused) {
                    continue;
                }
                let reason = root_cause(e.error());
                return Err(if unsent {
                    Transport::Connect(reason)
                } else {
                    Transport::Broken(reason)
                });
            }
        };
        let (parts, mut incoming) = resp.into_parts();
        let body = if parts.status != StatusCode::OK || keep_ok_body {
            incoming.collect().await.map_err(|e| Transport::Broken(root_cause(&e)))?.to_bytes()
        } else {
            while let Some(frame) = incoming.frame().await {
                frame.map_err(|e| Transport::Broken(root_cause(&e)))?;
            }
            Bytes::new()
        };
        return Ok(Answer { status: parts.status, headers: parts.headers, body });
    }
}

/// Opens a connection to `addr` and starts driving it.
async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, Transport> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Transport::Connect(io_reason(&e))),
        Err(_) => return Err(Transport::Connect("connection timed out".into())),
    };
    // Small requests, one at a time: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    if !crate::tls::enabled() {
        return drive(TokioIo::new(stream)).await;
    }
    match crate::tls::connect(addr, stream).await {
        Some(Ok(tls)) => drive(TokioIo::new(tls)).await,
        Some(Err(e)) => Err(Transport::Connect(format!("TLS: {}", root_cause(&e)))),
        None => Err(Transport::Connect("TLS settings went away".into())),
    }
}

/// Starts HTTP/1.1 on an open connection (plain or TLS) and drives it in a task.
async fn drive<IO>(io: TokioIo<IO>) -> Result<SendRequest<Full<Bytes>>, Transport>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) =
        http1::handshake(io).await.map_err(|e| Transport::Connect(root_cause(&e)))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the connection fails; the failure is seen
        // (and counted) by the exchange that was using it.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Targets taken in turn, one connection each: the shape of a worker whose requests may
/// go to any node (etcd's members, the DynamoDB protocol's endpoints).
pub struct RoundRobin {
    /// The connections, one slot per distinct address.
    pub conns: Conns,
    /// Connection slots of the targets, in the order given.
    slots: Vec<usize>,
    /// Where the next turn goes (index into `slots`).
    next: usize,
}

impl RoundRobin {
    /// The targets (`host:port`; a missing port is `default_port` if there is one),
    /// starting the turns at target `first`. `what` names the targets in errors.
    pub fn new(
        targets: &[String],
        default_port: Option<u16>,
        first: usize,
        what: &str,
    ) -> Result<RoundRobin, String> {
        let mut conns = Conns::new();
        let mut slots = Vec::with_capacity(targets.len());
        for t in targets {
            let addr = normalize_addr(t, default_port).map_err(|e| format!("bad {what}: {e}"))?;
            slots.push(conns.slot(&addr).map_err(|e| format!("bad {what}: {e}"))?);
        }
        if slots.is_empty() {
            return Err(format!("no {what}"));
        }
        Ok(RoundRobin { conns, next: first % slots.len(), slots })
    }

    /// The slot whose turn it is; the next call gives the one after it.
    pub fn turn(&mut self) -> usize {
        let slot = self.slots[self.next];
        self.next = (self.next + 1) % self.slots.len();
        slot
    }

    /// Every target's slot, in the order given.
    pub fn slots(&self) -> &[usize] {
        &self.slots
    }
}

/// An I/O error in a few words (`connection refused`), as the general client says it.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        _ => e.to_string(),
    }
}

/// The innermost cause of an error: the I/O error if there is one, else the last source.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    loop {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io_reason(io);
        }
        match cause.source() {
            Some(next) => cause = next,
            None => return cause.to_string(),
        }
    }
}

/// Where a `Location` header points: the node (`host:port`) and the path and query.
/// Absolute `http://` and `https://` locations and paths (`/...`, same node as `current`) are accepted;
/// anything else (another scheme, no host, a relative path) is `None`.
pub fn parse_location<'a>(location: &'a str, current: &str) -> Option<(String, &'a str)> {
    let location = location.trim();
    if location.starts_with('/') && !location.starts_with("//") {
        return Some((current.to_string(), location));
    }
    let rest = location.strip_prefix("http://").or_else(|| location.strip_prefix("https://"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { return None } else { path };
    let port = if location.starts_with("https://") { 443 } else { 80 };
    let addr = normalize_addr(authority, Some(port)).ok()?;
    Some((addr, path))
}

/// `host:port` from a user: trims, drops an `http://` or `https://` prefix (the scheme
/// is the process's: https once TLS is installed) and a trailing `/`. A missing port is `default_port` if there is one, else an error.
pub fn normalize_addr(addr: &str, default_port: Option<u16>) -> Result<String, String> {
    let bad = |why: &str| format!("invalid node address {addr:?}: {why}");
    let a = addr.trim();
    let a = a.strip_prefix("http://").or_else(|| a.strip_prefix("https://")).unwrap_or(a);
    let a = a.strip_suffix('/').unwrap_or(a);
    if a.is_empty() || a.contains(['/', '?', '#', '@']) || a.contains(char::is_whitespace) {
        return Err(bad("expected host:port"));
    }
    // An IPv6 literal is bracketed: [::1]:2379.
    let host_end = if a.starts_with('[') { a.find(']').map(|i| i + 1) } else { a.find(':') };
    let host_end = host_end.unwrap_or(a.len());
    let (host, port) = a.split_at(host_end);
    if host.is_empty() || host == "[]" {
        return Err(bad("expected host:port"));
    }
    match port.strip_prefix(':') {
        Some(p) if p.parse::<u16>().is_ok() => Ok(a.to_string()),
        None if port.is_empty() => match default_port {
            Some(d) => Ok(format!("{a}:{d}")),
            None => Err(bad("expected host:port")),
        },
        _ => Err(bad("expected host:port")),
    }
}

/// Appends `s` percent-encoded: everything but `A-Z a-z 0-9 - . _ ~` becomes `%XX`, so
/// the result is safe in a path segment and in a query value.
pub fn push_encoded(out: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.extend_from_slice(&[b]);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// Appends `s` as the inside of a JSON string (quotes, backslashes and control
/// characters escaped).
pub fn push_json_str(out: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Takes what was written into `buf` as a [`Uri`] (origin form: `/path?query`). The
/// bytes are shared, not copied, and `buf` gets its allocation back once the request
/// that used them is gone.
pub fn take_uri(buf: &mut BytesMut) -> Result<Uri, String> {
    Uri::from_maybe_shared(buf.split().freeze()).map_err(|e| format!("bad request path: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_give_the_node_and_the_path() {
        let here = "127.0.0.1:8100";
        assert_eq!(
            parse_location("http://127.0.0.1:8101/tables/t/items?pk=a", here),
            Some(("127.0.0.1:8101".to_string(), "/tables/t/items?pk=a"))
        );
        assert_eq!(
            parse_location(" http://node-2:9000/x ", here),
            Some(("node-2:9000".to_string(), "/x"))
        );
        assert_eq!(parse_location("http://leader/x", here), Some(("leader:80".to_string(), "/x")));
        assert_eq!(parse_location("http://[::1]:7/x", here), Some(("[::1]:7".to_string(), "/x")));
        assert_eq!(parse_location("http://n:1", here), Some(("n:1".to_string(), "/")));
        // https: the node's TLS address (the connection's scheme is the process's).
        assert_eq!(parse_location("https://n:1/x", here), Some(("n:1".to_string(), "/x")));
        assert_eq!(parse_location("https://n/x", here), Some(("n:443".to_string(), "/x")));
        // A path alone means the same node.
        assert_eq!(parse_location("/status", here), Some((here.to_string(), "/status")));
        for bad in [
            "",
            "ftp://n:1/x",
            "n:1/x",
            "//n:1/x",
            "http:///x",
            "http://n:99999/x",
            "http://u@n:1/x",
            "http://n:1?x",
            "relative/path",
        ] {
            assert_eq!(parse_location(bad, here), None, "{bad:?}");
        }
    }

    #[test]
    fn addresses_are_normalized_and_checked() {
        assert_eq!(normalize_addr(" http://127.0.0.1:8100/ ", None).unwrap(), "127.0.0.1:8100");
        assert_eq!(normalize_addr("localhost:1", None).unwrap(), "localhost:1");
        assert_eq!(normalize_addr("[::1]:2379", None).unwrap(), "[::1]:2379");
        assert_eq!(normalize_addr("etcd", Some(80)).unwrap(), "etcd:80");
        for bad in ["", "host", "host:", "host:x", ":80", "a/b:1", "a b:1", "h:70000", "[::1]"] {
            assert!(normalize_addr(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_and_json_strings_are_escaped() {
        let mut b = BytesMut::new();
        push_encoded(&mut b, "key000123");
        push_encoded(&mut b, "/a b&c=d?é");
        assert_eq!(&b[..], b"key000123%2Fa%20b%26c%3Dd%3F%C3%A9");

        let mut j = BytesMut::new();
        let tricky = "plain \"quoted\" back\\slash\nnew\tline \u{1} é";
        push_json_str(&mut j, tricky);
        let quoted = format!("\"{}\"", std::str::from_utf8(&j).unwrap());
        assert_eq!(serde_json::from_str::<String>(&quoted).unwrap(), tricky);
        j.clear();
        push_json_str(&mut j, "key000123");
        assert_eq!(&j[..], b"key000123");
    }

    #[test]
    fn uris_reuse_their_buffer() {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"/tables/t/items?pk=");
        push_encoded(&mut buf, "k 1");
        let uri = take_uri(&mut buf).unwrap();
        assert_eq!(uri.path(), "/tables/t/items");
        assert_eq!(uri.query(), Some("pk=k%201"));
        assert!(buf.is_empty());
        drop(uri);
        buf.reserve(64);
        assert!(buf.capacity() >= 64);
        buf.extend_from_slice(b"not a path");
        assert!(take_uri(&mut buf).is_err());
    }

    /// Against a small local server: answers come back with their status, headers and
    /// the bodies asked for; one connection serves many requests; a connection the
    /// server closed is replaced without an error; a refused connection is `Connect`.
    #[tokio::test]
    async fn exchanges_reuse_the_connection_and_reconnect_after_a_close() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        // Answers every request on a connection; closes the connection after the
        // request whose path is /close.
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body =
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                        buf.drain(..end + 4 + len);
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        let host = head
                            .lines()
                            .find_map(|l| l.strip_prefix("host: "))
                            .unwrap_or("")
                            .to_string();
                        let reply_body = format!("{path}|{host}|{body}");
                        let status = if path == "/missing" { "404 Not Found" } else { "200 OK" };
                        let close = if path == "/close" { "connection: close\r\n" } else { "" };
                        let resp = format!(
                            "HTTP/1.1 {status}\r\nx-test: 7\r\n{close}content-length: {}\r\n\r\n{reply_body}",
                            reply_body.len()
                        );
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                        if path == "/close" {
                            return;
                        }
                    }
                });
            }
        });

        let mut conns = Conns::new();
        let slot = conns.slot(&addr).unwrap();
        assert_eq!(conns.slot(&addr).unwrap(), slot);
        let uri = |p: &str| p.parse::<Uri>().unwrap();
        let body = Bytes::from_static(b"{\"k\":1}");
        let a = conns
            .send(slot, &Method::PUT, &uri("/put"), Some(&body), true, REQUEST_TIMEOUT)
            .await
            .unwrap();
        assert_eq!((a.status, a.header_u64("x-test")), (StatusCode::OK, Some(7)));
        assert_eq!(a.body, format!("/put|{addr}|{{\"k\":1}}"));
        // A 200 body not asked for is dropped; an error body is always kept.
        let a = conns
            .send(slot, &Method::GET, &uri("/get?x=1"), None, false, REQUEST_TIMEOUT)
            .await
            .unwrap();
        assert_eq!((a.status, a.body.len()), (StatusCode::OK, 0));
        let a = conns
            .send(slot, &Method::GET, &uri("/missing"), None, false, REQUEST_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(a.body.starts_with(b"/missing|"));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for all of that");

        // The server closes after /close; the next request opens a new connection, and
        // the ones after it use that one.
        conns.send(slot, &Method::GET, &uri("/close"), None, false, REQUEST_TIMEOUT).await.unwrap();
        for _ in 0..5 {
            let a =
                conns.send(slot, &Method::GET, &uri("/again"), None, true, REQUEST_TIMEOUT).await;
            assert_eq!(a.unwrap().status, StatusCode::OK);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        // Nobody listening: the request never left.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let slot = conns.slot(&dead).unwrap();
        let e = conns
            .send(slot, &Method::GET, &uri("/"), None, false, REQUEST_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(e, Transport::Connect("connection refused".into()));
    }
}
