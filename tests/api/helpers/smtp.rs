//! A real SMTP server in-process (mailin-embedded over TCP) that captures what it is sent and
//! can be told to refuse recipients.
//!
//! By default it offers PIPELINING (RFC 2920), as production servers do, through a relay in
//! front of mailin (which reads commands in order but does not say so). The relay holds back
//! the replies to a MAIL … DATA group until the client has sent DATA, so a client that waited
//! for each reply instead of pipelining would stall and its test fail. A test of mail that takes
//! lettre's unpipelined path (non-ASCII addresses or bodies) needs `start_without_pipelining`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};

use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};

/// How the server answers `RCPT TO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpScript {
    /// Accept everything.
    #[default]
    Accept,
    /// 451: try again later.
    TemporaryFailure,
    /// 550: no such mailbox.
    PermanentFailure,
}

/// How the server answers one attempt for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Take it.
    Accept,
    /// 451 at RCPT: try again later.
    Temporary,
    /// 550 at RCPT: no such mailbox.
    Permanent,
    /// Take the whole message, then answer 421 and hang up instead of accepting it: the
    /// connection drops at the end of DATA.
    DropInData,
    /// Wait this many milliseconds at RCPT, then take it.
    Slow(u64),
}

/// One captured message.
#[derive(Clone, Debug)]
pub struct CapturedMail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The raw message as received.
    pub raw: Vec<u8>,
    /// When the server accepted it.
    pub accepted_at: std::time::Instant,
}

impl CapturedMail {
    /// The parsed message.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parsable message")
    }

    /// The decoded plain-text part.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .expect("a text part")
            .into_owned()
    }

    /// The decoded HTML part.
    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .expect("an html part")
            .into_owned()
    }

    /// A header's raw value, trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = self.parsed();
        parsed.header_raw(name).map(|v| v.trim().to_owned())
    }
}

#[derive(Default)]
struct Shared {
    messages: Vec<CapturedMail>,
    /// When each transaction started (MAIL FROM was read), in order.
    starts: Vec<std::time::Instant>,
    /// How long the server takes over each message before accepting it.
    delay: std::time::Duration,
    /// How long the server takes to answer MAIL FROM.
    mail_delay: std::time::Duration,
    /// How long the server waits before greeting a new connection (PIPELINING servers only).
    greeting_delay: std::time::Duration,
    /// New connections are closed at once, as by a server that is down (PIPELINING servers only).
    offline: bool,
    script: SmtpScript,
    /// Per-recipient answers, one per attempt, consumed in order; then the script applies.
    replies: std::collections::HashMap<String, std::collections::VecDeque<Reply>>,
}

#[derive(Clone)]
struct Capture {
    shared: Arc<Mutex<Shared>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    drop_in_data: bool,
}

impl Handler for Capture {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        let delay = {
            let mut shared = self.shared.lock().unwrap();
            shared.starts.push(std::time::Instant::now());
            shared.mail_delay
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let scripted = self
            .shared
            .lock()
            .unwrap()
            .replies
            .get_mut(&to.to_lowercase())
            .and_then(|q| q.pop_front());
        match scripted {
            Some(Reply::Accept) => return OK,
            Some(Reply::Temporary) => return INTERNAL_ERROR,
            Some(Reply::Permanent) => return NO_MAILBOX,
            Some(Reply::DropInData) => {
                self.drop_in_data = true;
                return OK;
            }
            Some(Reply::Slow(ms)) => {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                return OK;
            }
            None => {}
        }
        match self.shared.lock().unwrap().script {
            SmtpScript::Accept => OK,
            SmtpScript::TemporaryFailure => INTERNAL_ERROR,
            SmtpScript::PermanentFailure => NO_MAILBOX,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if std::mem::take(&mut self.drop_in_data) {
            self.data.clear();
            return mailin_embedded::response::NO_SERVICE;
        }
        let delay = self.shared.lock().unwrap().delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mail = CapturedMail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            raw: std::mem::take(&mut self.data),
            accepted_at: std::time::Instant::now(),
        };
        self.shared.lock().unwrap().messages.push(mail);
        OK
    }
}

