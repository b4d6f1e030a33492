//! The mailer against the testkit's fake relay.

use tenantry_testkit::fakes::smtp::FakeSmtp;

use super::*;

fn config(relay: &str) -> MailConfig {
    MailConfig {
        relay: relay.to_owned(),
        ..MailConfig::disabled()
    }
}

fn mailer(relay: &FakeSmtp) -> Mailer {
    Mailer::new(&config(&relay.addr().to_string())).unwrap()
}

#[tokio::test]
async fn a_message_arrives_with_its_headers_and_exact_body() {
    let relay = FakeSmtp::start().await;
    let body = "Hello,\n.a line starting with a dot\n..and two\n.\nend\n";
    let message = Message::new("owner@acme.example", "Quota alert", body);

    let sent = mailer(&relay).send(&message).await.unwrap();

    assert_eq!(sent, Sent::Delivered);
    let received = relay.received().await;
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, "billing@tenantry.localhost");
    assert_eq!(mail.recipients, ["owner@acme.example"]);
    assert_eq!(mail.user, None);
    assert_eq!(mail.body(), body.replace('\n', "\r\n"));
    assert_eq!(mail.header("From").unwrap(), "billing@tenantry.localhost");
    assert_eq!(mail.header("To").unwrap(), "owner@acme.example");
    assert_eq!(mail.header("Subject").unwrap(), "Quota alert");
    assert_eq!(mail.header("MIME-Version").unwrap(), "1.0");
    assert_eq!(
        mail.header("Content-Type").unwrap(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(mail.header("Content-Transfer-Encoding").unwrap(), "8bit");
    let date = mail.header("Date").unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc2822(&date).is_ok(),
        "{date}"
    );
    let id = mail.header("Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with("@tenantry.localhost>"),
        "{id}"
    );
}

#[tokio::test]
async fn an_alert_arrives_in_utf_8_with_its_upgrade_notice() {
    let relay = FakeSmtp::start().await;
    let message = alert_message(
        "financeiro@acai.example",
        "Açaí Ltda",
        "requests",
        90,
        90_000,
        100_000,
        "Pro",
        "https://console.tenantry.localhost/billing",
    );

    mailer(&relay).send(&message).await.unwrap();

    let received = relay.received().await;
    let body = received[0].body();
    assert_eq!(body, message.body().replace('\n', "\r\n"));
    assert!(body.contains("Notificação para upgrade: Açaí Ltda usou 90%"));
    // A non-ASCII subject travels as an RFC 2047 encoded word.
    let subject = received[0].header("Subject").unwrap();
    assert!(subject.starts_with("=?utf-8?B?"), "{subject}");
}

