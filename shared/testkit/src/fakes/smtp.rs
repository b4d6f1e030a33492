//! A fake SMTP relay: the server side of RFC 5321 on `127.0.0.1:0`, recording every message
//! it accepts.
//!
//! It is as strict as the relays billing talks to: commands out of order get `503`, lines
//! must end with CRLF (a bare LF in a message is refused, as Postfix does since the SMTP
//! smuggling fixes), and `AUTH PLAIN` is offered and required only when credentials are set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Longest line accepted (RFC 5321 allows 1000 octets with CRLF; some slack).
const MAX_LINE: u64 = 4096;

/// One message the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`) the fake accepted.
    pub recipients: Vec<String>,
    /// The text after `DATA`, dot-stuffing undone, CRLF line ends, without the final `.`.
    pub data: String,
    /// The user the client authenticated as, if it did.
    pub user: Option<String>,
}

impl Received {
    /// The first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(value) = &mut found {
                if line.starts_with([' ', '\t']) {
                    value.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim_start().to_owned());
            }
        }
        found
    }

    /// The text after the headers.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

/// The fake relay; it stops when dropped.
pub struct FakeSmtp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    received: tokio::sync::Mutex<Vec<Received>>,
    reject_recipients: AtomicBool,
    credentials: Option<(String, String)>,
}

impl FakeSmtp {
    /// A relay that accepts anyone, without authentication.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// A relay that offers `AUTH PLAIN` and accepts mail only after it, as `user`/`password`.
    pub async fn with_credentials(user: &str, password: &str) -> Self {
        Self::serve(Some((user.to_owned(), password.to_owned()))).await
    }

