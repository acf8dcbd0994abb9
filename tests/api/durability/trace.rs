//! Reading what `strace -f -yy -xx` recorded, and the one question asked of it: was the
//! transaction that holds some data synced to disk before an acknowledgement went out?
//!
//! strace stops each thread at every traced system call's entry and exit, and writes a line
//! (or, when threads interleave, an `<unfinished ...>` line and a `<... resumed>` line) as it
//! handles each stop. A call runs only after its entry has been handled, so when the exit of a
//! sync comes before the entry of a write in the file, the sync had returned before the write
//! began. Positions below are line numbers: `start` of a call is its entry, `end` its exit.

use std::collections::HashMap;

/// One traced system call.
#[derive(Debug)]
pub struct Call {
    /// The system call (`pwrite64`, `fdatasync`, `sendto`, ...).
    pub name: String,
    /// The first argument's descriptor, as `-yy` describes it: a file's path, or
    /// `TCP:[local->remote]` for a connection.
    pub fd: String,
    /// Every string argument, decoded and laid end to end (the buffer of a write).
    pub data: Vec<u8>,
    /// The numbers after the last string argument (a write's length and offset, the result).
    pub numbers: Vec<u64>,
    /// The line of its entry.
    pub start: usize,
    /// The line of its exit.
    pub end: usize,
    /// The call as written, up to its first string argument.
    head: String,
}

/// System calls that send bytes to a socket.
const SENDS: &[&str] = &["write", "writev", "sendto", "sendmsg"];

/// A whole trace.
pub struct Trace {
    calls: Vec<Call>,
}

/// The answer to "was it synced before the acknowledgement?", with the evidence.
#[derive(Debug)]
pub enum Verdict {
    /// A sync of the log began after the transaction's last frame was written and returned
    /// before the acknowledgement began.
    Synced(String),
    /// The transaction was in the log, but no sync of the log fell in between.
    NotSynced(String),
    /// The trace does not show what the check needs (no frame with the data, no commit).
    NotFound(String),
}

impl Verdict {
    /// Whether the data was on disk first.
    pub fn synced(&self) -> bool {
        matches!(self, Verdict::Synced(_))
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Synced(why) => write!(f, "synced: {why}"),
            Verdict::NotSynced(why) => write!(f, "NOT SYNCED: {why}"),
            Verdict::NotFound(why) => write!(f, "not found: {why}"),
        }
    }
}

impl Trace {
    /// Parses the file strace wrote.
    pub fn parse(text: &str) -> Trace {
        let mut open: HashMap<&str, (usize, String)> = HashMap::new();
        let mut calls = Vec::new();
        for (line, raw) in text.lines().enumerate() {
            let Some((pid, rest)) = raw.split_once(' ') else {
                continue;
            };
            let rest = rest.trim_start();
            if rest.starts_with("+++") || rest.starts_with("---") {
                continue;
            }
            if let Some(resumed) = rest.strip_prefix("<... ") {
                let tail = resumed.split_once(" resumed>").map_or("", |(_, t)| t);
                if let Some((start, head)) = open.remove(pid) {
                    calls.push(Call::parse(&format!("{head}{tail}"), start, line));
                }
            } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
                open.insert(pid, (line, head.to_owned()));
            } else {
                calls.push(Call::parse(rest, line, line));
            }
        }
        calls.sort_by_key(|c| c.start);
        Trace { calls }
    }

    /// The line where the server accepted the connection from local port `client`.
    pub fn accepted(&self, client: u16) -> Option<usize> {
        let from = format!("sin_port=htons({client})");
        self.calls
            .iter()
            .filter(|c| c.name.starts_with("accept") && c.head.contains(&from))
            .map(|c| c.end)
            .next_back()
    }

    /// Sends on the connection whose remote end is `127.0.0.1:port`, in order.
    pub fn sends_to(&self, port: u16) -> impl Iterator<Item = &Call> {
        let to = format!("->127.0.0.1:{port}]");
        self.calls
            .iter()
            .filter(move |c| SENDS.contains(&c.name.as_str()) && c.fd.ends_with(&to))
    }

    /// The SMTP transactions sent to the relay on `port`: where each began (the entry of the
    /// write of MAIL FROM), on which connection, and its first recipient.
    pub fn transactions(&self, port: u16) -> Vec<(usize, String, String)> {
        let sends: Vec<&Call> = self.sends_to(port).collect();
        let mut found = Vec::new();
        for (i, mail) in sends.iter().enumerate() {
            if !mail.data.starts_with(b"MAIL FROM:") {
                continue;
            }
            let rcpt = sends[i..]
                .iter()
                .filter(|c| c.fd == mail.fd)
                .find_map(|c| {
                    let text = String::from_utf8_lossy(&c.data).into_owned();
                    let at = text.find("RCPT TO:<")?;
                    text[at + 9..].split('>').next().map(str::to_lowercase)
                })
                .unwrap_or_default();
            found.push((mail.start, mail.fd.clone(), rcpt));
        }
        found
    }

    /// Whether the transaction that first wrote `marker` to the log after line `after` had
    /// been synced when the acknowledgement that began at line `ack` went out.
    pub fn synced_before(&self, marker: &str, after: usize, ack: usize) -> Verdict {
        let wal: Vec<&Call> = self
            .calls
            .iter()
            .filter(|c| c.fd.ends_with("-wal"))
            .collect();
        let writes: Vec<&&Call> = wal
            .iter()
            .filter(|c| {
                matches!(
                    c.name.as_str(),
                    "pwrite64" | "pwritev" | "pwritev2" | "write"
                )
            })
            .collect();
        let Some(at) = writes
            .iter()
            .position(|c| c.start > after && c.end < ack && contains(&c.data, marker.as_bytes()))
        else {
            return Verdict::NotFound(format!(
                "no frame holding {marker:?} was written to the log between lines {after} and {ack}"
            ));
        };
        let page = writes[at];
        // A frame is its 24-byte header, then its page; the header of a transaction's last
        // frame carries the database's size after the commit (zero in every other frame).
        let own_header = writes[..at]
            .iter()
            .rposition(|c| c.fd == page.fd && is_frame_header(c))
            .unwrap_or(at);
        let Some(commit) = writes[own_header..]
            .iter()
            .position(|c| c.fd == page.fd && is_frame_header(c) && c.data[4..8] != [0; 4])
            .map(|i| own_header + i)
        else {
            return Verdict::NotFound(format!(
                "the frames holding {marker:?} (line {}) were never committed",
                page.start
            ));
        };
        // The commit frame's page follows its header.
        let last = writes[commit + 1..]
            .iter()
            .find(|c| c.fd == page.fd)
            .copied()
            .unwrap_or(writes[commit]);
        let story = format!(
            "{marker:?} written at line {}, its transaction's last frame at line {}, the answer at line {ack}",
            page.start, last.end
        );
        if last.end > ack {
            return Verdict::NotFound(format!("{story}: committed after the answer"));
        }
        let sync = wal.iter().find(|c| {
            matches!(c.name.as_str(), "fsync" | "fdatasync") && c.start > last.end && c.end < ack
        });
        match sync {
            Some(sync) => Verdict::Synced(format!(
                "{story}; {} of the log at lines {}-{}",
                sync.name, sync.start, sync.end
            )),
            None => Verdict::NotSynced(format!("{story}; no sync of the log in between")),
        }
    }
}

