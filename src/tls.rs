//! TLS for the client API and for peer traffic (`[tls]` in cluster.toml).
//!
//! What it owns:
//!
//! - **Loading** the cluster CA, a node's certificate and its key (PEM files) into rustls
//!   configurations ([`NodeTls::load`], [`client_config`]), with errors that name the file
//!   and what is wrong with it.
//! - **Serving**: warp 0.4 has no TLS of its own, so [`serve`] accepts TCP connections,
//!   runs the TLS handshake with tokio-rustls and hands each connection to hyper with the
//!   node's warp filter as the service. Every request of a TLS connection carries a
//!   [`ClientCert`] extension saying whether the other end showed a certificate that
//!   chains to the cluster CA; the server's peer-only routes read it
//!   (`server::peer_only`).
//! - **Calling nodes**: one function, [`client`], takes a `reqwest::ClientBuilder` and
//!   adds the cluster CA and this process's client certificate to it. Every place that
//!   builds an HTTP client for node traffic calls it, and [`url`] gives the scheme
//!   (`https` once TLS is on, else `http`).
//!
//! Mutual TLS between peers: every node presents its certificate when it calls a peer.
//! A server accepts clients with or without a certificate (people with a CLI and the CA
//! file have none), but a certificate that is shown must chain to the cluster CA, or the
//! handshake fails: a process holding a certificate of another CA never gets as far as
//! an HTTP request. Raft RPC, read-index and admin routes then also require that a
//! certificate was shown (401 otherwise).
//!
//! The crypto provider is *ring* (`rustls` with `ring`; reqwest's `rustls-no-provider`):
//! it builds in seconds, where aws-lc-rs needs a long C build. [`install_provider`] makes
//! it the process default, which reqwest needs even for plain-http clients.
//!
//! Shortcuts taken:
//! - The TLS settings for outgoing calls are process-wide ([`install`], once at
//!   start-up): a node, the supervisor and the CLI each talk to one cluster.
//! - Certificates are read once at start; replacing them needs a restart of the node.
//! - No revocation lists; a compromised node certificate means a new CA.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};

/// `[tls]` of cluster.toml. Either all three files are set (TLS on) or none (plain HTTP);
/// an empty string is unset. Paths may contain `{id}`, replaced by the node id, so one
/// cluster.toml serves every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the cluster CA: nodes accept only peers whose certificate it signed,
    /// and clients of the cluster check the nodes' certificates against it. Default
    /// empty (plain HTTP).
    pub ca_file: String,
    /// PEM file of node `{id}`'s certificate (chain), for 127.0.0.1/localhost or the
    /// node's address; shown to clients and, as a client certificate, to peers.
    /// Default empty.
    pub cert_file: String,
    /// PEM file of node `{id}`'s private key (PKCS#8, PKCS#1 or SEC1). Default empty.
    pub key_file: String,
}

impl TlsConfig {
    fn keys(&self) -> [(&'static str, &String); 3] {
        [("ca_file", &self.ca_file), ("cert_file", &self.cert_file), ("key_file", &self.key_file)]
    }

    /// Whether TLS is configured (all three files set).
    pub fn enabled(&self) -> bool {
        self.keys().iter().all(|(_, f)| !f.is_empty())
    }

    /// All three files or none; otherwise says which are missing.
    pub fn check(&self) -> Result<(), String> {
        if self.enabled() || self.keys().iter().all(|(_, f)| f.is_empty()) {
            return Ok(());
        }
        let missing = self
            .keys()
            .iter()
            .filter(|(_, f)| f.is_empty())
            .map(|(k, _)| format!("tls.{k}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(format!(
            "set ca_file, cert_file and key_file together, or none of them (missing: {missing})"
        ))
    }

    /// The three paths for node `id` (`{id}` replaced), if TLS is on.
    pub fn files_for(&self, id: u64) -> Option<TlsFiles> {
        if !self.enabled() {
            return None;
        }
        let sub = |p: &String| PathBuf::from(p.replace("{id}", &id.to_string()));
        Some(TlsFiles {
            ca: sub(&self.ca_file),
            cert: sub(&self.cert_file),
            key: sub(&self.key_file),
        })
    }
}

/// The files of one node, `{id}` replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the {what} {path}: {error}")]
    Read { what: &'static str, path: PathBuf, error: std::io::Error },
    /// The file holds no usable PEM block of the expected kind.
    #[error("{path} is not a usable {what}: {message}")]
    Pem { what: &'static str, path: PathBuf, message: String },
    /// The files do not fit together (a key that is not the certificate's).
    #[error("{0}")]
    Config(String),
}

/// The crypto provider of every TLS configuration here. rustls marks ring's provider
/// deprecated for lacking post-quantum key exchange; it is still supported, and builds
/// without a long C compile.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default rustls provider (idempotent). reqwest builds a rustls
/// configuration for every client, https or not, and needs one.
pub fn install_provider() {
    let _ = CryptoProvider::install_default(Arc::unwrap_or_clone(provider()));
}

fn read_error(what: &'static str, path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    match e {
        rustls::pki_types::pem::Error::Io(error) => {
            TlsError::Read { what, path: path.to_path_buf(), error }
        }
        other => TlsError::Pem { what, path: path.to_path_buf(), message: other.to_string() },
    }
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(what, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_path_buf(),
            message: "no \"BEGIN CERTIFICATE\" block in it".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Pem {
            what: "private key",
            path: path.to_path_buf(),
            message: "no \"BEGIN PRIVATE KEY\" block in it".into(),
        },
        other => read_error("private key", path, other),
    })
}

