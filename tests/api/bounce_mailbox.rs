//! The bounce mailbox, read over IMAP from a real Dovecot: delivery status notifications
//! (RFC 3464), a spam complaint (RFC 5965) and an unsubscribe request mailed to the
//! `List-Unsubscribe` address, each acted on once and then moved to the processed folder;
//! never moved before its outcome is committed.

use fortnight::bounces::mailbox::{BounceMailbox, PollError, Polled};
use fortnight::clock::Clock;
use fortnight::domain::{IssueStatus, SubscriberStatus};
use fortnight::store::{Db, Synchronous, mail_events};
use secrecy::SecretString;

use crate::both_databases;
use crate::delivery::{start_send, wait_status};
use crate::helpers::dovecot::Dovecot;
use crate::helpers::{Backend, TestApp, spawn_app_with};

both_databases!(
    reports_in_the_mailbox_act_on_readers_once_and_are_moved,
    a_message_stays_in_the_mailbox_until_its_outcome_is_committed,
);

const BOUNCES: &str = "bounces@news.example.com";
const UNSUBSCRIBE: &str = "unsubscribe@news.example.com";

fn ca() -> std::path::PathBuf {
    format!("{}/tests/fixtures/sns/ca.pem", env!("CARGO_MANIFEST_DIR")).into()
}

async fn app(backend: Backend, dovecot: &Dovecot) -> TestApp {
    let url = dovecot.url("INBOX");
    spawn_app_with(backend, Clock::System, move |c| {
        c.bounce_address = Some(BOUNCES.into());
        c.list_unsubscribe_mailto = Some(UNSUBSCRIBE.into());
        c.bounce_mailbox = Some(SecretString::from(url));
        c.bounce_mailbox_certificate_authority = Some(ca());
        // Polled by hand here.
        c.bounce_mailbox_interval = std::time::Duration::from_secs(86_400);
    })
    .await
}

/// A copy that went out: the reader, its bounce address and its `Message-ID`.
struct Copy {
    to: String,
    verp: String,
    message_id: String,
    /// The subject `List-Unsubscribe`'s mailto asks for (with the reader's signed token).
    unsubscribe_subject: String,
}

async fn send_to(app: &TestApp, n: usize) -> (i64, Vec<Copy>) {
    let token = app.api_token().await;
    app.seed_active("mb", n).await;
    let id = start_send(app, &token, "Bounce me").await;
    wait_status(app, id, IssueStatus::Sent, 30).await;
    let mut copies: Vec<Copy> = app
        .wait_for_mail(n)
        .await
        .into_iter()
        .filter(|m| m.to[0].starts_with("mb"))
        .map(|m| {
            let header = m
                .header("List-Unsubscribe")
                .unwrap()
                .replace(['\r', '\n'], "");
            let subject = header
                .split("?subject=")
                .nth(1)
                .and_then(|s| s.split('>').next())
                .unwrap_or_else(|| panic!("no mailto subject in {header}"))
                .replace("%20", " ");
            Copy {
                to: m.to[0].clone(),
                verp: m.from.clone(),
                message_id: m.header("Message-ID").unwrap(),
                unsubscribe_subject: subject,
            }
        })
        .collect();
    copies.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!(copies.len(), n);
    (id, copies)
}

/// A delivery status notification as Postfix writes one: a human part, the status part and
/// the original's headers.
fn dsn(id: &str, to: &str, recipient: &str, status: &str, original: &Copy) -> String {
    let action = if status.starts_with('5') {
        "failed"
    } else {
        "delayed"
    };
    format!(
        "Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n\
To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: {id}\r\n\
Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n\
--B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
This is the mail system at host relay.example.\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n\
--B1\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; relay.example\r\nArrival-Date: Mon, 30 Nov 2026 08:59:58 +0000\r\n\r\n\
Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\nAction: {action}\r\n\
Status: {status}\r\nRemote-MTA: dns; mx.example.com\r\n\
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address\r\n rejected: User unknown\r\n\r\n\
--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Return-Path: <{verp}>\r\nFrom: The Test Dispatch <newsletter@localhost.localdomain>\r\nTo: {original_to}\r\n\
Subject: Bounce me\r\nMessage-ID: {message_id}\r\n\r\n--B1--\r\n",
        verp = original.verp,
        original_to = original.to,
        message_id = original.message_id,
    )
}

