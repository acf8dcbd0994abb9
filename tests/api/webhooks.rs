//! Bounce and complaint webhooks from the providers, each with real signatures made here with
//! test keys, and what their events do to readers.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fortnight::clock::Clock;
use fortnight::domain::{IssueStatus, SubscriberStatus};
use fortnight::store::mail_events;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_databases;
use crate::delivery::{start_send, wait_status};
use crate::helpers::{Backend, TestApp, spawn_app_with};

both_databases!(
    postmark_bounces_and_complaints_end_subscriptions_once_and_suppress,
    postmark_refuses_wrong_credentials_and_bad_bodies,
    mailgun_checks_the_signature_and_its_timestamp,
    sendgrid_checks_the_ecdsa_signature_over_timestamp_and_body,
    ses_through_sns_is_verified_with_the_signing_certificate,
    soft_bounces_count_once_per_issue_toward_the_threshold,
    soft_bounces_end_a_subscription_only_on_consecutive_issues,
    a_suppressed_address_is_not_imported_or_added_until_lifted,
    the_admin_and_the_api_show_bounces_and_lift_suppressions,
    each_copy_goes_out_from_a_bounce_address_that_names_it,
    an_unconfigured_webhook_is_not_found,
);

const POSTMARK: &str = "hook:a-long-webhook-password";
const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-bounces";

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Clock::System, |c| {
        c.postmark_webhook_credentials = Some(POSTMARK.into());
        c.mailgun_webhook_signing_key = Some(MAILGUN_KEY.into());
        c.sendgrid_webhook_public_key = Some(sendgrid_public_key());
        c.ses_sns_topic_arn = Some(TOPIC.into());
        c.sns_test_certificate_authority = Some(fixture("ca.pem").into());
        c.bounce_threshold = 2;
    })
    .await
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/sns/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn post(app: &TestApp, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn basic(credentials: &str) -> Vec<(&'static str, String)> {
    vec![(
        "authorization",
        format!("Basic {}", STANDARD.encode(credentials)),
    )]
}

async fn status_of(app: &TestApp, email: &str) -> SubscriberStatus {
    app.subscriber(email).await.unwrap().status
}

async fn events(app: &TestApp) -> usize {
    mail_events::recent(&app.db, None, 500).await.unwrap().len()
}

fn postmark_bounce(id: u64, kind: &str, email: &str) -> String {
    json!({
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": id, "Type": kind,
        "TypeCode": 1, "Name": "Hard bounce", "Tag": "", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email, "From": "news@example.com", "BouncedAt": "2026-11-29T16:33:54.9070259Z",
        "DumpAvailable": true, "Inactive": true, "CanActivate": true, "Subject": "Issue 12", "Content": ""
    })
    .to_string()
}

async fn postmark_bounces_and_complaints_end_subscriptions_once_and_suppress(backend: Backend) {
    let app = app(backend).await;
    app.seed_active("pm", 3).await;
    let auth = basic(POSTMARK);
    let body = postmark_bounce(4323372036854775807, "HardBounce", "PM0@example.com");
    let (status, answer) = post(&app, "/webhooks/postmark", &auth, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recorded"], 1);
    assert_eq!(
        status_of(&app, "pm0@example.com").await,
        SubscriberStatus::Bounced
    );
    // Postmark retries: the same record changes nothing more.
    let (status, answer) = post(&app, "/webhooks/postmark", &auth, &body).await;
    assert_eq!((status, answer["duplicates"].clone()), (200, json!(1)));
    assert_eq!(events(&app).await, 1);
    let complaint = json!({
        "RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
        "TypeCode": 512, "Email": "pm1@example.com", "BouncedAt": "2026-11-29T17:00:00Z",
        "Description": "The subscriber explicitly marked this message as spam.", "Details": "Test spam complaint details"
    });
    let (status, _) = post(&app, "/webhooks/postmark", &auth, &complaint.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        status_of(&app, "pm1@example.com").await,
        SubscriberStatus::Complained
    );
    // A delivery record is not a bounce: answered 200, nothing recorded.
    let delivery = json!({"RecordType": "Delivery", "ID": 7, "Recipient": "pm2@example.com"});
    let (status, answer) = post(&app, "/webhooks/postmark", &auth, &delivery.to_string()).await;
    assert_eq!((status, answer["ignored"].clone()), (200, json!(1)));
    assert_eq!(
        status_of(&app, "pm2@example.com").await,
        SubscriberStatus::Active
    );
    // The evidence is kept, and both addresses are suppressed.
    let recorded = mail_events::recent(&app.db, None, 10).await.unwrap();
    let bounce = recorded.iter().find(|e| e.kind == "bounce").unwrap();
    assert_eq!(bounce.provider, "postmark");
    assert!(
        bounce.diagnostic.contains("550 5.1.1"),
        "{}",
        bounce.diagnostic
    );
    assert_eq!(bounce.effect, "bounced");
    let suppressed = mail_events::suppressions(&app.db, None, 10).await.unwrap();
    let mut emails: Vec<_> = suppressed.iter().map(|s| s.email.to_lowercase()).collect();
    emails.sort();
    assert_eq!(emails, ["pm0@example.com", "pm1@example.com"]);
    // The metric counts them by provider and kind (the recorder is shared by every test in
    // this process, so only its series is checked here).
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("fortnight_mail_events_total{provider=\"postmark\",kind=\"complaint\"}"),
        "{metrics}"
    );
}

async fn postmark_refuses_wrong_credentials_and_bad_bodies(backend: Backend) {
    let app = app(backend).await;
    app.seed_active("safe", 1).await;
    let body = postmark_bounce(1, "HardBounce", "safe0@example.com");
    for headers in [
        vec![],
        basic("hook:wrong"),
        basic("hook"),
        vec![("authorization", "Bearer x".to_owned())],
    ] {
        let (status, _) = post(&app, "/webhooks/postmark", &headers, &body).await;
        assert_eq!(status, 401, "{headers:?}");
    }
    for bad in [
        "",
        "{",
        "[]",
        r#"{"RecordType":"Bounce","Type":"HardBounce"}"#,
        "\"text\"",
    ] {
        let (status, _) = post(&app, "/webhooks/postmark", &basic(POSTMARK), bad).await;
        assert_eq!(status, 400, "{bad:?}");
    }
    assert_eq!(events(&app).await, 0);
    assert_eq!(
        status_of(&app, "safe0@example.com").await,
        SubscriberStatus::Active
    );
}

fn mailgun_body(
    id: &str,
    event: &str,
    severity: &str,
    email: &str,
    timestamp: i64,
    key: &str,
) -> String {
    let token = format!("token-{id}-{timestamp}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": {
            "event": event, "id": id, "timestamp": timestamp as f64 + 0.5, "log-level": "error",
            "severity": severity, "reason": "bounce", "recipient": email,
            "message": {"headers": {"message-id": "20261129.1234@news.example.com", "to": email}},
            "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist", "description": ""}
        }
    })
    .to_string()
}

