//! A small SMTP relay that names every message it accepts: its answer to the end of DATA is
//! `250 2.0.0 Ok: queued as <id>`, with an id used nowhere else. Fortnight records that answer
//! with the delivery, so the id marks the frames of the log that record this copy's acceptance.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message the relay accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The message, dot-unstuffed.
    pub raw: Vec<u8>,
    /// The id in the relay's answer.
    pub queue_id: String,
}

/// A running relay; it lives until the test process ends.
pub struct Relay {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    accepted: Arc<Mutex<Vec<Accepted>>>,
}

impl Relay {
    /// Starts the relay on a free port, a thread per connection.
    pub fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let shared = accepted.clone();
        // Ids differ between relays of one run as well as between messages.
        let prefix = format!(
            "durableq{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let counter = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (accepted, prefix, counter) = (shared.clone(), prefix.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = session(stream, &accepted, &prefix, &counter);
                });
            }
        });
        Relay { port, accepted }
    }

    /// Everything accepted so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }
}

/// One SMTP session: no extensions, so every command is its own write from the client.
fn session(
    stream: TcpStream,
    accepted: &Mutex<Vec<Accepted>>,
    prefix: &str,
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 relay.durable.test ESMTP\r\n")?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => "250 relay.durable.test\r\n".to_owned(),
            "MAIL" | "RSET" => {
                to.clear();
                "250 2.1.0 Ok\r\n".to_owned()
            }
            "RCPT" => {
                let address = line.split(['<', '>']).nth(1).unwrap_or_default();
                to.push(address.to_lowercase());
                "250 2.1.5 Ok\r\n".to_owned()
            }
            "DATA" => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let raw = read_data(&mut input)?;
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let queue_id = format!("{prefix}{n:04}");
                let answer = format!("250 2.0.0 Ok: queued as {queue_id}\r\n");
                accepted.lock().unwrap().push(Accepted {
                    to: std::mem::take(&mut to),
                    raw,
                    queue_id,
                });
                answer
            }
            "NOOP" => "250 2.0.0 Ok\r\n".to_owned(),
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => "502 5.5.2 Error: command not recognized\r\n".to_owned(),
        };
        out.write_all(answer.as_bytes())?;
    }
}

/// The message after DATA, up to the lone `.` line, with dot-stuffing undone.
fn read_data(input: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 || line == b".\r\n" {
            return Ok(raw);
        }
        let start = usize::from(line.starts_with(b".."));
        raw.extend_from_slice(&line[start..]);
    }
}