fn complaint(id: &str, original: &Copy) -> String {
    format!(
        "From: feedback@isp.example\r\nTo: {BOUNCES}\r\nSubject: FW: Bounce me\r\nMessage-ID: {id}\r\n\
Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F1\"\r\n\r\n\
--F1\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
--F1\r\nContent-Type: message/feedback-report\r\n\r\n\
Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n\
Original-Mail-From: <{verp}>\r\nOriginal-Rcpt-To: <{to}>\r\nArrival-Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n\r\n\
--F1\r\nContent-Type: message/rfc822\r\n\r\n\
From: The Test Dispatch <newsletter@localhost.localdomain>\r\nTo: {to}\r\nSubject: Bounce me\r\n\
Message-ID: {message_id}\r\n\r\nBody.\r\n\r\n--F1--\r\n",
        verp = original.verp,
        to = original.to,
        message_id = original.message_id,
    )
}

fn plain(id: &str, from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n\
Date: Mon, 30 Nov 2026 11:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

async fn status_of(app: &TestApp, email: &str) -> SubscriberStatus {
    app.subscriber(email).await.unwrap().status
}

async fn reports_in_the_mailbox_act_on_readers_once_and_are_moved(backend: Backend) {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let app = app(backend, &dovecot).await;
    let (issue, copies) = send_to(&app, 7).await;
    let [mb0, mb1, mb2, mb3, mb4, mb5, mb6] = &copies[..] else {
        unreachable!()
    };

    // A DSN sent back to mb0's bounce address.
    let first = dsn("<dsn-1@relay.example>", &mb0.verp, &mb0.to, "5.1.1", mb0);
    dovecot.deliver("INBOX", first.as_bytes());
    // The same DSN again (a relay's retry): recorded once.
    dovecot.deliver("INBOX", first.as_bytes());
    // A mangled bounce from a mail server: no status part, the recipient rewritten, and the
    // headers of another reader's copy; mb1's bounce address decides, before the Message-ID.
    dovecot.deliver(
        "INBOX",
        format!(
            "From: MAILER-DAEMON@relay.example\r\nTo: {verp}\r\nSubject: failure notice\r\n\
Message-ID: <mangled-1@relay.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"M1\"\r\n\r\n--M1\r\nContent-Type: text/plain\r\n\r\n\
Sorry, we were unable to deliver your message.\r\n\r\n\
<someone@alias.example>: host mx.example.com said: 550 5.1.1 mailbox unavailable\r\n\r\n\
--M1\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: {other_to}\r\nMessage-ID: {other_id}\r\n\r\n--M1--\r\n",
            verp = mb1.verp,
            other_to = mb5.to,
            other_id = mb5.message_id,
        )
        .as_bytes(),
    );
    // A spam complaint through a feedback loop, to the plain bounce address.
    dovecot.deliver("INBOX", complaint("<arf-1@isp.example>", mb2).as_bytes());
    // A DMARC failure report is a feedback report but no complaint.
    dovecot.deliver(
        "INBOX",
        complaint("<arf-2@isp.example>", mb5)
            .replace("Feedback-Type: abuse", "Feedback-Type: auth-failure")
            .as_bytes(),
    );
    // A DSN to the plain bounce address whose recipient was an alias: the original's
    // Message-ID names mb3, whose own address is suppressed.
    dovecot.deliver(
        "INBOX",
        dsn(
            "<dsn-2@relay.example>",
            BOUNCES,
            "alias-of-mb3@elsewhere.example",
            "5.2.1",
            mb3,
        )
        .replace(&format!("Return-Path: <{}>\r\n", mb3.verp), "")
        .as_bytes(),
    );
    // A temporary failure for mb6: counted, not final.
    dovecot.deliver(
        "INBOX",
        dsn("<dsn-3@relay.example>", &mb6.verp, &mb6.to, "4.2.2", mb6).as_bytes(),
    );
    // mb4 asks to leave by mail, with the subject its copy's List-Unsubscribe gave.
    dovecot.deliver(
        "INBOX",
        plain(
            "<unsub-1@example.com>",
            &mb4.to,
            UNSUBSCRIBE,
            &mb4.unsubscribe_subject,
            "",
        )
        .as_bytes(),
    );
    // Forgeries naming mb5 by address alone: an unsubscribe request without the token, and a
    // DSN to the plain bounce address about a copy it cannot name.
    dovecot.deliver(
        "INBOX",
        plain(
            "<unsub-2@example.com>",
            &mb5.to,
            UNSUBSCRIBE,
            "unsubscribe",
            "",
        )
        .as_bytes(),
    );
    let stranger = Copy {
        to: mb5.to.clone(),
        verp: "bounces+d1-0000000000000000@news.example.com".into(),
        message_id: "<made-up@news.example.com>".into(),
        unsubscribe_subject: String::new(),
    };
    dovecot.deliver(
        "INBOX",
        dsn(
            "<forged-1@evil.example>",
            BOUNCES,
            &mb5.to,
            "5.1.1",
            &stranger,
        )
        .as_bytes(),
    );
    // An autoreply to mb5's bounce address, quoting a status-like text: nothing happens.
    dovecot.deliver(
        "INBOX",
        format!(
            "From: {to}\r\nTo: {verp}\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\
Message-ID: <vacation-1@example.com>\r\n\r\nI am away until Monday; error 550 5.1.1 is not mine.\r\n",
            to = mb5.to,
            verp = mb5.verp,
        )
        .as_bytes(),
    );
    assert_eq!(dovecot.count("INBOX"), 11);

    let mailbox = app.mailbox.clone().expect("a bounce mailbox");
    let polled = mailbox
        .poll()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dovecot.log()));
    assert_eq!(
        polled,
        Polled {
            processed: 11,
            recorded: 6,
            duplicates: 1,
            unsubscribed: 1,
            ignored: 3,
        }
    );
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Processed"), 11);
    let kept = dovecot.messages("Processed");
    assert!(
        kept.iter().any(|m| m.as_slice() == first.as_bytes()),
        "the processed folder keeps each message whole"
    );
    assert_eq!(status_of(&app, &mb0.to).await, SubscriberStatus::Bounced);
    assert_eq!(status_of(&app, &mb1.to).await, SubscriberStatus::Bounced);
    assert_eq!(status_of(&app, &mb2.to).await, SubscriberStatus::Complained);
    assert_eq!(status_of(&app, &mb3.to).await, SubscriberStatus::Bounced);
    assert_eq!(
        status_of(&app, &mb4.to).await,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(status_of(&app, &mb5.to).await, SubscriberStatus::Active);
    assert_eq!(status_of(&app, &mb6.to).await, SubscriberStatus::Active);

    let events = mail_events::recent(&app.db, None, 20).await.unwrap();
    assert_eq!(events.len(), 6, "{events:#?}");
    for event in &events {
        assert_eq!(event.provider, "mailbox");
        if event.event_id == "<forged-1@evil.example>" {
            assert_eq!(
                (event.subscriber_id, event.effect.as_str()),
                (None, "no_change")
            );
        } else {
            assert_eq!(event.issue_id, Some(issue), "{event:?}");
        }
    }
    let mangled = events
        .iter()
        .find(|e| e.event_id == "<mangled-1@relay.example>")
        .unwrap();
    assert!(mangled.diagnostic.contains("550 5.1.1"), "{mangled:?}");
    let reported = events
        .iter()
        .find(|e| e.event_id == "<dsn-1@relay.example>")
        .unwrap();
    assert!(
        reported.diagnostic.contains("5.1.1") && reported.diagnostic.contains("User unknown"),
        "{reported:?}"
    );
    let complained = events
        .iter()
        .find(|e| e.event_id == "<arf-1@isp.example>")
        .unwrap();
    assert_eq!(complained.kind, "complaint");
    let delayed = events
        .iter()
        .find(|e| e.event_id == "<dsn-3@relay.example>")
        .unwrap();
    assert_eq!(
        (delayed.kind.as_str(), delayed.effect.as_str()),
        ("soft_bounce", "counted")
    );
    // The bounced and the complained are suppressed by their own addresses: they cannot sign
    // up again. Nobody the forgeries named is.
    let suppressed = mail_events::suppressions(&app.db, None, 10).await.unwrap();
    let emails: Vec<&str> = suppressed.iter().map(|s| s.email.as_str()).collect();
    for copy in [mb0, mb1, mb2, mb3] {
        assert!(
            emails.contains(&copy.to.as_str()),
            "{} not suppressed: {emails:?}",
            copy.to
        );
    }
    assert_eq!(emails.len(), 4, "{emails:?}");

    // The admin shows where the mailbox is (never its password) and when it last reported.
    app.sign_in().await;
    let page = app.get("/admin/deliverability").await.text().await.unwrap();
    assert!(page.contains("imaps://bounces@127.0.0.1:"), "{page}");
    assert!(
        !page.contains("secret"),
        "the password is never shown: {page}"
    );
    let row = page
        .split("<tr>")
        .find(|r| r.contains("Bounce mailbox (IMAP)"))
        .unwrap();
    assert!(
        row.contains("<td>yes</td>") && !row.contains("<td>—</td>"),
        "{row}"
    );

    // Nothing left: the next poll reads nothing; the same DSN delivered later is a duplicate.
    assert_eq!(mailbox.poll().await.unwrap(), Polled::default());
    dovecot.deliver("INBOX", first.as_bytes());
    let again = mailbox.poll().await.unwrap();
    assert_eq!(
        (again.processed, again.recorded, again.duplicates),
        (1, 0, 1)
    );
    assert_eq!(dovecot.count("Processed"), 12);
}

