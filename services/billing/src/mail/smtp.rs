//! The client side of one SMTP session (RFC 5321): greeting, `EHLO`, optional `AUTH PLAIN`,
//! one envelope, `DATA`, `QUIT`. Plain TCP only: the relay is local or on a private network
//! (see [`MailConfig`](super::MailConfig)).

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};

use super::{MailError, Step};

/// RFC 5321 caps a reply line at 512 octets; a little slack for relays that exceed it.
const MAX_REPLY_LINE: u64 = 1024;
/// A multi-line reply (EHLO's extensions) longer than this is not a relay we understand.
const MAX_REPLY_LINES: usize = 64;
/// How much of a refusal's text an error carries: enough to diagnose, not a relay's essay.
const MAX_ERROR_TEXT: usize = 200;

/// One reply: its code and its lines' text (after the code and separator).
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

/// What one session delivers.
pub(super) struct Envelope<'a> {
    /// Our name in `EHLO`.
    pub helo: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// The message after `DATA`, LF or CRLF line ends, not yet dot-stuffed.
    pub data: &'a str,
    /// `(user, password)` for `AUTH PLAIN`.
    pub credentials: Option<(&'a str, &'a str)>,
}

/// Runs one session on `stream`, each step (a command and its reply) within `timeout`.
pub(super) async fn deliver<S>(
    stream: S,
    envelope: &Envelope<'_>,
    timeout: Duration,
) -> Result<(), MailError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session {
        stream: BufReader::new(stream),
        timeout,
    };
    session.step(Step::Greeting, None, 2).await?;
    let ehlo = session
        .step(
            Step::Ehlo,
            Some(format!("EHLO {}", envelope.helo).as_bytes()),
            2,
        )
        .await?;
    if let Some((user, password)) = envelope.credentials {
        if !offers_auth_plain(&ehlo) {
            return Err(MailError::Unsupported {
                step: Step::Auth,
                what: "the relay does not offer AUTH PLAIN",
            });
        }
        // RFC 4616: authorisation identity (empty: the same), user and password, NUL-separated.
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        session
            .step(
                Step::Auth,
                Some(format!("AUTH PLAIN {token}").as_bytes()),
                2,
            )
            .await?;
    }
    let mail_from = format!("MAIL FROM:<{}>", envelope.from);
    session
        .step(Step::MailFrom, Some(mail_from.as_bytes()), 2)
        .await?;
    let rcpt_to = format!("RCPT TO:<{}>", envelope.to);
    session
        .step(Step::RcptTo, Some(rcpt_to.as_bytes()), 2)
        .await?;
    session.step(Step::Data, Some(b"DATA"), 3).await?;
    session
        .step(Step::Message, Some(&data_payload(envelope.data)), 2)
        .await?;
    // The relay has taken the message: a failed QUIT must not fail the delivery, or the
    // caller would retry and the recipient get the alert twice.
    let _ = session.step(Step::Quit, Some(b"QUIT"), 2).await;
    Ok(())
}

struct Session<S> {
    stream: BufReader<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Sends `line` (CRLF appended unless it is the `DATA` payload, which carries its own)
    /// and reads the reply, whose code must start with `class` (RFC 5321 §4.2.1: clients
    /// look at the first digit).
    async fn step(
        &mut self,
        step: Step,
        line: Option<&[u8]>,
        class: u16,
    ) -> Result<Reply, MailError> {
        let timeout = self.timeout;
        let reader = &mut self.stream;
        let exchange = async move {
            if let Some(line) = line {
                // One write per command: two small ones (the text, then CRLF) would wait on
                // Nagle's algorithm and the peer's delayed ACK at every step.
                let mut command = Vec::with_capacity(line.len() + 2);
                command.extend_from_slice(line);
                if step != Step::Message {
                    command.extend_from_slice(b"\r\n");
                }
                let stream = reader.get_mut();
                stream.write_all(&command).await?;
                stream.flush().await?;
            }
            read_reply(reader).await
        };
        let reply = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| MailError::Timeout {
                step,
                after: timeout,
            })?
            .map_err(|source| match source {
                ReplyError::Io(source) => MailError::Io { step, source },
                ReplyError::Malformed => MailError::Protocol { step },
            })?;
        if reply.code / 100 != class {
            return Err(MailError::Rejected {
                step,
                code: reply.code,
                text: first_line_for_error(&reply),
            });
        }
        Ok(reply)
    }
}

