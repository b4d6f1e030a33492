//! `Stripe-Signature` headers made by Stripe's own npm library
//! (`tests/stripe-sign/`), run as a child process.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tokio::sync::OnceCell;

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/stripe-sign")
}

/// `npm ci` once per test binary, if the harness was never installed.
async fn installed() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            if harness_dir().join("node_modules/stripe").exists() {
                return;
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(harness_dir())
                .status()
                .await
                .expect("npm must be installed");
            assert!(status.success(), "npm ci failed in tests/stripe-sign");
        })
        .await;
}

/// The header `stripe.webhooks.generateTestHeaderString` makes for `payload`.
pub async fn header(payload: &[u8], secret: &str, timestamp: i64) -> String {
    installed().await;
    let mut child = Command::new("node")
        .arg("sign.mjs")
        .args(["--secret", secret, "--timestamp", &timestamp.to_string()])
        .current_dir(harness_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed");
    let mut stdin = child.stdin.take().expect("sign.mjs's stdin is piped");
    stdin
        .write_all(payload)
        .await
        .expect("write the payload to sign.mjs");
    drop(stdin);
    let out = child.wait_with_output().await.expect("sign.mjs ends");
    assert!(out.status.success(), "sign.mjs failed: {:?}", out.status);
    String::from_utf8(out.stdout)
        .expect("sign.mjs prints text")
        .trim()
        .to_owned()
}