    async fn serve(credentials: Option<(String, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            received: tokio::sync::Mutex::default(),
            reject_recipients: AtomicBool::new(false),
            credentials,
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Self { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, answer every `RCPT TO` with `550` (or accept them again).
    pub fn reject_recipients(&self, reject: bool) {
        self.shared
            .reject_recipients
            .store(reject, Ordering::SeqCst);
    }

    /// The messages accepted so far, oldest first. A message is recorded before its `250`
    /// is sent, so once the client's send returns, it is here.
    pub async fn received(&self) -> Vec<Received> {
        self.shared.received.lock().await.clone()
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections; aborting this task drops the set, which aborts every session.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    sessions.spawn(session(stream, shared.clone()));
                }
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// One connection's state: the transaction under way.
#[derive(Default)]
struct State {
    greeted: bool,
    user: Option<String>,
    from: Option<String>,
    recipients: Vec<String>,
}

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut conn = BufReader::new(stream);
    reply(&mut conn, "220 fake-smtp.test ESMTP ready").await?;
    let mut state = State::default();
    loop {
        let Some(line) = read_line(&mut conn).await? else {
            return Ok(());
        };
        let Some(line) = line.strip_suffix("\r\n") else {
            reply(&mut conn, "500 5.5.2 line not terminated by CRLF").await?;
            continue;
        };
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let answer = match verb.to_ascii_uppercase().as_str() {
            "EHLO" if arg.is_empty() => "501 5.5.4 EHLO needs a domain".to_owned(),
            "EHLO" | "HELO" => {
                state = State {
                    greeted: true,
                    user: state.user,
                    ..State::default()
                };
                let auth = if shared.credentials.is_some() {
                    "250-AUTH PLAIN\r\n"
                } else {
                    ""
                };
                format!(
                    "250-fake-smtp.test greets {arg}\r\n250-8BITMIME\r\n{auth}250 SIZE 10485760"
                )
            }
            "AUTH" => auth(&mut conn, &shared, &mut state, arg).await?,
            "MAIL" => mail_from(&shared, &mut state, arg),
            "RCPT" => rcpt_to(&shared, &mut state, arg),
            "DATA" if state.recipients.is_empty() => "503 5.5.1 need RCPT first".to_owned(),
            "DATA" => {
                reply(&mut conn, "354 end data with <CR><LF>.<CR><LF>").await?;
                let Some((data, bare_lf)) = read_data(&mut conn).await? else {
                    return Ok(());
                };
                let from = state.from.take().unwrap_or_default();
                let recipients = std::mem::take(&mut state.recipients);
                if bare_lf {
                    "554 5.6.0 bare LF in message".to_owned()
                } else {
                    shared.received.lock().await.push(Received {
                        from,
                        recipients,
                        data,
                        user: state.user.clone(),
                    });
                    "250 2.0.0 Ok: queued".to_owned()
                }
            }
            "RSET" => {
                state.from = None;
                state.recipients.clear();
                "250 2.0.0 Ok".to_owned()
            }
            "NOOP" => "250 2.0.0 Ok".to_owned(),
            "QUIT" => {
                reply(&mut conn, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => "500 5.5.2 command unrecognized".to_owned(),
        };
        reply(&mut conn, &answer).await?;
    }
}

async fn auth(
    conn: &mut BufReader<TcpStream>,
    shared: &Shared,
    state: &mut State,
    arg: &str,
) -> std::io::Result<String> {
    let Some((user, password)) = &shared.credentials else {
        return Ok("502 5.5.1 AUTH not offered".into());
    };
    if !state.greeted || state.user.is_some() {
        return Ok("503 5.5.1 bad sequence of commands".into());
    }
    let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
    if !mechanism.eq_ignore_ascii_case("PLAIN") {
        return Ok("504 5.5.4 unrecognized authentication type".into());
    }
    let response = if initial.is_empty() {
        reply(conn, "334 ").await?;
        read_line(conn).await?.unwrap_or_default()
    } else {
        initial.to_owned()
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(response.trim_end())
        .unwrap_or_default();
    let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
    if parts.len() == 3 && parts[1] == user.as_bytes() && parts[2] == password.as_bytes() {
        state.user = Some(user.clone());
        Ok("235 2.7.0 Authentication successful".into())
    } else {
        Ok("535 5.7.8 Authentication credentials invalid".into())
    }
}

fn mail_from(shared: &Shared, state: &mut State, arg: &str) -> String {
    if !state.greeted || state.from.is_some() {
        return "503 5.5.1 bad sequence of commands".into();
    }
    if shared.credentials.is_some() && state.user.is_none() {
        return "530 5.7.0 Authentication required".into();
    }
    match path(arg, "FROM:") {
        Some(from) => {
            state.from = Some(from);
            "250 2.1.0 Ok".into()
        }
        None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
    }
}

fn rcpt_to(shared: &Shared, state: &mut State, arg: &str) -> String {
    if state.from.is_none() {
        return "503 5.5.1 need MAIL first".into();
    }
    let Some(to) = path(arg, "TO:") else {
        return "501 5.5.4 Syntax: RCPT TO:<address>".into();
    };
    if shared.reject_recipients.load(Ordering::SeqCst) {
        return format!("550 5.1.1 <{to}>: Recipient address rejected: user unknown");
    }
    state.recipients.push(to);
    "250 2.1.5 Ok".into()
}

/// The address in `FROM:<a@b> PARAMS` (or `TO:`).
fn path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start().strip_prefix('<')?;
    let (address, _params) = rest.split_once('>')?;
    Some(address.to_owned())
}

/// The message after `DATA` up to the `.` line, un-dot-stuffed; `None` if the client left
/// first. The flag says whether any line ended in a bare LF.
async fn read_data(conn: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, bool)>> {
    let mut data = String::new();
    let mut bare_lf = false;
    loop {
        let Some(line) = read_line(conn).await? else {
            return Ok(None);
        };
        if line == ".\r\n" {
            return Ok(Some((data, bare_lf)));
        }
        bare_lf |= !line.ends_with("\r\n");
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}

/// A line with its end (CRLF or a bare LF); `None` at the end of the stream.
async fn read_line(conn: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    (&mut *conn)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

async fn reply(conn: &mut BufReader<TcpStream>, text: &str) -> std::io::Result<()> {
    // One write per reply, so the client's next command is not held up by delayed ACKs.
    let stream = conn.get_mut();
    stream.write_all(format!("{text}\r\n").as_bytes()).await?;
    stream.flush().await
}