/// The CA file as a root store.
pub fn load_roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca, "CA certificate")? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            what: "CA certificate",
            path: ca.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A client configuration that trusts only the CA in `ca` and, with `identity`
/// (certificate file, key file), presents that certificate to servers that ask.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let roots = load_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs = load_certs(cert, "certificate")?;
            let key_der = load_key(key)?;
            builder.with_client_auth_cert(certs, key_der).map_err(|e| {
                TlsError::Config(format!("{} does not fit {}: {e}", key.display(), cert.display()))
            })
        }
    }
}

/// A node's TLS: what it serves with and what it calls peers with.
#[derive(Debug, Clone)]
pub struct NodeTls {
    /// The server side: its certificate; client certificates optional but, when shown,
    /// checked against the cluster CA.
    pub server: Arc<ServerConfig>,
    /// The client side: the cluster CA, and its own certificate as client identity.
    pub client: ClientConfig,
}

impl NodeTls {
    /// Loads node `id`'s files; `None` when TLS is off.
    pub fn load(config: &TlsConfig, id: u64) -> Result<Option<NodeTls>, TlsError> {
        let Some(files) = config.files_for(id) else { return Ok(None) };
        let roots = Arc::new(load_roots(&files.ca)?);
        let certs = load_certs(&files.cert, "certificate")?;
        let key = load_key(&files.key)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| {
                TlsError::Config(format!("cannot use the CA {}: {e}", files.ca.display()))
            })?;
        // The node's own certificate must be one its peers accept: signed by the CA,
        // in its validity period, usable as a client certificate.
        let now = rustls::pki_types::UnixTime::now();
        rustls::server::danger::ClientCertVerifier::verify_client_cert(
            verifier.as_ref(),
            &certs[0],
            &certs[1..],
            now,
        )
        .map_err(|e| {
            TlsError::Config(format!(
                "{} is not a certificate the cluster CA {} vouches for: {e}",
                files.cert.display(),
                files.ca.display()
            ))
        })?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| {
                TlsError::Config(format!(
                    "{} does not fit {}: {e}",
                    files.key.display(),
                    files.cert.display()
                ))
            })?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = client_config(&files.ca, Some((&files.cert, &files.key)))?;
        Ok(Some(NodeTls { server: Arc::new(server), client }))
    }
}

/// The TLS configuration of this process's calls to nodes, once installed.
static CLIENT: OnceLock<ClientConfig> = OnceLock::new();

/// Makes every client built through [`client`] from now on speak https with `config`,
/// and [`url`] answer `https://`. Called once at start-up; a later call is ignored.
pub fn install(config: ClientConfig) {
    install_provider();
    let _ = CLIENT.set(config);
}

/// For processes that manage the cluster (the supervisor, `raft-nosql cluster …`): when
/// `config` turns TLS on, calls to nodes go over https, trust the cluster CA and present
/// the certificate of node `first_id` (the supervisor runs on the nodes' host and reads
/// their files), which the peer-only routes (init, membership, faults) require.
pub fn install_for_cluster(config: &TlsConfig, first_id: u64) -> Result<(), TlsError> {
    if let Some(f) = config.files_for(first_id) {
        install(client_config(&f.ca, Some((&f.cert, &f.key)))?);
    }
    Ok(())
}

/// Whether this process talks https to nodes.
pub fn enabled() -> bool {
    CLIENT.get().is_some()
}

/// `http` or `https`: the scheme of this process's calls to nodes.
pub fn scheme() -> &'static str {
    if enabled() {
        "https"
    } else {
        "http"
    }
}

