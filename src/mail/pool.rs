//! Our own pool of SMTP connections, reused across messages: the delivery worker's, and the
//! instance's own mail (confirmations, notices, test sends) through [`super::Mailer`].
//!
//! lettre's pooled transport writes the message and the final `.` in two writes without
//! `TCP_NODELAY`, so every message waits for a delayed ACK (about 40 ms). Here each
//! connection's socket has `TCP_NODELAY` set before lettre's SMTP client takes it over
//! (`AsyncSmtpConnection::connect_with_transport`), then STARTTLS and AUTH as the URL asks.
//! `smtps://` (TLS from the first byte) uses lettre's own connect.
//!
//! When the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write and
//! their replies are read together, so a message costs two round trips instead of four.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Mutex;
use url::Url;

use super::SendError;

/// How long one connect or one message may take.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(clippy::enum_variant_names, reason = "STARTTLS is the command's name")]
enum Tls {
    None,
    StartTls { required: bool },
    Implicit,
}

/// Where and how to connect, read from `smtp_url`.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    /// The name for EHLO, when the URL gives one (else this machine's host name).
    hello: Option<String>,
}

impl Target {
    fn parse(raw: &str) -> Result<Target, String> {
        let url = Url::parse(raw).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("no host")?.to_owned();
        let tls = match (
            url.scheme(),
            url.query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned()),
        ) {
            ("smtps", _) => Tls::Implicit,
            (_, Some(mode)) if mode == "required" => Tls::StartTls { required: true },
            (_, Some(mode)) if mode == "opportunistic" => Tls::StartTls { required: false },
            (_, None) => Tls::None,
            (_, Some(mode)) => {
                return Err(format!(
                    "tls={mode}: must be `required` or `opportunistic` (STARTTLS), or use smtps://"
                ));
            }
        };
        // The ports of RFC 8314: implicit TLS on 465, submission with STARTTLS on 587.
        let port = url.port().unwrap_or(match tls {
            Tls::Implicit => 465,
            Tls::StartTls { .. } => 587,
            Tls::None => 25,
        });
        // A name to greet with may follow the host, as in `smtp://host:25/client.example.com`.
        let hello = url.path().trim_matches('/');
        let hello = (!hello.is_empty()).then(|| percent_decode(hello));
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_decode(s);
            Credentials::new(decode(url.username()), decode(url.password().unwrap_or("")))
        });
        Ok(Target {
            host,
            port,
            tls,
            credentials,
            hello,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A connection that sat unused this long is checked (NOOP) before it is used again: servers
/// drop idle sessions, and a message sent into a dead one would wait out a retry for nothing.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

/// One open session, with what the server said it can do.
struct Session {
    conn: AsyncSmtpConnection,
    /// The server offers PIPELINING.
    pipelining: bool,
}

/// A pool of up to `size` SMTP connections to one server.
pub struct SmtpPool {
    target: Target,
    idle: Mutex<Vec<(Session, std::time::Instant)>>,
    size: usize,
    hello: ClientId,
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else {
        SendError::Temporary(e.to_string())
    }
}

impl SmtpPool {
    /// A pool for `smtp_url`, keeping at most `size` connections open.
    pub fn new(smtp_url: &str, size: usize) -> Result<SmtpPool, String> {
        let target = Target::parse(smtp_url)?;
        let hello = target
            .hello
            .clone()
            .map_or_else(ClientId::default, ClientId::Domain);
        Ok(SmtpPool {
            target,
            idle: Mutex::new(Vec::new()),
            size: size.max(1),
            hello,
        })
    }

    /// A fresh connection: TCP with `TCP_NODELAY`, EHLO, STARTTLS and AUTH as configured.
    /// Failing to reach the server at all is [`SendError::Unavailable`].
    async fn connect(&self) -> Result<Session, SendError> {
        let t = &self.target;
        let unavailable = |e: &dyn std::fmt::Display| {
            SendError::Unavailable(format!("cannot reach {}:{}: {e}", t.host, t.port))
        };
        let mut conn = if t.tls == Tls::Implicit {
            let tls = TlsParameters::new(t.host.clone())
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            AsyncSmtpConnection::connect_tokio1(
                (t.host.as_str(), t.port),
                Some(TIMEOUT),
                &self.hello,
                Some(tls),
                None,
            )
            .await
            .map_err(|e| unavailable(&e))?
        } else {
            let stream = tokio::time::timeout(
                TIMEOUT,
                tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
            )
            .await
            .map_err(|e| unavailable(&e))?
            .map_err(|e| unavailable(&e))?;
            stream.set_nodelay(true).map_err(|e| unavailable(&e))?;
            tokio::time::timeout(
                TIMEOUT,
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
            )
            .await
            .map_err(|e| unavailable(&e))?
            .map_err(|e| unavailable(&e))?
        };
        if let Tls::StartTls { required } = t.tls {
            if conn.can_starttls() {
                let tls = TlsParameters::new(t.host.clone())
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                conn.starttls(tls, &self.hello).await.map_err(classify)?;
            } else if required {
                return Err(SendError::Unavailable(
                    "the server does not offer STARTTLS, which smtp_url requires".into(),
                ));
            }
        }
        // lettre keeps only the extensions it knows, and PIPELINING is not one of them: ask
        // again (before AUTH, which some servers want to be the last word of the greeting).
        let pipelining = offers_pipelining(&mut conn, &self.hello)
            .await
            .map_err(classify)?;
        if let Some(credentials) = &t.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(Session { conn, pipelining })
    }

    /// Opens one connection as a send would (EHLO, STARTTLS and AUTH as configured), sends
    /// nothing and closes it; says what the server offered.
    pub async fn probe(&self) -> Result<String, SendError> {
        let mut session = self.connect().await?;
        let t = &self.target;
        let tls = match t.tls {
            Tls::Implicit => "TLS",
            Tls::StartTls { .. } if session.conn.is_encrypted() => "STARTTLS",
            _ => "no TLS",
        };
        let auth = if t.credentials.is_some() {
            "signed in"
        } else {
            "no AUTH"
        };
        let _ = session.conn.quit().await;
        Ok(format!("{}:{} ({tls}, {auth})", t.host, t.port))
    }

    /// Sends one message over a pooled connection (opening one when none is idle); returns
    /// the server's reply. A connection that broke is dropped, not returned to the pool.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<String, SendError> {
        self.send_when(envelope, raw, || Some(()))
            .await
            .map(|reply| reply.expect("always entered"))
    }

    /// [`send`](Self::send), but the transaction starts only if `enter` agrees, asked once
    /// the connection is ready: `Ok(None)` when it refused and nothing was sent. What `enter`
    /// returns is held until the server has answered MAIL FROM, the start of the transaction,
    /// so whoever steers the sends can wait until no transaction can start on what it changed.
    pub async fn send_when<E>(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        enter: impl FnOnce() -> Option<E>,
    ) -> Result<Option<String>, SendError> {
        let mut session = loop {
            let idle = self.idle.lock().await.pop();
            match idle {
                Some((mut session, since)) => {
                    if since.elapsed() < CHECK_AFTER_IDLE || session.conn.test_connected().await {
                        break session;
                    }
                }
                None => {
                    break tokio::time::timeout(TIMEOUT, self.connect())
                        .await
                        .map_err(|_| {
                            SendError::Unavailable(format!(
                                "{}:{} did not finish the greeting in time",
                                self.target.host, self.target.port
                            ))
                        })??;
                }
            }
        };
        let Some(entry) = enter() else {
            self.keep(session).await;
            return Ok(None);
        };
        let result =
            tokio::time::timeout(TIMEOUT, transact(&mut session, envelope, raw, entry)).await;
        // A connection that failed in any way (or timed out) is in an unknown state: drop it.
        let result = match result {
            Ok(result) => result.map_err(classify),
            Err(_) => {
                return Err(SendError::Temporary(
                    "the mail server took too long to answer".into(),
                ));
            }
        };
        if result.is_ok() && !session.conn.has_broken() {
            self.keep(session).await;
        }
        result.map(|r| {
            Some(format!(
                "{} {}",
                r.code(),
                r.message().collect::<Vec<_>>().join(" ")
            ))
        })
    }

    /// Returns a healthy session to the pool, unless the pool is full.
    async fn keep(&self, session: Session) {
        let mut idle = self.idle.lock().await;
        if idle.len() < self.size {
            idle.push((session, std::time::Instant::now()));
        }
    }
}

/// Whether the server lists PIPELINING in its answer to a fresh EHLO.
async fn offers_pipelining(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<bool, lettre::transport::smtp::Error> {
    use lettre::transport::smtp::commands::Ehlo;
    match conn.command(Ehlo::new(hello.clone())).await {
        Ok(reply) => Ok(reply
            .message()
            .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"))),
        // A refused EHLO leaves the session as it was (RFC 5321 4.1.4): go on without.
        Err(e) if e.is_permanent() || e.is_transient() => Ok(false),
        Err(e) => Err(e),
    }
}

/// One mail transaction. Our messages are ASCII (quoted-printable bodies, encoded headers), so
/// they are dot-stuffed here with a vectorised scan for line ends and written in one piece; lettre's
/// own path stuffs byte by byte, which costs more CPU than everything else per message. Other
/// messages take lettre's path.
///
/// With PIPELINING, MAIL, every RCPT and DATA are written together and their replies read in
/// order; the first refusal is the answer. The caller drops a connection that answered with an
/// error, so nothing is left half-read on a session that is used again. `entry` is dropped once
/// MAIL FROM has been answered.
async fn transact<E>(
    session: &mut Session,
    envelope: &Envelope,
    raw: &[u8],
    entry: E,
) -> Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    let conn = &mut session.conn;
    let Some(text) = std::str::from_utf8(raw).ok().filter(|t| t.is_ascii()) else {
        return conn.send(envelope, raw).await;
    };
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    if !envelope.to().iter().all(ascii) || !envelope.from().is_none_or(ascii) {
        return conn.send(envelope, raw).await;
    }
    let mail = Mail::new(envelope.from().cloned(), vec![]);
    if session.pipelining {
        let mut group = mail.to_string();
        for to in envelope.to() {
            group.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        }
        group.push_str(&Data.to_string());
        let started = conn.command(group).await;
        drop(entry);
        started?;
        for _ in envelope.to() {
            conn.read_response().await?;
        }
        conn.read_response().await?;
    } else {
        let started = conn.command(mail).await;
        drop(entry);
        started?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![])).await?;
        }
        conn.command(Data).await?;
    }
    conn.command(Payload(text)).await
}

