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
        let tcp = tokio::net::TcpStream::connect(tls.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(t.host.clone()).unwrap();
        let stream = connector.connect(name, tcp).await.expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(expected));
    }

    // Requests over TLS, both protocols; the backend is told the client used https.
    let url = format!("https://{}:{}/x", t.host, tls.addr.port());
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
            .resolve(&t.host, tls.addr)
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
