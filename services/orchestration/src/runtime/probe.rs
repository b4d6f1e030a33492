//! The HTTP health probe: `GET <path>` on an instance's loopback port, healthy on a 2xx or
//! 3xx status line within the timeout.
//!
//! Written on a bare TCP stream: the address is always one this runtime allocated on
//! loopback (a tenant chooses only the path, validated in the spec), so no outbound policy
//! applies and no HTTP client is needed for one status line.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Probes `addr` at `path`; `Err` says why it is not healthy.
pub async fn http(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, get(addr, path)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    // The status line fits in the first bytes; the rest of the answer is not read.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream
            .read(&mut head[read..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| "not an HTTP answer".to_owned())?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn server(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_2xx_is_healthy_and_a_5xx_or_silence_is_not() {
        let ok = server("HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(http(ok, "/", Duration::from_secs(1)).await, Ok(()));
        let bad = server("HTTP/1.0 503 Unavailable\r\n\r\n").await;
        assert_eq!(
            http(bad, "/healthz", Duration::from_secs(1)).await,
            Err("status 503".into())
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        let refused = http(silent, "/", Duration::from_millis(100)).await;
        assert!(refused.is_err(), "{refused:?}");
    }
}
