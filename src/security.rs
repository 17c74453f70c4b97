//! Peer and admin authentication: the cluster secret.
//!
//! Every process of a cluster may be given the same secret (`[security] secret_file` in
//! cluster.toml, or env `RAFT_NOSQL_SECRET_FILE`). A node then accepts the requests that
//! can change the cluster only from processes that prove they know it:
//!
//! - the Raft RPCs `/raft/*` (append, vote, snapshot install, read index);
//! - the admin and control calls `/admin/*` (init, faults, simulation, membership, the
//!   log strips);
//! - DynamoDB writes forwarded by a follower to the leader (they carry
//!   `x-raft-forwarded-from`, which makes the leader answer them instead of forwarding
//!   them again).
//!
//! The proof is the header `x-raft-nosql-auth`: the lowercase hex of
//! HMAC-SHA256(secret, `"raft-nosql cluster v1"`). It is the same on every request, so it
//! is a bearer token derived from the secret rather than the secret itself (the secret
//! file never leaves the machine). A request without it, or with a wrong one, is answered
//! 401 `unauthorized` before any handler runs, so nothing changes; the node logs
//! `peer_rejected` once per peer (its IP address and, when the request names one, the
//! node id it claims).
//!
//! The client data API (tables and items, the DynamoDB API, `/status`, `/metrics`) stays
//! open: the secret keeps strangers out of the cluster's internals, not out of its data.
//!
//! Without a secret, nothing is checked (as before), and a node refuses to listen on a
//! non-loopback address unless told `--insecure` ([`check_listen`]).
//!
//! Shortcuts taken:
//! - No encryption: on plain HTTP the token travels in clear, and whoever can read the
//!   traffic can replay it. The secret is only as good as the network's privacy (TLS
//!   closes that gap).
//! - No per-node identity: every member holds the same secret, so a member cannot be
//!   told from another by its proof; the `x-raft-from` node id is what it claims.
//! - No rotation: changing the secret means restarting every node with the new file.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The request header that carries the proof of the cluster secret.
pub const AUTH_HEADER: &str = "x-raft-nosql-auth";

/// The message the proof is the HMAC of. A new version of the scheme gets a new text.
const PROOF_MESSAGE: &[u8] = b"raft-nosql cluster v1";

/// Fewest bytes a secret file must hold (after trimming whitespace): 16 bytes is 128 bits
/// of key if they are random; `head -c 32 /dev/urandom | base64` gives 44.
pub const MIN_SECRET_LEN: usize = 16;

/// Most distinct peers logged as `peer_rejected`: the claimed node id is the sender's to
/// choose, so without a bound a stranger could fill memory and the log by varying it.
pub const MAX_REPORTED_PEERS: usize = 1024;

/// The secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret file cannot be read.
    #[error("cannot read the cluster secret {}: {message} (security.secret_file / RAFT_NOSQL_SECRET_FILE; make one with `head -c 32 /dev/urandom | base64 > secret`)", .path.display())]
    Unreadable { path: PathBuf, message: String },
    /// The secret file is (nearly) empty.
    #[error("the cluster secret {} holds {len} bytes, fewer than {MIN_SECRET_LEN}; make one with `head -c 32 /dev/urandom | base64 > secret`", .path.display())]
    TooShort { path: PathBuf, len: usize },
}

/// A process's side of the cluster secret: the proof it sends, and the check of the
/// proofs it receives. `Security::default()` has no secret: nothing is sent or checked.
#[derive(Debug, Default)]
pub struct Security {
    /// The hex proof, when a secret is configured.
    proof: Option<String>,
    /// Peers already logged as `peer_rejected`.
    rejected: Mutex<HashSet<String>>,
}

impl Security {
    /// The security of `config`: reads `security.secret_file` if it is set.
    pub fn from_config(config: &crate::config::ClusterConfig) -> Result<Security, SecretError> {
        match &config.security.secret_file {
            Some(path) => Security::from_file(path),
            None => Ok(Security::default()),
        }
    }

    /// Reads the secret from `path`. Leading and trailing whitespace (the newline that
    /// `base64` writes) is not part of it.
    pub fn from_file(path: &Path) -> Result<Security, SecretError> {
        let bytes = std::fs::read(path).map_err(|e| SecretError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort { path: path.to_path_buf(), len: secret.len() });
        }
        Ok(Security::from_secret(secret))
    }

    /// The security of a process that knows `secret`.
    pub fn from_secret(secret: &[u8]) -> Security {
        Security { proof: Some(proof(secret)), rejected: Mutex::default() }
    }

    /// Whether a secret is configured (requests are then checked and proofs sent).
    pub fn enabled(&self) -> bool {
        self.proof.is_some()
    }

    /// Adds the proof as a default header to every request of a client built from
    /// `builder`: the one place where node, supervisor and CLI clients get it.
    pub fn client_builder(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match &self.proof {
            Some(p) => {
                let mut headers = reqwest::header::HeaderMap::new();
                let mut value =
                    reqwest::header::HeaderValue::from_str(p).expect("a hex proof is a header");
                value.set_sensitive(true);
                headers.insert(AUTH_HEADER, value);
                builder.default_headers(headers)
            }
            None => builder,
        }
    }

    /// Whether a request carrying `header` (the value of [`AUTH_HEADER`], if any) is let
    /// in: always without a secret; with one, only with the right proof (compared in
    /// constant time).
    pub fn admits(&self, header: Option<&[u8]>) -> bool {
        match &self.proof {
            None => true,
            Some(p) => header.is_some_and(|h| constant_time_eq(p.as_bytes(), h)),
        }
    }

    /// Records a refused request from `peer`; true the first time this peer is refused
    /// (the caller then logs `peer_rejected`), for up to [`MAX_REPORTED_PEERS`] peers.
    pub fn first_rejection(&self, peer: &str) -> bool {
        let mut seen = self.rejected.lock().expect("rejected peers lock");
        if seen.len() >= MAX_REPORTED_PEERS || seen.contains(peer) {
            return false;
        }
        seen.insert(peer.to_string())
    }
}

