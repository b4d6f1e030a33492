//! TLS with ALPN on the data plane, and HTTP/2 (h2c) to backends.

mod common;

use std::sync::Arc;

use common::{Harness, Upstream, route, start, text_of};
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};

/// A self-signed certificate for `host` (openssl, as an operator would make one).
fn certificate(host: &str) -> (tempdir::Dir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempdir::Dir::new();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=tenantry-test"])
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{host}"))
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (dir, cert, key)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("tenantry-tls-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn client_config(cert: &std::path::Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

#[tokio::test]
async fn tls_negotiates_h2_or_http1_by_alpn_and_tells_the_backend_https() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let (_dir, cert, key) = certificate(&t.host);
    let (c, k) = (cert.clone(), key.clone());
    let tls = h
        .replica(move |config| {
            config.tls_cert = Some(c);
            config.tls_key = Some(k);
        })
        .await;

    // ALPN: the gateway prefers h2, and speaks http/1.1 to a client that only offers that.
    for (offered, expected) in [
        (&[&b"h2"[..], b"http/1.1"][..], &b"h2"[..]),
        (&[&b"http/1.1"[..]][..], &b"http/1.1"[..]),
    ] {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&cert, offered)));
        let tcp = tokio::net::TcpStream::connect(tls.data_addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(t.host.clone()).unwrap();
        let stream = connector.connect(name, tcp).await.expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(expected));
    }

    // Requests over TLS, both protocols; the backend is told the client used https.
    let url = format!("https://{}:{}/x", t.host, tls.data_addr.port());
    for (builder, version) in [
        (reqwest::Client::builder(), http::Version::HTTP_2),
        (
            reqwest::Client::builder().http1_only(),
            http::Version::HTTP_11,
        ),
    ] {
        let alpn: &[&[u8]] = if version == http::Version::HTTP_2 {
            &[b"h2", b"http/1.1"]
        } else {
            &[b"http/1.1"]
        };
        let client = builder
            .use_preconfigured_tls(client_config(&cert, alpn))
            .resolve(&t.host, tls.data_addr)
            .build()
            .unwrap();
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), version);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("xfp=https") && text.contains("proto=https"),
            "{text}"
        );
    }

    // Plain HTTP is not served on a TLS port.
    let plain = Harness::client_to(&tls, &t.host, "/");
    assert!(plain.0.get(plain.1).send().await.is_err());
}