async fn a_message_stays_in_the_mailbox_until_its_outcome_is_committed(backend: Backend) {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let app = app(backend, &dovecot).await;
    let (_, copies) = send_to(&app, 1).await;
    let copy = &copies[0];
    dovecot.deliver(
        "INBOX",
        dsn("<dsn-9@relay.example>", &copy.verp, &copy.to, "5.1.1", copy).as_bytes(),
    );

    // The same reader over a database it cannot write to (no tables): the outcome cannot be
    // committed, so the message stays where it is.
    let empty = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/empty.db?mode=rwc", empty.path().display());
    let broken = Db::connect(&SecretString::from(url), 1, Synchronous::Full)
        .await
        .unwrap();
    let state = app_config(&app, &dovecot);
    let failing = BounceMailbox::from_config(state, broken, Clock::System, app.link_key.clone())
        .unwrap()
        .unwrap();
    let error = failing.poll().await.unwrap_err();
    assert!(matches!(error, PollError::Store(_)), "{error}");
    assert_eq!(dovecot.count("INBOX"), 1);
    assert_eq!(dovecot.count("Processed"), 0);
    assert_eq!(status_of(&app, &copy.to).await, SubscriberStatus::Active);

    // A wrong password: the server refuses, nothing moves.
    let mut wrong = (*app_config(&app, &dovecot)).clone();
    wrong.bounce_mailbox = Some(SecretString::from(
        dovecot.url("INBOX").replace(":secret@", ":wrong@"),
    ));
    let refused = BounceMailbox::from_config(
        std::sync::Arc::new(wrong),
        app.db.clone(),
        Clock::System,
        app.link_key.clone(),
    )
    .unwrap()
    .unwrap();
    let error = refused.poll().await.unwrap_err();
    assert!(error.to_string().contains("login"), "{error}");
    assert_eq!(dovecot.count("INBOX"), 1);

    // The instance's own reader commits, then moves.
    let polled = app.mailbox.clone().unwrap().poll().await.unwrap();
    assert_eq!((polled.processed, polled.recorded), (1, 1));
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(dovecot.count("Processed"), 1);
    assert_eq!(status_of(&app, &copy.to).await, SubscriberStatus::Bounced);
}

/// The settings the test instance runs with.
fn app_config(app: &TestApp, dovecot: &Dovecot) -> std::sync::Arc<fortnight::config::Config> {
    let mut config = fortnight::config::Config {
        bounce_address: Some(BOUNCES.into()),
        list_unsubscribe_mailto: Some(UNSUBSCRIBE.into()),
        bounce_mailbox: Some(SecretString::from(dovecot.url("INBOX"))),
        bounce_mailbox_certificate_authority: Some(ca()),
        ..Default::default()
    };
    config.database_url = SecretString::from(app.database_url.clone());
    std::sync::Arc::new(config)
}