/// The proof of `secret`: hex HMAC-SHA256(secret, "raft-nosql cluster v1").
pub fn proof(secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(PROOF_MESSAGE);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so the time taken does not tell
/// an attacker how much of a guessed proof was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The address a node may not listen on without a secret or `--insecure`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without a cluster secret: anyone who can reach it could \
     send Raft messages and admin calls to this node. Set `secret_file` in the [security] \
     section of cluster.toml (or RAFT_NOSQL_SECRET_FILE) to a file made with \
     `head -c 32 /dev/urandom | base64 > secret`, the same file on every host; or pass \
     --insecure to run without one on a network you trust"
)]
pub struct InsecureListen {
    pub addr: String,
}

/// Whether a process may listen on `addr`: always on loopback; elsewhere only with a
/// secret (`secured`) or when told `--insecure`. An address that does not parse is left
/// to the bind to report.
pub fn check_listen(addr: &str, secured: bool, insecure: bool) -> Result<(), InsecureListen> {
    let loopback = addr.parse::<SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(true);
    if loopback || secured || insecure {
        Ok(())
    } else {
        Err(InsecureListen { addr: addr.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_is_the_hex_hmac_of_the_fixed_message() {
        // HMAC-SHA256("key", "raft-nosql cluster v1"), computed independently with
        // `printf 'raft-nosql cluster v1' | openssl dgst -sha256 -hmac key`.
        assert_eq!(
            proof(b"key"),
            "8ac5a03bfd3df1b040802585b682a1b0f55817d82b82212745520a0bea2163e3"
        );
        assert_ne!(proof(b"key"), proof(b"kez"));
    }

    #[test]
    fn only_the_right_proof_is_admitted_when_a_secret_is_set() {
        let s = Security::from_secret(b"0123456789abcdef0123");
        assert!(s.enabled());
        let right = proof(b"0123456789abcdef0123");
        assert!(s.admits(Some(right.as_bytes())));
        assert!(!s.admits(None));
        assert!(!s.admits(Some(proof(b"another secret, same length").as_bytes())));
        assert!(!s.admits(Some(&right.as_bytes()[..63])));
        assert!(!s.admits(Some(b"")));
        let open = Security::default();
        assert!(!open.enabled());
        assert!(open.admits(None));
    }

    #[test]
    fn each_peer_is_reported_once() {
        let s = Security::from_secret(b"0123456789abcdef");
        assert!(s.first_rejection("10.0.0.9"));
        assert!(!s.first_rejection("10.0.0.9"));
        assert!(s.first_rejection("10.0.0.9 node 2"));
        for i in 3..=MAX_REPORTED_PEERS {
            assert!(s.first_rejection(&format!("10.0.0.9 node {i}")));
        }
        assert!(!s.first_rejection("10.0.0.10"), "no more than MAX_REPORTED_PEERS are kept");
    }

    #[test]
    fn a_secret_file_is_trimmed_and_must_not_be_short() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        let s = Security::from_file(&f).unwrap();
        assert!(s.admits(Some(proof(b"0123456789abcdef0123").as_bytes())));
        std::fs::write(&f, "short\n").unwrap();
        let err = Security::from_file(&f).unwrap_err().to_string();
        assert!(err.contains("fewer than 16") && err.contains("/dev/urandom"), "{err}");
        let err = Security::from_file(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.contains("cannot read the cluster secret"), "{err}");
    }

    #[test]
    fn non_loopback_listen_needs_a_secret_or_insecure() {
        assert!(check_listen("127.0.0.1:8100", false, false).is_ok());
        assert!(check_listen("[::1]:8100", false, false).is_ok());
        let err = check_listen("0.0.0.0:8100", false, false).unwrap_err().to_string();
        assert!(err.contains("0.0.0.0:8100") && err.contains("secret_file"), "{err}");
        assert!(err.contains("--insecure"), "{err}");
        assert!(check_listen("10.0.0.1:8100", false, false).is_err());
        assert!(check_listen("10.0.0.1:8100", true, false).is_ok());
        assert!(check_listen("0.0.0.0:8100", false, true).is_ok());
    }
}