async fn mailgun_checks_the_signature_and_its_timestamp(backend: Backend) {
    let app = app(backend).await;
    app.seed_active("mg", 3).await;
    let now = chrono::Utc::now().timestamp();
    let good = mailgun_body(
        "ev-1",
        "failed",
        "permanent",
        "mg0@example.com",
        now,
        MAILGUN_KEY,
    );
    let (status, answer) = post(&app, "/webhooks/mailgun", &[], &good).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        status_of(&app, "mg0@example.com").await,
        SubscriberStatus::Bounced
    );
    let complained = mailgun_body(
        "ev-2",
        "complained",
        "",
        "mg1@example.com",
        now,
        MAILGUN_KEY,
    );
    assert_eq!(
        post(&app, "/webhooks/mailgun", &[], &complained).await.0,
        200
    );
    assert_eq!(
        status_of(&app, "mg1@example.com").await,
        SubscriberStatus::Complained
    );
    // Signed with another key, or too old: refused, nothing recorded.
    let forged = mailgun_body(
        "ev-3",
        "failed",
        "permanent",
        "mg2@example.com",
        now,
        "key-other",
    );
    assert_eq!(post(&app, "/webhooks/mailgun", &[], &forged).await.0, 401);
    let stale = mailgun_body(
        "ev-4",
        "failed",
        "permanent",
        "mg2@example.com",
        now - 3600,
        MAILGUN_KEY,
    );
    assert_eq!(post(&app, "/webhooks/mailgun", &[], &stale).await.0, 401);
    // Mailgun signs the timestamp and a token, not the body: a captured signature carried
    // over to another event is refused; the same event again (a retry) is a duplicate.
    let tampered = good
        .replace("mg0@example.com", "mg2@example.com")
        .replace("\"ev-1\"", "\"ev-9\"");
    assert_eq!(post(&app, "/webhooks/mailgun", &[], &tampered).await.0, 401);
    let (status, answer) = post(&app, "/webhooks/mailgun", &[], &good).await;
    assert_eq!((status, answer["duplicates"].clone()), (200, json!(1)));
    assert_eq!(
        status_of(&app, "mg2@example.com").await,
        SubscriberStatus::Active
    );
    assert_eq!(
        post(&app, "/webhooks/mailgun", &[], "{\"signature\":{}}")
            .await
            .0,
        400
    );
    assert_eq!(events(&app).await, 2);
}