#[tokio::test]
async fn a_refused_recipient_fails_naming_the_step_and_code() {
    let relay = FakeSmtp::start().await;
    relay.reject_recipients(true);

    let err = mailer(&relay)
        .send(&Message::new("nobody@acme.example", "s", "b"))
        .await
        .unwrap_err();

    match &err {
        MailError::Rejected { step, code, text } => {
            assert_eq!(*step, Step::RcptTo);
            assert_eq!(*code, 550);
            assert_eq!(
                text,
                "5.1.1 <nobody@acme.example>: Recipient address rejected: user unknown"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("smtp RCPT TO: refused with 550")
    );
    assert!(relay.received().await.is_empty());
}

#[tokio::test]
async fn header_injection_is_refused_before_anything_is_sent() {
    let relay = FakeSmtp::start().await;
    for to in [
        "owner@acme.example\r\nBcc: everyone@elsewhere.example",
        "owner@acme.example\nRCPT TO:<other@elsewhere.example>",
        "not-an-address",
    ] {
        let message = Message::new(to, "s", "b");
        for mailer in [
            mailer(&relay),
            Mailer::new(&MailConfig::disabled()).unwrap(),
        ] {
            let err = mailer.send(&message).await.unwrap_err();
            assert!(
                matches!(err, MailError::Address { field: "to", .. }),
                "{to:?}: {err:?}"
            );
        }
    }
    assert!(relay.received().await.is_empty());
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out() {
    // Bound but never accepted: the kernel completes the handshake, nobody greets.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mailer = Mailer::new(&MailConfig {
        timeout_ms: 200,
        ..config(&silent.local_addr().unwrap().to_string())
    })
    .unwrap();

    let err = mailer
        .send(&Message::new("owner@acme.example", "s", "b"))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            MailError::Timeout {
                step: Step::Greeting,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "smtp greeting: no answer within 200ms");
}

#[tokio::test]
async fn credentials_are_sent_with_auth_plain() {
    let relay = FakeSmtp::with_credentials("alerts", "s3cret").await;
    let with = |password: &str| {
        Mailer::new(&MailConfig {
            user: Some("alerts".into()),
            password: Some(password.into()),
            ..config(&relay.addr().to_string())
        })
        .unwrap()
    };
    let message = Message::new("owner@acme.example", "s", "b");

    with("s3cret").send(&message).await.unwrap();
    assert_eq!(relay.received().await[0].user.as_deref(), Some("alerts"));

    let err = with("wrong").send(&message).await.unwrap_err();
    assert!(
        matches!(
            err,
            MailError::Rejected {
                step: Step::Auth,
                code: 535,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong"));

    // Without credentials, this relay refuses the sender.
    let err = Mailer::new(&config(&relay.addr().to_string()))
        .unwrap()
        .send(&message)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        MailError::Rejected {
            step: Step::MailFrom,
            code: 530,
            ..
        }
    ));
}

#[tokio::test]
async fn credentials_are_not_sent_to_a_relay_without_auth() {
    let relay = FakeSmtp::start().await;
    let mailer = Mailer::new(&MailConfig {
        user: Some("alerts".into()),
        password: Some("s3cret".into()),
        ..config(&relay.addr().to_string())
    })
    .unwrap();

    let err = mailer
        .send(&Message::new("owner@acme.example", "s", "b"))
        .await
        .unwrap_err();

    assert!(matches!(
        err,
        MailError::Unsupported {
            step: Step::Auth,
            ..
        }
    ));
}

#[tokio::test]
async fn without_a_relay_nothing_is_sent() {
    let mailer = Mailer::new(&MailConfig::disabled()).unwrap();
    assert!(!mailer.is_enabled());
    let sent = mailer
        .send(&Message::new("owner@acme.example", "s", "b"))
        .await
        .unwrap();
    assert_eq!(sent, Sent::Disabled);
}

#[test]
fn settings_that_cannot_work_are_refused_up_front() {
    for relay in ["localhost", ":25", "localhost:smtp", "localhost:0"] {
        assert!(
            matches!(Mailer::new(&config(relay)), Err(MailError::Config(_))),
            "{relay}"
        );
    }
    assert!(Mailer::new(&config("[::1]:2525")).unwrap().is_enabled());
    let alone = MailConfig {
        user: Some("alerts".into()),
        ..config("127.0.0.1:25")
    };
    assert!(matches!(Mailer::new(&alone), Err(MailError::Config(_))));
    let bad_from = MailConfig {
        from: "billing\r\nBcc: x@y".into(),
        ..config("127.0.0.1:25")
    };
    assert!(matches!(
        Mailer::new(&bad_from),
        Err(MailError::Address {
            field: "billing-smtp-from",
            ..
        })
    ));
}

#[test]
fn the_password_is_not_printed() {
    let config = MailConfig {
        user: Some("alerts".into()),
        password: Some("s3cret".into()),
        ..config("127.0.0.1:25")
    };
    assert!(!format!("{config:?}").contains("s3cret"));
    assert!(!format!("{:?}", Mailer::new(&config).unwrap()).contains("s3cret"));
}

#[test]
fn the_relay_flags_parse() {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        mail: MailConfig,
    }
    let cli =
        Cli::try_parse_from(["billing", "--billing-smtp-relay", "relay.internal:25"]).unwrap();
    assert_eq!(cli.mail.relay, "relay.internal:25");
    assert_eq!(cli.mail.from, "billing@tenantry.localhost");
    assert_eq!(cli.mail.timeout_ms, 10_000);
    assert_eq!(cli.mail.user, None);
}