impl Call {
    fn parse(text: &str, start: usize, end: usize) -> Call {
        let (name, args) = text.split_once('(').unwrap_or((text, ""));
        let digits = args
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(args.len());
        let (fd, rest) = match args[digits..].strip_prefix('<') {
            Some(described) => descriptor(described),
            None => (String::new(), &args[digits..]),
        };
        let (data, tail) = strings(rest);
        let numbers = tail
            .split([',', ')', '=', ' '])
            .filter_map(|n| n.parse().ok())
            .collect();
        Call {
            name: name.to_owned(),
            fd,
            data,
            numbers,
            start,
            end,
            head: text[..text.find('"').unwrap_or(text.len())].to_owned(),
        }
    }
}

/// A descriptor as `-yy` shows it, after its `<`: a connection in plain text up to `]>`, or a
/// path in `\xNN` escapes up to the `>` (or `<`) that is not escaped. Returns it and the rest.
fn descriptor(s: &str) -> (String, &str) {
    if let Some(end) = s
        .find("]>")
        .filter(|_| s.contains(":[") && !s.starts_with('\\'))
    {
        return (s[..end + 1].to_owned(), &s[end + 2..]);
    }
    let end = s.find(['<', '>']).unwrap_or(s.len());
    let path = String::from_utf8_lossy(&unescape(&s[..end])).into_owned();
    let close = s[end..].find('>').map_or(s.len(), |i| end + i);
    (path, &s[close.min(s.len())..])
}

/// The decoded strings of an argument list, laid end to end, and what follows the last.
fn strings(mut s: &str) -> (Vec<u8>, &str) {
    let mut data = Vec::new();
    while let Some(open) = s.find('"') {
        let body = &s[open + 1..];
        let mut close = 0;
        let bytes = body.as_bytes();
        while close < bytes.len() && bytes[close] != b'"' {
            close += if bytes[close] == b'\\' { 2 } else { 1 };
        }
        data.extend(unescape(&body[..close.min(body.len())]));
        s = &body[(close + 1).min(body.len())..];
    }
    (data, s)
}

/// Undoes strace's escapes (`\xNN`, and the C ones).
fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 4);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match bytes[i + 1] {
            b'x' => (
                u8::from_str_radix(s.get(i + 2..i + 4).unwrap_or("00"), 16).unwrap_or(0),
                4,
            ),
            b'n' => (b'\n', 2),
            b'r' => (b'\r', 2),
            b't' => (b'\t', 2),
            other => (other, 2),
        };
        out.push(byte);
        i += used;
    }
    out
}

fn is_frame_header(call: &Call) -> bool {
    call.data.len() == 24 && call.numbers.get(1).is_some_and(|&offset| offset >= 32)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