/// A message as DATA sends it: every line that starts with `.` gets another, and the
/// terminating `.` line follows.
struct Payload<'a>(&'a str);

impl std::fmt::Display for Payload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let bytes = text.as_bytes();
        let mut last = 0;
        for at in memchr::memchr_iter(b'\n', bytes).filter(|&at| bytes.get(at + 1) == Some(&b'.')) {
            f.write_str(&text[last..=at])?;
            f.write_str(".")?;
            last = at + 1;
        }
        f.write_str(&text[last..])?;
        if !text.ends_with("\r\n") {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_dot_stuffed_and_terminated() {
        assert_eq!(
            Payload(".a\r\nb\r\n.c\r\n..d").to_string(),
            "..a\r\nb\r\n..c\r\n...d\r\n.\r\n"
        );
        assert_eq!(Payload("x\r\n").to_string(), "x\r\n.\r\n");
    }

    #[test]
    fn urls_give_host_port_tls_and_credentials() {
        let t = Target::parse("smtp://us%40er:p%2Bss@mail.example.com:587?tls=required").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls.clone()),
            ("mail.example.com", 587, Tls::StartTls { required: true })
        );
        assert!(t.credentials.is_some());
        let t = Target::parse("smtps://mail.example.com").unwrap();
        assert_eq!((t.port, t.tls), (465, Tls::Implicit));
        let t = Target::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (t.port, t.tls, t.credentials.is_none()),
            (2525, Tls::None, true)
        );
        let t = Target::parse("smtp://mail.example.com?tls=opportunistic").unwrap();
        assert_eq!((t.port, t.hello), (587, None));
        let t = Target::parse("smtp://127.0.0.1:25/client.example.com").unwrap();
        assert_eq!(t.hello.as_deref(), Some("client.example.com"));
        assert!(Target::parse("smtp://u:p@mail.example.com?tls=true").is_err());
        assert_eq!(percent_decode("p%2Bss"), "p+ss");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