fn sendgrid_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
}

fn sendgrid_public_key() -> String {
    use p256::pkcs8::EncodePublicKey;
    let der = p256::PublicKey::from(sendgrid_key().verifying_key())
        .to_public_key_der()
        .unwrap();
    STANDARD.encode(der.as_bytes())
}

fn sendgrid_headers(
    body: &str,
    timestamp: i64,
    key: &p256::ecdsa::SigningKey,
) -> Vec<(&'static str, String)> {
    use p256::ecdsa::signature::Signer;
    let signed = format!("{timestamp}{body}");
    let signature: p256::ecdsa::Signature = key.sign(signed.as_bytes());
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            STANDARD.encode(signature.to_der().as_bytes()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_string(),
        ),
    ]
}

async fn sendgrid_checks_the_ecdsa_signature_over_timestamp_and_body(backend: Backend) {
    let app = app(backend).await;
    app.seed_active("sg", 4).await;
    let now = chrono::Utc::now().timestamp();
    let body = json!([
        {"email": "sg0@example.com", "timestamp": now, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
         "event": "bounce", "category": ["newsletter"], "sg_event_id": "sg-1", "sg_message_id": "m1",
         "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
        {"email": "sg1@example.com", "timestamp": now, "event": "spamreport", "sg_event_id": "sg-2", "sg_message_id": "m2"},
        {"email": "sg2@example.com", "timestamp": now, "event": "dropped", "sg_event_id": "sg-3",
         "reason": "Bounced Address", "status": "5.0.0"},
        {"email": "sg3@example.com", "timestamp": now, "event": "delivered", "sg_event_id": "sg-4", "response": "250 OK"}
    ])
    .to_string();
    let (status, answer) = post(
        &app,
        "/webhooks/sendgrid",
        &sendgrid_headers(&body, now, &sendgrid_key()),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["recorded"].clone(), answer["ignored"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(
        status_of(&app, "sg0@example.com").await,
        SubscriberStatus::Bounced
    );
    assert_eq!(
        status_of(&app, "sg1@example.com").await,
        SubscriberStatus::Complained
    );
    assert_eq!(
        status_of(&app, "sg2@example.com").await,
        SubscriberStatus::Bounced
    );
    assert_eq!(
        status_of(&app, "sg3@example.com").await,
        SubscriberStatus::Active
    );
    // A changed body, another key, a stale timestamp, no headers: refused.
    let other = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let changed = body.replace("sg3@", "sg9@");
    for (headers, body) in [
        (
            sendgrid_headers(&body, now, &sendgrid_key()),
            changed.clone(),
        ),
        (sendgrid_headers(&changed, now, &other), changed.clone()),
        (
            sendgrid_headers(&changed, now - 3600, &sendgrid_key()),
            changed.clone(),
        ),
        (vec![], changed.clone()),
    ] {
        assert_eq!(
            post(&app, "/webhooks/sendgrid", &headers, &body).await.0,
            401
        );
    }
    // Signed but not JSON: 400.
    let junk = "not json";
    assert_eq!(
        post(
            &app,
            "/webhooks/sendgrid",
            &sendgrid_headers(junk, now, &sendgrid_key()),
            junk
        )
        .await
        .0,
        400
    );
    assert_eq!(events(&app).await, 3);
}

/// A local HTTPS server with the test authority's certificate for 127.0.0.1: it serves the SNS
/// signing certificate and records the subscription confirmations it is asked for.
struct FakeSns {
    port: u16,
    confirmed: Arc<Mutex<Vec<String>>>,
}

impl FakeSns {
    async fn start() -> FakeSns {
        use rustls_pki_types::pem::PemObject;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let certs =
            vec![rustls_pki_types::CertificateDer::from_pem_file(fixture("server.pem")).unwrap()];
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let confirmed = Arc::new(Mutex::new(Vec::new()));
        let seen = confirmed.clone();
        let signing = std::fs::read_to_string(fixture("signing.pem")).unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (seen, signing) = (seen.clone(), signing.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buffer = vec![0u8; 8192];
                    let n = tls.read(&mut buffer).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buffer[..n]).to_string();
                    let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let body = if path.ends_with(".pem") {
                        signing
                    } else {
                        seen.lock().unwrap().push(path);
                        "<ConfirmSubscriptionResponse/>".to_owned()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeSns { port, confirmed }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// Signs an SNS message the way SNS does, with the test signing key (openssl).
fn sns_message(fields: &[(&str, &str)], version: &str, cert_url: &str) -> String {
    let kind = fields.iter().find(|(k, _)| *k == "Type").unwrap().1;
    let order: &[&str] = if kind == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut signed = String::new();
    for name in order {
        if let Some((_, value)) = fields.iter().find(|(k, _)| k == name) {
            signed.push_str(&format!("{name}\n{value}\n"));
        }
    }
    let digest = if version == "1" { "-sha1" } else { "-sha256" };
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", digest, "-sign", &fixture("signing.key")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut message: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    message.insert("SignatureVersion".into(), version.into());
    message.insert("Signature".into(), STANDARD.encode(&out.stdout).into());
    message.insert("SigningCertURL".into(), cert_url.into());
    Value::Object(message).to_string()
}

fn ses_bounce(feedback: &str, email: &str, kind: &str) -> String {
    json!({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind, "bounceSubType": "General", "feedbackId": feedback,
            "timestamp": "2026-11-29T12:00:00.000Z", "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]
        },
        "mail": {"timestamp": "2026-11-29T11:59:58.000Z", "source": "news@example.com", "messageId": "ses-1",
                 "destination": [email], "commonHeaders": {"messageId": "<not.ours@example.com>"}}
    })
    .to_string()
}

async fn ses_through_sns_is_verified_with_the_signing_certificate(backend: Backend) {
    let sns = FakeSns::start().await;
    let app = app(backend).await;
    app.seed_active("ses", 3).await;
    let cert = sns.url("/SimpleNotificationService-test.pem");
    let header = |kind: &str| vec![("x-amz-sns-message-type", kind.to_owned())];
    // The subscription is confirmed by fetching its SubscribeURL.
    let subscribe = sns.url("/?Action=ConfirmSubscription&TopicArn=t&Token=abc");
    let confirm = sns_message(
        &[
            ("Type", "SubscriptionConfirmation"),
            ("MessageId", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"),
            ("Token", "abc"),
            ("TopicArn", TOPIC),
            ("Message", "You have chosen to subscribe to the topic."),
            ("SubscribeURL", &subscribe),
            ("Timestamp", "2026-11-29T12:00:00.000Z"),
        ],
        "1",
        &cert,
    );
    let (status, answer) = post(
        &app,
        "/webhooks/ses",
        &header("SubscriptionConfirmation"),
        &confirm,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(sns.confirmed.lock().unwrap().len(), 1);
    // A permanent bounce (SignatureVersion 1, SHA-1) and a complaint (2, SHA-256).
    let bounce_message = ses_bounce("fb-1", "ses0@example.com", "Permanent");
    let fields = |id: &'static str, message: &'static str| {
        vec![
            ("Type", "Notification"),
            ("MessageId", id),
            ("TopicArn", TOPIC),
            ("Message", message),
            ("Timestamp", "2026-11-29T12:00:01.000Z"),
        ]
    };
    let bounce_message: &'static str = Box::leak(bounce_message.into_boxed_str());
    let bounce = sns_message(&fields("m-1", bounce_message), "1", &cert);
    let (status, answer) = post(&app, "/webhooks/ses", &header("Notification"), &bounce).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        status_of(&app, "ses0@example.com").await,
        SubscriberStatus::Bounced
    );
    let complaint_message: &'static str = Box::leak(
        json!({
            "notificationType": "Complaint",
            "complaint": {"feedbackId": "fb-2", "complaintFeedbackType": "abuse", "timestamp": "2026-11-29T12:05:00Z",
                          "complainedRecipients": [{"emailAddress": "ses1@example.com"}]},
            "mail": {"messageId": "ses-2", "commonHeaders": {"messageId": "<x@y>"}}
        })
        .to_string()
        .into_boxed_str(),
    );
    let complaint = sns_message(&fields("m-2", complaint_message), "2", &cert);
    assert_eq!(
        post(&app, "/webhooks/ses", &header("Notification"), &complaint)
            .await
            .0,
        200
    );
    assert_eq!(
        status_of(&app, "ses1@example.com").await,
        SubscriberStatus::Complained
    );
    // SNS delivers again: recorded once.
    let (_, answer) = post(&app, "/webhooks/ses", &header("Notification"), &bounce).await;
    assert_eq!(answer["duplicates"], 1);
    // Tampered, from another topic, or with a certificate off the SNS hosts: refused.
    let other_message: &'static str =
        Box::leak(ses_bounce("fb-3", "ses2@example.com", "Permanent").into_boxed_str());
    let tampered = sns_message(&fields("m-3", other_message), "1", &cert).replace("ses2@", "ses1@");
    assert_eq!(
        post(&app, "/webhooks/ses", &header("Notification"), &tampered)
            .await
            .0,
        401
    );
    let elsewhere = sns_message(
        &fields("m-3", other_message),
        "1",
        "https://evil.example.com/cert.pem",
    );
    assert_eq!(
        post(&app, "/webhooks/ses", &header("Notification"), &elsewhere)
            .await
            .0,
        403
    );
    let plain = sns_message(
        &fields("m-3", other_message),
        "1",
        &cert.replace("https:", "http:"),
    );
    assert_eq!(
        post(&app, "/webhooks/ses", &header("Notification"), &plain)
            .await
            .0,
        403
    );
    let mut other_topic = fields("m-3", other_message);
    other_topic[2] = (
        "TopicArn",
        "arn:aws:sns:eu-west-1:123456789012:someone-else",
    );
    let other_topic = sns_message(&other_topic, "1", &cert);
    assert_eq!(
        post(&app, "/webhooks/ses", &header("Notification"), &other_topic)
            .await
            .0,
        403
    );
    assert_eq!(
        post(
            &app,
            "/webhooks/ses",
            &header("Notification"),
            "{\"Type\": 1}"
        )
        .await
        .0,
        400
    );
    assert_eq!(
        status_of(&app, "ses2@example.com").await,
        SubscriberStatus::Active
    );
    assert_eq!(events(&app).await, 2);
}

async fn soft_bounces_count_once_per_issue_toward_the_threshold(backend: Backend) {
    let app = app(backend).await;
    let token = app.api_token().await;
    app.seed_active("soft", 1).await;
    let auth = basic(POSTMARK);
    let soft = |id: u64, message_id: &str| {
        let mut body: Value =
            serde_json::from_str(&postmark_bounce(id, "SoftBounce", "soft0@example.com")).unwrap();
        body["MessageID"] = message_id.into();
        body.to_string()
    };
    // Two deferrals of the first issue count once; one of the second reaches the threshold (2).
    let first = start_send(&app, &token, "First").await;
    wait_status(&app, first, IssueStatus::Sent, 20).await;
    let first_id = fortnight::store::issues::get(&app.db, first)
        .await
        .unwrap()
        .unwrap();
    let reader = app.subscriber("soft0@example.com").await.unwrap();
    let message_id = format!(
        "<{}.{}@news.example.com>",
        first_id.uid.simple(),
        reader.uid.simple()
    );
    // Postmark's records carry no Message-ID of ours; a SendGrid-style smtp-id does.
    let now = chrono::Utc::now().timestamp();
    let sendgrid = |id: &str| {
        json!([{"email": "soft0@example.com", "timestamp": now, "smtp-id": message_id, "event": "bounce",
                "sg_event_id": id, "reason": "452 mailbox full", "status": "4.2.2", "type": "blocked"}])
        .to_string()
    };
    for id in ["d-1", "d-2"] {
        let body = sendgrid(id);
        assert_eq!(
            post(
                &app,
                "/webhooks/sendgrid",
                &sendgrid_headers(&body, now, &sendgrid_key()),
                &body
            )
            .await
            .0,
            200
        );
    }
    assert_eq!(
        status_of(&app, "soft0@example.com").await,
        SubscriberStatus::Active,
        "counted once for one issue"
    );
    let recorded = mail_events::recent(&app.db, None, 10).await.unwrap();
    assert!(
        recorded.iter().all(|e| e.issue_id == Some(first)),
        "{recorded:?}"
    );
    // A deferral that names no issue (Postmark's carry no Message-ID of ours) counts nothing.
    let (status, _) = post(&app, "/webhooks/postmark", &auth, &soft(900, "x")).await;
    assert_eq!(status, 200);
    assert_eq!(
        status_of(&app, "soft0@example.com").await,
        SubscriberStatus::Active
    );
    // One of the second issue reaches the threshold (2).
    let second = start_send(&app, &token, "Second").await;
    wait_status(&app, second, IssueStatus::Sent, 20).await;
    let second_uid = fortnight::store::issues::get(&app.db, second)
        .await
        .unwrap()
        .unwrap()
        .uid;
    let body = json!([{"email": "soft0@example.com", "timestamp": now,
        "smtp-id": format!("<{}.{}@news.example.com>", second_uid.simple(), reader.uid.simple()),
        "event": "bounce", "sg_event_id": "d-3", "reason": "452 mailbox full", "status": "4.2.2", "type": "blocked"}])
    .to_string();
    assert_eq!(
        post(
            &app,
            "/webhooks/sendgrid",
            &sendgrid_headers(&body, now, &sendgrid_key()),
            &body
        )
        .await
        .0,
        200
    );
    assert_eq!(
        status_of(&app, "soft0@example.com").await,
        SubscriberStatus::Bounced
    );
}

async fn a_suppressed_address_is_not_imported_or_added_until_lifted(backend: Backend) {
    let app = app(backend).await;
    app.seed_active("gone", 1).await;
    let body = postmark_bounce(5, "HardBounce", "gone0@example.com");
    assert_eq!(
        post(&app, "/webhooks/postmark", &basic(POSTMARK), &body)
            .await
            .0,
        200
    );
    // Erased, then imported or added again: refused while suppressed.
    let id = app.subscriber("gone0@example.com").await.unwrap().id;
    fortnight::store::subscriber_admin::erase(&app.db, id)
        .await
        .unwrap();
    app.sign_in().await;
    let page = app
        .import_csv("email\ngone0@example.com\nnew@example.com\n", true)
        .await;
    assert!(
        page.contains("1 not added because their address is suppressed"),
        "{page}"
    );
    assert!(app.subscriber("gone0@example.com").await.is_none());
    let added = app
        .admin_post(
            "/admin/subscribers",
            &[("email", "GONE0@example.com"), ("consented", "yes")],
        )
        .await;
    assert_eq!(added.status(), 409);
    assert!(app.subscriber("gone0@example.com").await.is_none());
    // Lifted, the address may come back.
    assert!(
        mail_events::lift(&app.db, "gone0@example.com")
            .await
            .unwrap()
    );
    let added = app
        .admin_post(
            "/admin/subscribers",
            &[("email", "gone0@example.com"), ("consented", "yes")],
        )
        .await;
    assert_eq!(added.status(), 303);
    assert_eq!(
        status_of(&app, "gone0@example.com").await,
        SubscriberStatus::Active
    );
}

async fn the_admin_and_the_api_show_bounces_and_lift_suppressions(backend: Backend) {
    let app = app(backend).await;
    app.seed_active("dv", 2).await;
    let token = app.api_token().await;
    let body = postmark_bounce(77, "HardBounce", "dv0@example.com");
    assert_eq!(
        post(&app, "/webhooks/postmark", &basic(POSTMARK), &body)
            .await
            .0,
        200
    );
    app.sign_in().await;
    let page = app.get("/admin/deliverability").await.text().await.unwrap();
    assert!(
        page.contains("http://news.example.com/webhooks/postmark"),
        "{page}"
    );
    assert!(page.contains("550 5.1.1"), "the evidence: {page}");
    assert!(
        page.contains("<td>dv0@example.com</td><td>bounce</td><td>postmark</td>"),
        "{page}"
    );
    let searched = app
        .get("/admin/deliverability?q=nobody")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        searched.contains("No suppressed address matches"),
        "{searched}"
    );
    assert_eq!(app.get("/admin/deliverability?q=%00").await.status(), 400);
    // The API lists the same.
    let listed: Value = app
        .api(reqwest::Method::GET, "/api/v1/bounces", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["email"], "dv0@example.com");
    assert_eq!(listed["data"][0]["effect"], "bounced");
    let suppressed: Value = app
        .api(reqwest::Method::GET, "/api/v1/suppressions?q=dv0", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(suppressed["data"][0]["reason"], "bounce");
    // Lifted in the admin; lifting again is a 404 in the API.
    let lifted = app
        .admin_post(
            "/admin/deliverability/lift",
            &[("email", "dv0@example.com")],
        )
        .await;
    assert_eq!(lifted.status(), 303);
    let again = app
        .api(
            reqwest::Method::DELETE,
            "/api/v1/suppressions/dv0@example.com",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert!(
        mail_events::suppressions(&app.db, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_unconfigured_webhook_is_not_found(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |_| {}).await;
    for path in [
        "/webhooks/postmark",
        "/webhooks/mailgun",
        "/webhooks/sendgrid",
        "/webhooks/ses",
    ] {
        let (status, _) = post(&app, path, &basic(POSTMARK), "{}").await;
        assert_eq!(status, 404, "{path}");
    }
}

async fn each_copy_goes_out_from_a_bounce_address_that_names_it(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.bounce_address = Some("bounces@news.example.com".into());
        c.mailgun_webhook_signing_key = Some(MAILGUN_KEY.into());
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("verp", 2).await;
    let id = start_send(&app, &token, "Enveloped").await;
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    let mail = app.wait_for_mail(2).await;
    let mut senders = Vec::new();
    for copy in mail.iter().filter(|m| m.to[0].starts_with("verp")) {
        assert!(
            copy.from.starts_with("bounces+d") && copy.from.ends_with("@news.example.com"),
            "{}",
            copy.from
        );
        let parsed = copy.parsed();
        let from = parsed
            .from()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_owned();
        assert!(
            !from.contains('+'),
            "the From stays the publication's: {from}"
        );
        senders.push((copy.to[0].clone(), copy.from.clone()));
    }
    assert_ne!(senders[0].1, senders[1].1, "one bounce address per copy");
    // A bounce whose recipient was rewritten on the way still finds its reader by the
    // bounce address (Mailgun reports the envelope sender).
    let (reader, sender) = senders
        .iter()
        .find(|(to, _)| to == "verp1@example.com")
        .unwrap()
        .clone();
    let now = chrono::Utc::now().timestamp();
    let mut body: Value = serde_json::from_str(&mailgun_body(
        "verp-1",
        "failed",
        "permanent",
        "mangled-address@relay.example",
        now,
        MAILGUN_KEY,
    ))
    .unwrap();
    body["event-data"]["envelope"] =
        json!({"sender": sender, "targets": "mangled-address@relay.example"});
    let (status, answer) = post(&app, "/webhooks/mailgun", &[], &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(status_of(&app, &reader).await, SubscriberStatus::Bounced);
    assert_eq!(
        status_of(&app, "verp0@example.com").await,
        SubscriberStatus::Active
    );
    let recorded = mail_events::recent(&app.db, None, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(recorded.issue_id, Some(id));
    // A forged bounce address names nothing: the address alone decides (no such reader).
    let forged = sender.replace("bounces+d", "bounces+d9");
    body["event-data"]["id"] = "verp-2".into();
    body["event-data"]["envelope"] = json!({"sender": forged});
    post(&app, "/webhooks/mailgun", &[], &body.to_string()).await;
    assert_eq!(
        status_of(&app, "verp0@example.com").await,
        SubscriberStatus::Active
    );
    assert_eq!(senders.len(), 2);
    // Transactional mail goes out from a bounce address too: the editors' summary of the
    // send, and a confirmation.
    let summary = app
        .wait_for_mail(3)
        .await
        .into_iter()
        .find(|m| m.to[0] == "api-owner@example.com")
        .unwrap();
    assert!(summary.from.starts_with("bounces+o"), "{}", summary.from);
    app.sign_up("later@example.com").await;
    let all = app.wait_for_mail(4).await;
    let confirmation = all.iter().find(|m| m.to[0] == "later@example.com").unwrap();
    assert!(
        confirmation.from.starts_with("bounces+o"),
        "{:?}",
        all.iter().map(|m| (&m.from, &m.to)).collect::<Vec<_>>()
    );
}

async fn soft_bounces_end_a_subscription_only_on_consecutive_issues(backend: Backend) {
    let app = app(backend).await;
    let token = app.api_token().await;
    app.seed_active("run", 1).await;
    let reader = app.subscriber("run0@example.com").await.unwrap();
    let mut message_ids = Vec::new();
    for subject in ["One", "Two", "Three"] {
        let id = start_send(&app, &token, subject).await;
        wait_status(&app, id, IssueStatus::Sent, 20).await;
        let issue = fortnight::store::issues::get(&app.db, id)
            .await
            .unwrap()
            .unwrap();
        message_ids.push(format!(
            "<{}.{}@news.example.com>",
            issue.uid.simple(),
            reader.uid.simple()
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let deferred = |n: usize| {
        let body =
            json!([{"email": "run0@example.com", "timestamp": now, "smtp-id": message_ids[n],
            "event": "bounce", "sg_event_id": format!("run-{n}"), "reason": "452 mailbox full",
            "status": "4.2.2", "type": "blocked"}])
            .to_string();
        let app = &app;
        async move {
            let headers = sendgrid_headers(&body, now, &sendgrid_key());
            assert_eq!(
                post(app, "/webhooks/sendgrid", &headers, &body).await.0,
                200
            );
        }
    };
    // The first and the third issue bounced, the second got through: no run of two.
    deferred(0).await;
    deferred(2).await;
    assert_eq!(
        status_of(&app, "run0@example.com").await,
        SubscriberStatus::Active
    );
    // A late report for the second: the first two are a run of two (the threshold).
    deferred(1).await;
    assert_eq!(
        status_of(&app, "run0@example.com").await,
        SubscriberStatus::Bounced
    );
}