/// The URL of `path` (with its leading `/`) on the node at `addr`.
pub fn url(addr: &str, path: &str) -> String {
    format!("{}://{addr}{path}", scheme())
}

/// Adds the cluster CA and this process's client certificate (when [`install`]ed) to an
/// HTTP client of node traffic. Every place that builds such a client goes through here.
pub fn client(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    install_provider();
    match CLIENT.get() {
        Some(config) => builder.tls_backend_preconfigured(config.clone()),
        None => builder,
    }
}

/// Opens a TLS session to the node at `addr` (`host:port`) over `tcp`, with the
/// installed settings; `None` when this process talks plain http. For clients that drive
/// hyper themselves (the load generator).
pub async fn connect(
    addr: &str,
    tcp: tokio::net::TcpStream,
) -> Option<std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let config = CLIENT.get()?;
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    let name = match rustls::pki_types::ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(e) => return Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config.clone()));
    Some(connector.connect(name, tcp).await)
}

/// Set on every request that arrived over TLS: whether the other end showed a
/// certificate that chains to the cluster CA (a certificate of another CA fails the
/// handshake before any request). Absent on plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCert {
    pub verified: bool,
}

/// How long a connection may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `filter` over TLS on `listener` until `shutdown` resolves, then lets open
/// connections finish their requests (graceful, like warp's own server).
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    filter: F,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()>,
) where
    F: warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let svc = warp::service(filter.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            if !starts_with_tls(&tcp).await {
                answer_plain_http(tcp).await;
                return;
            }
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return refused(remote, &e.to_string()),
                Err(_) => return refused(remote, "handshake timed out"),
            };
            let cert = ClientCert {
                verified: tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()),
            };
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(cert);
                    let mut svc = svc.clone();
                    tower_service::Service::call(&mut svc, req)
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How often the same refusal (same host, same reason) is logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Logs `tls_refused` for a failed handshake, once per host and reason a minute: a
/// peer of another CA retries every few hundred milliseconds, and one line says it all.
fn refused(remote: std::net::SocketAddr, error: &str) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: OnceLock<Mutex<HashMap<(std::net::IpAddr, String), Instant>>> = OnceLock::new();
    let mut last = LAST.get_or_init(Default::default).lock().expect("refusal log lock");
    let now = Instant::now();
    last.retain(|_, at| now.duration_since(*at) < REFUSAL_LOG_EVERY);
    let key = (remote.ip(), error.to_string());
    if last.contains_key(&key) {
        return;
    }
    last.insert(key, now);
    tracing::info!(
        event = "tls_refused",
        peer = %remote,
        error,
        "TLS handshake refused (the same refusal is logged at most once a minute)"
    );
}

/// Whether the first byte the client sent opens a TLS handshake record (0x16). A client
/// that speaks plain HTTP to a TLS port sends a method name instead.
async fn starts_with_tls(tcp: &tokio::net::TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        // Closed, failed or silent: let the handshake report it.
        _ => true,
    }
}

/// Tells a plain-HTTP client, in plain HTTP, that this node speaks https (a 400 with the
/// usual JSON error body), rather than dropping the connection without a word.
async fn answer_plain_http(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Read what the client sent, so closing does not reset the connection before it
    // reads the answer.
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await;
    let body = serde_json::json!({"error": {
        "code": "https_required",
        "message": "this node serves https only: use an https:// address and the \
                    cluster's CA certificate (--ca-file)",
    }})
    .to_string();
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(body.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_files_or_none() {
        assert!(TlsConfig::default().check().is_ok());
        let half = TlsConfig { ca_file: "ca.pem".into(), ..Default::default() };
        let err = half.check().unwrap_err();
        assert!(err.contains("tls.cert_file, tls.key_file"), "{err}");
        assert!(!half.enabled());
    }

    #[test]
    fn id_is_replaced_in_every_path() {
        let c = TlsConfig {
            ca_file: "certs/ca.pem".into(),
            cert_file: "certs/node{id}.pem".into(),
            key_file: "certs/node{id}-key.pem".into(),
        };
        let f = c.files_for(2).unwrap();
        assert_eq!(f.cert, PathBuf::from("certs/node2.pem"));
        assert_eq!(f.key, PathBuf::from("certs/node2-key.pem"));
        assert_eq!(f.ca, PathBuf::from("certs/ca.pem"));
    }

    #[test]
    fn a_missing_or_wrong_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = client_config(&missing, None).unwrap_err().to_string();
        assert!(
            err.contains("cannot read the CA certificate") && err.contains("nope.pem"),
            "{err}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = client_config(&junk, None).unwrap_err().to_string();
        assert!(err.contains("is not a usable CA certificate"), "{err}");
    }
}
