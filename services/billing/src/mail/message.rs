//! An e-mail to send: its recipient, subject and plain-text body, the quota alert's wording,
//! and the RFC 5322 text the relay receives.

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::MailError;

/// The thresholds alerts are sent at (percent of a meter's monthly quota).
const ALERT_THRESHOLDS: [u32; 3] = [80, 90, 100];

/// RFC 5322's limit on a line, without its CRLF; relays may refuse longer ones.
const MAX_LINE_OCTETS: usize = 998;

/// Subjects longer than this are folded into encoded words, so no header line comes near
/// [`MAX_LINE_OCTETS`] whatever a tenant is called.
const MAX_PLAIN_SUBJECT: usize = 200;

/// One plain-text e-mail to one recipient. The sender, date and Message-ID are the
/// [`Mailer`](super::Mailer)'s to add when it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    to: String,
    subject: String,
    body: String,
}

impl Message {
    /// Line ends in `body` may be LF or CRLF (they are sent as CRLF). The recipient is
    /// checked when the message is sent.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
        }
    }

    pub fn to(&self) -> &str {
        &self.to
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    /// Refuses what would let the message's text become headers or SMTP commands (a
    /// recipient with a line break) or what relays refuse (over-long lines).
    pub fn validate(&self) -> Result<(), MailError> {
        validate_address("to", &self.to)?;
        if self
            .body
            .split(['\r', '\n'])
            .any(|line| line.len() > MAX_LINE_OCTETS)
        {
            return Err(MailError::Message(format!(
                "the body has a line longer than {MAX_LINE_OCTETS} octets"
            )));
        }
        Ok(())
    }

    /// The message as the relay receives it after `DATA` (before dot-stuffing and CRLF line
    /// ends, which the SMTP session applies).
    pub(super) fn render(&self, from: &str, date: DateTime<Utc>, message_id: &str) -> String {
        format!(
            "From: {from}\n\
             To: {to}\n\
             Subject: {subject}\n\
             Date: {date}\n\
             Message-ID: {message_id}\n\
             MIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: 8bit\n\
             \n\
             {body}",
            to = self.to,
            subject = encode_header_text(&self.subject),
            date = date.to_rfc2822(),
            body = self.body,
        )
    }
}

/// Checks an envelope and header address: `field` names it in the error. Only plain ASCII
/// `local@domain` is accepted: a CR or LF would end the header or the SMTP command and start
/// another, and non-ASCII addresses need SMTPUTF8, which this client does not negotiate.
pub fn validate_address(field: &'static str, address: &str) -> Result<(), MailError> {
    let refuse = |reason: &str| {
        Err(MailError::Address {
            field,
            reason: reason.to_owned(),
        })
    };
    if address.contains(['\r', '\n']) {
        return refuse("contains a line break");
    }
    if address.chars().any(|c| c.is_control()) {
        return refuse("contains a control character");
    }
    if !address.is_ascii() {
        return refuse("is not ASCII (internationalised addresses are not supported)");
    }
    if address.contains([' ', '\t', '<', '>', ',', ';']) {
        return refuse("must be a single bare address (no spaces, <, >, , or ;)");
    }
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => refuse("is not an address of the form local@domain"),
    }
}

/// A header's free text, safe to put on one header line: control characters (a tenant name
/// could carry a line break) become spaces, and non-ASCII or long text becomes RFC 2047
/// encoded words (UTF-8, base64), folded one word per line.
fn encode_header_text(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.is_ascii() && text.len() <= MAX_PLAIN_SUBJECT {
        return text;
    }
    // 45 octets become 60 base64 characters: a 72-character word, under RFC 2047's 75. Words
    // end on character boundaries, as RFC 2047 requires.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join("\n ")
}