/// The certificate a TLS handshake for `name` gets from `gateway`, as its DER bytes; `None`
/// when the handshake fails.
async fn served_certificate(gateway: &common::Gateway, name: &str) -> Option<Vec<u8>> {
    // Trust nothing: the verifier records what the server presents and refuses it, so the
    // handshake fails after showing it.
    #[derive(Debug)]
    struct Record(
        std::sync::OnceLock<Vec<u8>>,
        Arc<rustls::crypto::CryptoProvider>,
    );
    impl rustls::client::danger::ServerCertVerifier for Record {
        fn verify_server_cert(
            &self,
            end_entity: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            let _ = self.0.set(end_entity.to_vec());
            Err(rustls::Error::General("recorded".into()))
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("recorded".into()))
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            signed: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.verify_tls12_signature(message, cert, signed)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.1.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let record = Arc::new(Record(std::sync::OnceLock::new(), provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(record.clone())
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gateway.data_addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let _ = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await;
    record.0.get().cloned()
}

fn der_of(pem: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_file(pem).unwrap().to_vec()
}

#[tokio::test]
async fn custom_domains_get_their_own_certificates_by_sni_and_changes_apply_without_restart() {
    let h = start().await;
    let (_default_dir, default_cert, default_key) = certificate("*.localhost");
    let dir = tempdir::Dir::new();
    let install = |host: &str| {
        let (made, cert, key) = certificate(host);
        std::fs::copy(&cert, dir.0.join(format!("{host}.crt"))).unwrap();
        std::fs::copy(&key, dir.0.join(format!("{host}.key"))).unwrap();
        drop(made);
        der_of(&dir.0.join(format!("{host}.crt")))
    };
    let shop = install("shop.acme.test");
    // A pair whose certificate is another host's is refused, and says so; the others load.
    let (other, cert, key) = certificate("elsewhere.test");
    std::fs::copy(&cert, dir.0.join("wrong.acme.test.crt")).unwrap();
    std::fs::copy(&key, dir.0.join("wrong.acme.test.key")).unwrap();
    drop(other);

    let (c, k, d) = (default_cert.clone(), default_key.clone(), dir.0.clone());
    let tls = h
        .replica(move |config| {
            config.tls_cert = Some(c);
            config.tls_key = Some(k);
            config.tls_dir = Some(d);
        })
        .await;
    let certificates = tls.certificates.clone().expect("TLS is on");
    assert_eq!(certificates.hosts(), ["shop.acme.test"]);

    assert_eq!(
        served_certificate(&tls, "shop.acme.test").await,
        Some(shop.clone())
    );
    assert_eq!(
        served_certificate(&tls, "SHOP.acme.test").await,
        Some(shop.clone()),
        "names are case-insensitive"
    );
    let default = der_of(&default_cert);
    for name in ["acme.localhost", "wrong.acme.test", "unknown.test"] {
        assert_eq!(
            served_certificate(&tls, name).await,
            Some(default.clone()),
            "{name} gets the default chain"
        );
    }

    // Added, renewed and removed while running.
    let blog = install("blog.acme.test");
    let renewed = install("shop.acme.test");
    assert_ne!(renewed, shop);
    certificates.rescan();
    assert_eq!(certificates.hosts(), ["blog.acme.test", "shop.acme.test"]);
    assert_eq!(served_certificate(&tls, "blog.acme.test").await, Some(blog));
    assert_eq!(
        served_certificate(&tls, "shop.acme.test").await,
        Some(renewed.clone())
    );

    // A renewal caught half-written (the new key not yet there) keeps the old pair.
    let (next, cert, _) = certificate("shop.acme.test");
    std::fs::copy(&cert, dir.0.join("shop.acme.test.crt")).unwrap();
    drop(next);
    certificates.rescan();
    assert_eq!(
        served_certificate(&tls, "shop.acme.test").await,
        Some(renewed)
    );

    std::fs::remove_file(dir.0.join("blog.acme.test.crt")).unwrap();
    certificates.rescan();
    assert_eq!(certificates.hosts(), ["shop.acme.test"]);
    assert_eq!(
        served_certificate(&tls, "blog.acme.test").await,
        Some(default)
    );
}

#[tokio::test]
async fn a_route_with_h2c_backends_reaches_them_over_http2() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    let mut r = route("/h2", BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
    r.upstream_protocol = pb::UpstreamProtocol::H2c as i32;
    let saved = h.route(&t, r).await;
    assert_eq!(saved.upstream_protocol, pb::UpstreamProtocol::H2c as i32);
    h.route(&t, route("/h1", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let c = h.client(&t.host);
    let many: Vec<_> = (0..20)
        .map(|_| c.get(h.url(&t.host, "/h2/x")).send())
        .collect();
    for r in futures::future::join_all(many).await {
        let text = r.unwrap().text().await.unwrap();
        assert!(text.starts_with("a /h2/x ver=HTTP/2.0"), "{text}");
    }
    let text = text_of(c.get(h.url(&t.host, "/h1/x"))).await;
    assert!(text.starts_with("a /h1/x ver=HTTP/1.1"), "{text}");
    // Listed as configured.
    let routes = h
        .config
        .clone()
        .list_routes(common::authed(
            tenantry_proto::gateway::v1::ListRoutesRequest {},
            &h.member(&t),
        ))
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert!(
        routes
            .iter()
            .any(|r| r.upstream_protocol == pb::UpstreamProtocol::H2c as i32)
    );
}
