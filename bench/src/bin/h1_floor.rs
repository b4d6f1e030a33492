//! Measurement only, not Tenantry's proxy: the floor of an HTTP/1.1 proxy path written for the
//! proxy (heads parsed with httparse into borrowed slices, no header maps, no channels between
//! tasks), doing the gateway's per-request work: the forwarding headers and a request id, a
//! limiter's compare-and-swap, usage and latency counters, the rate-limit headers.
//!
//! `gateway_vs_nginx --floor` runs it beside nginx and the gateway, to show what the issue's
//! "hyper 1, no hand-written HTTP parsing" costs (bench/README.md, ADR 0004). It handles only
//! what that benchmark sends: `Content-Length` bodies, one upstream connection per client
//! connection, no timeouts, no chunked bodies, no upgrades.
//!
//! `H1_FLOOR_LISTEN=127.0.0.1:8080 H1_FLOOR_UPSTREAM=127.0.0.1:8081 h1_floor`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What every worker shares, as the gateway's limiter, usage and histogram are shared.
struct Shared {
    upstream: SocketAddr,
    limiter: AtomicU64,
    requests: AtomicU64,
    bytes_out: AtomicU64,
    latency: [AtomicU64; 12],
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = std::env::var("H1_FLOOR_LISTEN")
        .context("H1_FLOOR_LISTEN")?
        .parse()?;
    let upstream: SocketAddr = std::env::var("H1_FLOOR_UPSTREAM")
        .context("H1_FLOOR_UPSTREAM")?
        .parse()?;
    let shared = Arc::new(Shared {
        upstream,
        limiter: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        latency: Default::default(),
    });
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    // As the gateway: one single-threaded runtime per core, accepting from one socket.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let mut threads = Vec::new();
    for _ in 0..workers {
        let (listener, shared) = (listener.try_clone()?, shared.clone());
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                loop {
                    let (tcp, peer) = listener.accept().await?;
                    tcp.set_nodelay(true)?;
                    let shared = shared.clone();
                    tokio::spawn(async move { connection(tcp, peer, &shared).await });
                }
            })
        }));
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(())
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn content_length(value: &[u8]) -> usize {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A random UUID v4, as the gateway's request id (splitmix64).
fn request_id(state: &mut u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut next = || {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&next().to_le_bytes());
    bytes[8..].copy_from_slice(&next().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// Reads more of a message into `buf`; 0 at the end of the stream.
async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(8192);
    }
    tcp.read_buf(buf).await
}

fn invalid(e: httparse::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Copies a message's headers into `out`, less the hop-by-hop ones and `Host` (each side sets
/// its own): the body's length, and whether the sender closes the connection after it.
fn copy_headers(headers: &[httparse::Header<'_>], out: &mut Vec<u8>) -> (usize, bool) {
    let (mut body, mut close) = (0, false);
    for h in headers {
        close |=
            h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close");
        if h.name.eq_ignore_ascii_case("host")
            || HOP_BY_HOP.iter().any(|n| h.name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            body = content_length(h.value);
        }
        push_header(out, h.name.as_bytes(), h.value);
    }
    (body, close)
}

/// The request as the backend gets it, in `out`: the head's and the body's lengths, and
/// whether the client closes the connection after it.
fn request_head(
    input: &[u8],
    ip: &str,
    rng: &mut u64,
    out: &mut Vec<u8>,
) -> std::io::Result<Option<(usize, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = request.parse(input).map_err(invalid)? else {
        return Ok(None);
    };
    out.clear();
    out.extend_from_slice(request.method.unwrap_or("GET").as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path.unwrap_or("/").as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let (body, close) = copy_headers(request.headers, out);
    let named = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    };
    let host = named("host").map_or(&b""[..], |h| h.value);
    let host = host.split(|b| *b == b':').next().unwrap_or_default();
    push_header(out, b"host", b"backend");
    push_header(out, b"x-forwarded-for", ip.as_bytes());
    push_header(out, b"x-forwarded-host", host);
    push_header(out, b"x-forwarded-proto", b"http");
    out.extend_from_slice(b"forwarded: for=");
    out.extend_from_slice(ip.as_bytes());
    out.extend_from_slice(b";host=");
    out.extend_from_slice(host);
    out.extend_from_slice(b";proto=http\r\n");
    if named("x-request-id").is_none() {
        out.extend_from_slice(b"x-request-id: ");
        request_id(rng, out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some((head, body, close)))
}

/// The response as the client gets it, in `out`: the head's and the body's lengths, and
/// whether the backend closes the connection.
fn response_head(input: &[u8], out: &mut Vec<u8>) -> std::io::Result<Option<(usize, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(input).map_err(invalid)? else {
        return Ok(None);
    };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.code.unwrap_or(502).to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let (body, close) = copy_headers(response.headers, out);
    push_header(out, b"ratelimit-policy", b"\"tenant\";q=1000000;w=1");
    push_header(out, b"ratelimit", b"\"tenant\";r=999999;t=1");
    out.extend_from_slice(b"\r\n");
    Ok(Some((head, body, close)))
}

/// One client connection, request after request, over its own upstream connection.
async fn connection(
    mut client: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut backend: Option<TcpStream> = None;
    let (mut from_client, mut from_backend) = (Vec::with_capacity(8192), Vec::with_capacity(8192));
    let mut out = Vec::with_capacity(2048);
    let ip = peer.ip().to_string();
    let mut rng = u64::from(peer.port()) << 32 | 0x5eed;
    loop {
        let (head, body, client_closes) = loop {
            if let Some(lengths) = request_head(&from_client, &ip, &mut rng, &mut out)? {
                break lengths;
            }
            if read_more(&mut client, &mut from_client).await? == 0 {
                return Ok(());
            }
        };
        let started = std::time::Instant::now();
        while from_client.len() < head + body {
            if read_more(&mut client, &mut from_client).await? == 0 {
                return Ok(());
            }
        }
        // The decision: one compare-and-swap on a shared limiter, as the gateway's GCRA.
        let _ = shared
            .limiter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t + 1));
        out.extend_from_slice(&from_client[head..head + body]);
        from_client.drain(..head + body);
        let upstream = match &mut backend {
            Some(tcp) => tcp,
            None => {
                let tcp = TcpStream::connect(shared.upstream).await?;
                tcp.set_nodelay(true)?;
                backend.insert(tcp)
            }
        };
        upstream.write_all(&out).await?;
        let (head, body, close) = loop {
            if let Some(lengths) = response_head(&from_backend, &mut out)? {
                break lengths;
            }
            if read_more(upstream, &mut from_backend).await? == 0 {
                return Ok(());
            }
        };
        while from_backend.len() < head + body {
            if read_more(upstream, &mut from_backend).await? == 0 {
                return Ok(());
            }
        }
        out.extend_from_slice(&from_backend[head..head + body]);
        from_backend.drain(..head + body);
        if close {
            backend = None;
            from_backend.clear();
        }
        client.write_all(&out).await?;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        shared.bytes_out.fetch_add(body as u64, Ordering::Relaxed);
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let bucket = (64 - micros.leading_zeros() as usize).min(11);
        shared.latency[bucket].fetch_add(1, Ordering::Relaxed);
        if client_closes {
            return Ok(());
        }
    }
}