/// A running capture server; it lives until the test process ends.
#[derive(Clone)]
pub struct SmtpCapture {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl SmtpCapture {
    /// Starts a server offering PIPELINING on a free port.
    pub fn start(script: SmtpScript) -> SmtpCapture {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    /// Starts a server offering PIPELINING on a listener the caller bound.
    fn start_on(listener: TcpListener, script: SmtpScript) -> SmtpCapture {
        let inner = Self::start_without_pipelining(script);
        let port = listener.local_addr().unwrap().port();
        let back = inner.port;
        let shared = inner.shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (greeting_delay, offline) = {
                    let shared = shared.lock().unwrap();
                    (shared.greeting_delay, shared.offline)
                };
                if offline {
                    drop(client);
                    continue;
                }
                if let Ok(server) = TcpStream::connect(("127.0.0.1", back)) {
                    relay(client, server, greeting_delay);
                }
            }
        });
        SmtpCapture { port, ..inner }
    }

    /// Starts a server on a free port that does not offer PIPELINING.
    pub fn start_without_pipelining(script: SmtpScript) -> SmtpCapture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            script,
            ..Shared::default()
        }));
        let handler = Capture {
            shared: shared.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
            drop_in_data: false,
        };
        let mut server = Server::new(handler);
        // A thread per connection, and pooled connections stay open: room for every pool (three
        // instances of eight connections, their transactional mail and a test's own client).
        // The server's threads live as long as the test process, so this is kept no larger.
        server
            .with_name("capture.test")
            .with_num_threads(32)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpCapture { port, shared }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything captured so far.
    pub fn messages(&self) -> Vec<CapturedMail> {
        self.shared.lock().unwrap().messages.clone()
    }

    /// Answers the attempts for `email` with `replies`, in order (then as the script says).
    pub fn script_recipient(&self, email: &str, replies: &[Reply]) {
        self.shared
            .lock()
            .unwrap()
            .replies
            .insert(email.to_lowercase(), replies.iter().copied().collect());
    }

    /// When each transaction so far started (the server read MAIL FROM).
    pub fn starts(&self) -> Vec<std::time::Instant> {
        self.shared.lock().unwrap().starts.clone()
    }

    /// Makes the server take `delay` over each message before accepting it (a slow relay).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.shared.lock().unwrap().delay = delay;
    }

    /// Makes the server take `delay` to answer MAIL FROM (a relay doing slow checks).
    pub fn set_mail_delay(&self, delay: std::time::Duration) {
        self.shared.lock().unwrap().mail_delay = delay;
    }

    /// Takes the server down (new connections are closed before the greeting) or back up.
    pub fn set_offline(&self, offline: bool) {
        self.shared.lock().unwrap().offline = offline;
    }

    /// Makes the server wait `delay` before greeting each new connection.
    pub fn set_greeting_delay(&self, delay: std::time::Duration) {
        self.shared.lock().unwrap().greeting_delay = delay;
    }

    /// Changes how recipients are answered from now on.
    pub fn set_script(&self, script: SmtpScript) {
        self.shared.lock().unwrap().script = script;
    }
}

/// Relays one session between `client` and `server`, adding PIPELINING to the EHLO answer and
/// holding the server's replies while the client is between MAIL and DATA; the greeting is
/// held back for `greeting_delay`.
fn relay(client: TcpStream, server: TcpStream, greeting_delay: std::time::Duration) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    // True while the client has sent MAIL but not yet DATA.
    let group = Arc::new((Mutex::new(false), Condvar::new()));
    let set = |group: &(Mutex<bool>, Condvar), open: bool| {
        *group.0.lock().unwrap() = open;
        group.1.notify_all();
    };
    let (Ok(client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = group.clone();
    std::thread::spawn(move || {
        let mut from = BufReader::new(client_in);
        let mut line = Vec::new();
        let mut in_data = false;
        while matches!(from.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if in_data {
                in_data = line != b".\r\n";
            } else if line.to_ascii_uppercase().starts_with(b"MAIL FROM") {
                set(&upstream, true);
            } else if line.to_ascii_uppercase().starts_with(b"DATA") {
                set(&upstream, false);
                in_data = true;
            }
            if server_out.write_all(&line).is_err() {
                break;
            }
            line.clear();
        }
        set(&upstream, false);
        let _ = server_out.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        // mailin writes each reply on its own without TCP_NODELAY: acknowledge at once, or its
        // next reply waits for a delayed ACK (40 ms a message).
        let Ok(quick) = server.try_clone() else {
            return;
        };
        let mut from = BufReader::new(server);
        let mut to = client;
        let mut line = Vec::new();
        std::thread::sleep(greeting_delay);
        loop {
            let _ = socket2::SockRef::from(&quick).set_tcp_quickack(true);
            if !matches!(from.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                break;
            }
            let mut open = group.0.lock().unwrap();
            while *open {
                open = group.1.wait(open).unwrap();
            }
            drop(open);
            let mut out = std::mem::take(&mut line);
            if out.starts_with(b"250-") && out.ends_with(b"extensions:\r\n") {
                out.extend_from_slice(b"250-PIPELINING\r\n");
            }
            if to.write_all(&out).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
