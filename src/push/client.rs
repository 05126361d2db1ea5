//! The HTTP client pushes go through: timeouts, no redirects, no proxy,
//! and a resolver that hands it public addresses only; TLS with the public
//! roots, or more (`--push-ca-file`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a push service may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one push may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `error` is [`PublicOnly`] refusing every address: that does
/// not change with a retry.
pub(super) fn refused_address(error: &ureq::Transport) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<io::Error>())
        .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
}

/// The HTTP client pushes go through: timeouts, no redirects, no proxy,
/// a resolver that hands it public addresses only, and `tls` if given
/// (else the public roots of trust).
pub(super) fn agent(allow_private: bool, tls: Option<Arc<rustls::ClientConfig>>) -> ureq::Agent {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirects(0)
        .resolver(PublicOnly { allow_private });
    if let Some(tls) = tls {
        builder = builder.tls_config(tls);
    }
    builder.build()
}

/// A TLS client that trusts the public roots and the certificates in the
/// PEM file at `path` (`--push-ca-file`).
pub fn trusting(path: &Path) -> io::Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0;
    for certificate in CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
    {
        let certificate = certificate.map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid(format!("{}: no certificate", path.display())));
    }
    rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| invalid(e.to_string()))
}

/// Resolves a push service's name, and keeps only the addresses a push
/// may go to: the client connects to nothing else.
struct PublicOnly {
    allow_private: bool,
}

impl ureq::Resolver for PublicOnly {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private {
            return Ok(addresses);
        }
        let public: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| super::address::is_public(address.ip()))
            .collect();
        if public.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the push service resolves to no public address",
            ));
        }
        Ok(public)
    }
}
