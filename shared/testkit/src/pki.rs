//! Certificates for tests that speak TLS (mutual TLS with a fake third party, a listener that
//! requires a client certificate), made by the `openssl` command line in a directory of the
//! test's own, deleted when the [`Pki`] is dropped. No crate: a certificate generator would
//! add a dozen crates to every test build for what one command does.
//!
//! Keys are ECDSA P-256 (quick to make), PKCS#8 PEM; certificates last two days.

use std::path::{Path, PathBuf};
use std::process::Command;

use uuid::Uuid;

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test's directory of certificates.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command runs: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

impl Pki {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tenantry-pki-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, name: &str) -> Pair {
        Pair {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// A self-signed certificate authority.
    pub fn ca(&self, name: &str) -> Pair {
        self.self_signed(
            name,
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )
    }

    /// A server certificate for `127.0.0.1` and `localhost`, signed by `ca`.
    pub fn server(&self, ca: &Pair, name: &str) -> Pair {
        self.issue(
            ca,
            name,
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
    }

    /// A client certificate, signed by `ca`.
    pub fn client(&self, ca: &Pair, name: &str) -> Pair {
        self.issue(ca, name, "extendedKeyUsage=clientAuth\n")
    }

    /// A client certificate signed by nobody but itself: an impostor to any verifier.
    pub fn self_signed_client(&self, name: &str) -> Pair {
        self.self_signed(
            name,
            &[
                "basicConstraints=critical,CA:FALSE",
                "extendedKeyUsage=clientAuth",
            ],
        )
    }

    fn self_signed(&self, name: &str, extensions: &[&str]) -> Pair {
        let pair = self.paths(name);
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-x509"];
        args.extend(KEY);
        args.extend(["-nodes", "-days", "2", "-subj", &subject]);
        args.extend(["-keyout", text(&pair.key), "-out", text(&pair.cert)]);
        for extension in extensions {
            args.extend(["-addext", extension]);
        }
        openssl(&args);
        pair
    }

    fn issue(&self, ca: &Pair, name: &str, extensions: &str) -> Pair {
        let pair = self.paths(name);
        let csr = self.dir.join(format!("{name}.csr"));
        let ext = self.dir.join(format!("{name}.ext"));
        let extensions = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"
        );
        std::fs::write(&ext, extensions).expect("write the extensions file");
        let subject = format!("/CN={name}");
        let mut args = vec!["req"];
        args.extend(KEY);
        args.extend([
            "-nodes",
            "-subj",
            &subject,
            "-keyout",
            text(&pair.key),
            "-out",
            text(&csr),
        ]);
        openssl(&args);
        let serial = format!("0x{}", Uuid::new_v4().simple());
        openssl(&[
            "x509",
            "-req",
            "-in",
            text(&csr),
            "-CA",
            text(&ca.cert),
            "-CAkey",
            text(&ca.key),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            text(&ext),
            "-out",
            text(&pair.cert),
        ]);
        pair
    }
}
