//! TLS on the data plane: rustls with the ring provider, ALPN offering `h2` then `http/1.1`.
//!
//! Certificates: a default chain (typically the base domain's wildcard) and, for tenants'
//! custom domains, a directory of `<host>.crt` (PEM chain) and `<host>.key` (PEM key) pairs,
//! chosen by the name the client asks for (SNI); other names get the default chain. The
//! directory is read again every [`RESCAN`], so a domain's certificate is added, renewed or
//! removed without a restart. A pair that does not load (unreadable, the key not the
//! certificate's, the certificate not for its file's host, a renewal caught half-written)
//! leaves that host with what it had, and says so in the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ResolvesServerCertUsingSni};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the certificate directory is read again.
pub const RESCAN: Duration = Duration::from_secs(10);

/// A certificate file pair as it was read: both files' modification times and sizes.
type Stamp = [(SystemTime, u64); 2];

/// The data plane's certificates, by the name a client asks for.
pub struct Certificates {
    provider: Arc<CryptoProvider>,
    default: Option<Arc<CertifiedKey>>,
    dir: Option<PathBuf>,
    /// Each host's certificate, with what its files looked like when they were read.
    by_host: ArcSwap<HashMap<String, (Stamp, Arc<CertifiedKey>)>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("default", &self.default.is_some())
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls hands the name over lower-case.
        hello
            .server_name()
            .and_then(|name| self.by_host.load().get(name).map(|(_, c)| c.clone()))
            .or_else(|| self.default.clone())
    }
}

/// The acceptor for a default chain (`cert`, `key`) and/or a directory of per-host pairs, and
/// the certificates to rescan. Errors name the file.
pub fn acceptor(
    default: Option<(&Path, &Path)>,
    dir: Option<&Path>,
) -> Result<(TlsAcceptor, Arc<Certificates>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default = match default {
        Some((cert, key)) => Some(Arc::new(
            load(&provider, cert, key, None).map_err(|e| format!("gateway-tls-cert {e}"))?,
        )),
        None => None,
    };
    if let Some(dir) = dir {
        std::fs::read_dir(dir).map_err(|e| format!("gateway-tls-dir {}: {e}", dir.display()))?;
    }
    let certificates = Arc::new(Certificates {
        provider: provider.clone(),
        default,
        dir: dir.map(Path::to_path_buf),
        by_host: ArcSwap::default(),
    });
    certificates.rescan();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certificates))
}

impl Certificates {
    /// Hosts with a certificate of their own.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<_> = self.by_host.load().keys().cloned().collect();
        hosts.sort_unstable();
        hosts
    }

    /// Reads the directory again: new and changed pairs are loaded, removed ones dropped.
    pub fn rescan(&self) {
        let Some(dir) = &self.dir else { return };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "certificate directory unreadable: certificates kept as they were");
                return;
            }
        };
        let mut gone = HashMap::clone(&self.by_host.load());
        let mut next = HashMap::with_capacity(gone.len());
        let mut changed = false;
        for entry in entries.flatten() {
            let cert = entry.path();
            if cert.extension().is_none_or(|e| e != "crt") {
                continue;
            }
            let Some(host) = cert.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let host = host.to_ascii_lowercase();
            let key = cert.with_extension("key");
            let stamp = stamp_of(&cert, &key);
            let previous = gone.remove(&host);
            if let (Some((was, _)), Some(now)) = (&previous, stamp)
                && *was == now
            {
                next.extend(previous.map(|p| (host, p)));
                continue;
            }
            let read = stamp
                .ok_or_else(|| format!("{}: no matching .key file", cert.display()))
                .and_then(|stamp| Ok((stamp, load(&self.provider, &cert, &key, Some(&host))?)));
            match read {
                Ok((stamp, certified)) => {
                    tracing::info!(%host, "certificate loaded");
                    changed = true;
                    next.insert(host, (stamp, Arc::new(certified)));
                }
                Err(e) => {
                    tracing::warn!(%host, error = %e, "certificate not loaded: the host keeps what it had");
                    next.extend(previous.map(|p| (host, p)));
                }
            }
        }
        for host in gone.keys() {
            tracing::info!(%host, "certificate removed");
            changed = true;
        }
        if changed {
            self.by_host.store(Arc::new(next));
        }
    }
}

fn stamp_of(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    Some([one(cert)?, one(key)?])
}

/// A chain and its key; the key must be the certificate's, and the certificate for `host`
/// when one is given. Errors name the file.
fn load(
    provider: &CryptoProvider,
    cert: &Path,
    key: &Path,
    host: Option<&str>,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    if let Some(host) = host {
        ResolvesServerCertUsingSni::new()
            .add(host, certified.clone())
            .map_err(|e| format!("{}: not a certificate for {host}: {e}", cert.display()))?;
    }
    Ok(certified)
}