enum ReplyError {
    Io(std::io::Error),
    Malformed,
}

impl From<std::io::Error> for ReplyError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads one reply, following `250-…` continuation lines to the last `250 …` one.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Reply, ReplyError> {
    let mut lines = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        (&mut *reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if line.is_empty() {
            return Err(ReplyError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if line.last() != Some(&b'\n') {
            return Err(ReplyError::Malformed);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let code = text
            .get(..3)
            .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or(ReplyError::Malformed)?;
        let more = match text.as_bytes().get(3) {
            Some(b'-') => true,
            Some(b' ') | None => false,
            Some(_) => return Err(ReplyError::Malformed),
        };
        lines.push(text.get(4..).unwrap_or_default().to_owned());
        if !more {
            return Ok(Reply { code, lines });
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::Malformed);
        }
    }
}

/// Whether the EHLO reply lists `AUTH` with the `PLAIN` mechanism.
fn offers_auth_plain(ehlo: &Reply) -> bool {
    ehlo.lines.iter().any(|line| {
        let mut words = line.split_ascii_whitespace();
        words
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("AUTH"))
            && words.any(|mechanism| mechanism.eq_ignore_ascii_case("PLAIN"))
    })
}

/// The reply's first line only, printable characters only, cut short: refusals may quote
/// anything, and errors end up in logs.
fn first_line_for_error(reply: &Reply) -> String {
    let text = reply.lines.first().map(String::as_str).unwrap_or_default();
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect()
}

/// The `DATA` payload: every line ended by CRLF (bare LFs and CRs are what SMTP smuggling
/// is made of, and relays refuse them), lines starting with `.` dot-stuffed (RFC 5321
/// §4.5.2) so none ends the message early, then the `.` line that does.
fn data_payload(text: &str) -> Vec<u8> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::with_capacity(text.len() + 64);
    for line in text.split_terminator('\n') {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reply(text: &str) -> Result<Reply, ReplyError> {
        read_reply(&mut BufReader::new(text.as_bytes())).await
    }

    #[tokio::test]
    async fn replies_are_read_across_continuation_lines() {
        let ehlo = reply("250-relay.example\r\n250-8BITMIME\r\n250 AUTH LOGIN PLAIN\r\nnext")
            .await
            .ok()
            .unwrap();
        assert_eq!(ehlo.code, 250);
        assert_eq!(
            ehlo.lines,
            ["relay.example", "8BITMIME", "AUTH LOGIN PLAIN"]
        );
        assert!(offers_auth_plain(&ehlo));
        let bare = reply("354\r\n").await.ok().unwrap();
        assert_eq!((bare.code, bare.lines.len()), (354, 1));
    }

    #[tokio::test]
    async fn malformed_and_truncated_replies_are_errors() {
        assert!(matches!(
            reply("hello\r\n").await,
            Err(ReplyError::Malformed)
        ));
        assert!(matches!(
            reply("250x\r\n").await,
            Err(ReplyError::Malformed)
        ));
        assert!(matches!(
            reply("250-more\r\n").await,
            Err(ReplyError::Io(_))
        ));
        assert!(matches!(reply("").await, Err(ReplyError::Io(_))));
        let endless = "9".repeat(2000);
        assert!(matches!(reply(&endless).await, Err(ReplyError::Malformed)));
    }

    #[test]
    fn auth_plain_is_found_only_when_offered() {
        let without = Reply {
            code: 250,
            lines: vec!["relay".into(), "AUTH LOGIN".into(), "PLAINLY".into()],
        };
        assert!(!offers_auth_plain(&without));
    }

    #[test]
    fn error_text_is_the_first_line_printable_and_short() {
        let long = Reply {
            code: 550,
            lines: vec![
                format!("5.1.1 no\u{1b}[31m {}", "x".repeat(500)),
                "second".into(),
            ],
        };
        let text = first_line_for_error(&long);
        assert!(text.starts_with("5.1.1 no[31m x"));
        assert_eq!(text.chars().count(), MAX_ERROR_TEXT);
        assert!(!text.contains("second"));
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf_line_ends() {
        assert_eq!(
            data_payload("a\n.b\r\n..c\rd\n."),
            b"a\r\n..b\r\n...c\r\nd\r\n..\r\n.\r\n"
        );
        assert_eq!(
            data_payload("no final newline"),
            b"no final newline\r\n.\r\n"
        );
        assert_eq!(data_payload(""), b".\r\n");
    }
}