fn encoded_word(text: &str) -> String {
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// The e-mail telling `to` that `tenant_name` has used `percent`% (80, 90 or 100) of this
/// month's `meter` quota on `plan`, with the upgrade notice and, when given, `upgrade_hint`
/// (where or how to upgrade). English, with a line in Portuguese for Brazilian tenants.
#[allow(clippy::too_many_arguments)] // the alert's facts, each shown to the reader
pub fn alert_message(
    to: &str,
    tenant_name: &str,
    meter: &str,
    percent: u32,
    used: u64,
    limit: u64,
    plan: &str,
    upgrade_hint: &str,
) -> Message {
    let reached = percent >= 100;
    let subject = if reached {
        format!("[Tenantry] {tenant_name} has reached its monthly {meter} quota")
    } else {
        format!("[Tenantry] {tenant_name} has used {percent}% of its monthly {meter} quota")
    };

    let mut body = String::from("Hello,\n\n");
    if reached {
        body.push_str(&format!(
            "{tenant_name} has used all of this month's {meter} quota on the {plan} plan \
             ({used} of {limit}). Depending on the plan, further use may be throttled or \
             refused until the quota resets on the first day of next month (UTC).\n"
        ));
    } else {
        body.push_str(&format!(
            "{tenant_name} has used {percent}% of this month's {meter} quota on the {plan} \
             plan ({used} of {limit}). The quota resets on the first day of next month (UTC).\n"
        ));
        let next: Vec<String> = ALERT_THRESHOLDS
            .iter()
            .filter(|&&threshold| threshold > percent)
            .map(|threshold| format!("{threshold}%"))
            .collect();
        if !next.is_empty() {
            body.push_str(&format!(
                "You will be alerted again at {}.\n",
                next.join(" and ")
            ));
        }
    }

    body.push_str("\nUpgrade notice: a larger plan raises this limit.");
    if upgrade_hint.trim().is_empty() {
        body.push('\n');
    } else {
        body.push_str(&format!(" Upgrade here: {}\n", upgrade_hint.trim()));
    }

    let usage_pt = if reached {
        format!("{tenant_name} atingiu a cota mensal de {meter} do plano {plan}")
    } else {
        format!("{tenant_name} usou {percent}% da cota mensal de {meter} do plano {plan}")
    };
    body.push_str(&format!(
        "Notificação para upgrade: {usage_pt}; faça upgrade do plano para aumentar o limite.\n"
    ));
    body.push_str("\n-- \nTenantry billing\n");

    Message::new(to, subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(percent: u32, hint: &str) -> Message {
        alert_message(
            "owner@acme.example",
            "Acme",
            "requests",
            percent,
            percent as u64 * 1000,
            100_000,
            "Pro",
            hint,
        )
    }

    #[test]
    fn alerts_below_the_quota_say_how_much_is_used_and_when_the_next_alert_comes() {
        let message = alert(80, "https://console.tenantry.localhost/billing");
        assert_eq!(message.to(), "owner@acme.example");
        assert_eq!(
            message.subject(),
            "[Tenantry] Acme has used 80% of its monthly requests quota"
        );
        let body = message.body();
        assert!(
            body.contains(
                "Acme has used 80% of this month's requests quota on the Pro plan (80000 of 100000)"
            ),
            "{body}"
        );
        assert!(body.contains("You will be alerted again at 90% and 100%."));
        assert!(body.contains(
            "Upgrade notice: a larger plan raises this limit. Upgrade here: https://console.tenantry.localhost/billing\n"
        ));
        assert!(body.contains(
            "Notificação para upgrade: Acme usou 80% da cota mensal de requests do plano Pro;"
        ));
        assert!(alert(90, "").body().contains("alerted again at 100%."));
    }

    #[test]
    fn the_alert_at_the_quota_says_it_is_used_up() {
        let message = alert(100, "");
        assert_eq!(
            message.subject(),
            "[Tenantry] Acme has reached its monthly requests quota"
        );
        let body = message.body();
        assert!(body.contains("Acme has used all of this month's requests quota"));
        assert!(body.contains("throttled or refused"));
        assert!(!body.contains("alerted again"));
        assert!(body.contains("Upgrade notice: a larger plan raises this limit.\n"));
        assert!(body.contains("Acme atingiu a cota mensal de requests do plano Pro"));
    }

    #[test]
    fn the_rendered_message_has_every_header_then_the_body() {
        let date = DateTime::parse_from_rfc3339("2026-03-02T10:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let text = Message::new("a@b.example", "Hi", "line\n").render(
            "billing@tenantry.localhost",
            date,
            "<id@tenantry.localhost>",
        );
        assert_eq!(
            text,
            "From: billing@tenantry.localhost\n\
             To: a@b.example\n\
             Subject: Hi\n\
             Date: Mon, 2 Mar 2026 10:04:05 +0000\n\
             Message-ID: <id@tenantry.localhost>\n\
             MIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: 8bit\n\
             \n\
             line\n"
        );
    }

    #[test]
    fn subjects_cannot_add_headers_and_non_ascii_is_encoded() {
        assert_eq!(
            encode_header_text("Acme\r\nBcc: x@evil.example"),
            "Acme  Bcc: x@evil.example"
        );
        let encoded = encode_header_text("Açaí atingiu a cota");
        assert_eq!(encoded, "=?utf-8?B?QcOnYcOtIGF0aW5naXUgYSBjb3Rh?=");
        // Long subjects fold into several words, each within RFC 2047's 75 characters and
        // each decoding to whole characters.
        let long = "ção".repeat(100);
        let folded = encode_header_text(&long);
        let mut decoded = String::new();
        for word in folded.split("\n ") {
            assert!(word.len() <= 75, "{word}");
            let b64 = word
                .strip_prefix("=?utf-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            decoded.push_str(&String::from_utf8(bytes).unwrap());
        }
        assert_eq!(decoded, long);
    }

    #[test]
    fn addresses_that_could_inject_headers_or_commands_are_refused() {
        for (address, reason) in [
            ("a@b.example\r\nBcc: c@d.example", "line break"),
            ("a@b.example\nRCPT TO:<c@d.example>", "line break"),
            ("no-at-sign.example", "local@domain"),
            ("@b.example", "local@domain"),
            ("a@", "local@domain"),
            ("a@b.example>", "single bare address"),
            ("a@b.example, c@d.example", "single bare address"),
            ("a\u{0}@b.example", "control character"),
            ("joão@b.example", "not ASCII"),
        ] {
            match validate_address("to", address) {
                Err(MailError::Address { field, reason: why }) => {
                    assert_eq!(field, "to");
                    assert!(why.contains(reason), "{address:?}: {why}");
                }
                other => panic!("{address:?} should be refused, got {other:?}"),
            }
        }
        assert!(validate_address("to", "first.last+tag@sub.example.com").is_ok());
    }

    #[test]
    fn over_long_body_lines_are_refused() {
        let message = Message::new("a@b.example", "s", "x".repeat(999));
        assert!(matches!(message.validate(), Err(MailError::Message(_))));
        assert!(
            Message::new("a@b.example", "s", "x".repeat(998))
                .validate()
                .is_ok()
        );
    }
}
