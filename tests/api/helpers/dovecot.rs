//! A real IMAP server per test: a private Dovecot (Debian package `dovecot-imapd`) that the test
//! process starts itself, on a free port of 127.0.0.1, over implicit TLS (IMAPS) with the
//! fixture certificate for 127.0.0.1 (`tests/fixtures/sns/server.pem`, signed by `ca.pem`), with
//! one user, `bounces`, whose password is `secret`.
//!
//! Everything an instance keeps lives in its own temporary directory, so tests running in
//! parallel each have their own. The mail is a Maildir++ tree that a test reads and writes
//! directly, with no IMAP client of its own:
//!
//! - INBOX: `<dir>/mail/new`, `<dir>/mail/cur` (and `tmp`);
//! - any other folder, say `Processed`: `<dir>/mail/.Processed/new`, `.../cur` (and `tmp`);
//!   a sub-folder `A.B` (Dovecot's separator here is `.`) is `<dir>/mail/.A.B`.
//!
//! Run as root (as in CI), Dovecot's own processes run as the package's `dovecot` and `dovenull`
//! users and the mail belongs to `nobody` (Dovecot will not touch mail as uid 0); run as anyone
//! else, everything runs as that user.
//!
//! Without Dovecot the tests that need it skip, saying so on stderr, unless
//! `DOVECOT_TEST_REQUIRED=1` (set by `.ci/run`), which makes that a failure.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Debian's Dovecot (package `dovecot-core`).
const DOVECOT: &str = "/usr/sbin/dovecot";
/// Its IMAP server (package `dovecot-imapd`).
const IMAP: &str = "/usr/lib/dovecot/imap";
/// CI sets this so that a machine without Dovecot fails instead of skipping.
const REQUIRED_ENV: &str = "DOVECOT_TEST_REQUIRED";
const USER: &str = "bounces";
const PASSWORD: &str = "secret";
/// How long Dovecot may take to listen (it takes some tens of milliseconds).
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long it may take to stop after SIGTERM before it is killed. Settled, it takes some
/// milliseconds; a process still starting when the signal comes may hang on, and Dovecot's
/// master waits six seconds for it.
const STOP_LIMIT: Duration = Duration::from_millis(500);
/// `nobody` and `nogroup` on Debian: the owner of the mail when the tests run as root.
const NOBODY: u32 = 65534;

/// The configuration; `@DIR@`, `@PORT@`, `@MAIL_UID@`, `@MAIL_GID@` and `@USERS@` are filled in.
const CONFIG: &str = r#"# A private Dovecot for one test: everything it keeps is under @DIR@.
base_dir = @DIR@/run
state_dir = @DIR@/state
log_path = @DIR@/dovecot.log
instance_name = fortnight-test
protocols = imap
listen = 127.0.0.1
@USERS@
ssl = required
ssl_cert = <@DIR@/server.pem
ssl_key = <@DIR@/server.key

# One user, bounces, password secret; the mail belongs to @MAIL_UID@:@MAIL_GID@.
auth_mechanisms = plain login
# A failed login is refused after half a second instead of two, and (below) repeated ones
# get no slower (no auth penalty).
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @DIR@/passwd
}
userdb {
  driver = static
  args = uid=@MAIL_UID@ gid=@MAIL_GID@ home=@DIR@/home
}
first_valid_uid = 1
mail_location = maildir:@DIR@/mail

# No chroot, so that it runs as a user other than root too.
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# IMAPS on 127.0.0.1 only; no plain IMAP.
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = @PORT@
  }
}
service imap-urlauth-login {
  chroot =
}
"#;

/// Ends the process group it is told when its stdin closes: when the test process ends without
/// dropping its `Dovecot` (a panic that aborts, a signal), the server still stops. It outlives
/// its own SIGTERM to send the SIGKILL.
const WATCHDOG: &str =
    r#"trap '' TERM; read -r _line; kill -TERM -"$1"; sleep 1; kill -KILL -"$1""#;

/// A running private Dovecot; dropping it stops the server and removes its directory.
pub struct Dovecot {
    /// The master process, leader of a process group of its own.
    child: Child,
    /// The watchdog, in the master's group; its stdin is a pipe from this process.
    watchdog: Option<Child>,
    port: u16,
    /// The Maildir root: INBOX.
    mail: PathBuf,
    /// Who delivered files and folders must belong to (when running as root).
    owner: Option<(u32, u32)>,
    /// Delivered messages so far, for unique file names.
    delivered: AtomicU64,
    /// Last, so that it is removed after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts a private Dovecot and waits until it listens. None, after a loud "SKIPPED" on
    /// stderr, when Dovecot is not installed, unless `DOVECOT_TEST_REQUIRED=1`: then it panics.
    pub fn start() -> Option<Dovecot> {
        if !installed() {
            return None;
        }
        // The port is free when picked, but something else may take it before Dovecot binds it.
        let mut log = String::new();
        for _ in 0..3 {
            match Dovecot::try_start() {
                Ok(dovecot) => return Some(dovecot),
                Err(taken) => log = taken,
            }
        }
        panic!("Dovecot found its port taken three times; its last log:\n{log}");
    }

    /// `imaps://bounces:secret@127.0.0.1:PORT/FOLDER`, the folder as given.
    pub fn url(&self, folder: &str) -> String {
        format!("imaps://{USER}:{PASSWORD}@127.0.0.1:{}/{folder}", self.port)
    }

    /// Delivers a raw RFC 5322 message into a folder as a mail server would: a new file in the
    /// folder's `new/`, written in `tmp/` first. Creates the folder if need be.
    pub fn deliver(&self, folder: &str, raw: &[u8]) {
        let dir = self.folder_dir(folder);
        make_maildir(self.owner, &dir);
        let n = self.delivered.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let name = format!(
            "{}.M{}P{}Q{n}.fortnight-test",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id()
        );
        let tmp = dir.join("tmp").join(&name);
        fs::write(&tmp, raw).unwrap_or_else(|e| panic!("{} cannot be written: {e}", tmp.display()));
        if let Some((uid, gid)) = self.owner {
            chown(&tmp, Some(uid), Some(gid)).unwrap();
        }
        fs::rename(&tmp, dir.join("new").join(&name)).unwrap();
    }

    /// How many messages a folder holds now (0 for a folder that does not exist), counting
    /// those flagged `\Deleted` but not yet expunged. While an IMAP session changes the
    /// folder, poll rather than read once.
    pub fn count(&self, folder: &str) -> usize {
        self.files(folder).len()
    }

    /// The raw messages a folder holds now, in no particular order.
    pub fn messages(&self, folder: &str) -> Vec<Vec<u8>> {
        for _ in 0..50 {
            let read: Result<Vec<Vec<u8>>, _> = self.files(folder).values().map(fs::read).collect();
            match read {
                Ok(messages) => return messages,
                // Renamed (new flags, new/ to cur/) or expunged since listed: list again.
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("the messages in {folder} cannot be read: {e}"),
            }
        }
        panic!("the messages in {folder} kept changing while they were read");
    }

    /// Dovecot's log so far (its log file, then anything it wrote to stderr).
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("dovecot.log"), read("stderr.log"))
    }

    /// One attempt on one free port: Err(log) when the port turned out to be taken.
    fn try_start() -> Result<Dovecot, String> {
        let dir = tempfile::Builder::new()
            .prefix("dovecot.")
            .tempdir_in(parent_dir())
            .expect("a temporary directory");
        let root = dir.path();
        // Dovecot's unprivileged processes (auth reads the password file) must get through.
        fs::set_permissions(root, fs::Permissions::from_mode(0o711)).unwrap();
        let me = fs::metadata(root).unwrap();
        let (mail_uid, mail_gid, users) = if me.uid() == 0 {
            (NOBODY, NOBODY, String::new())
        } else {
            let user = name_of("/etc/passwd", me.uid());
            let group = name_of("/etc/group", me.gid());
            let users = format!(
                "default_internal_user = {user}\ndefault_login_user = {user}\n\
                 default_internal_group = {group}"
            );
            (me.uid(), me.gid(), users)
        };

        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sns");
        for (file, mode) in [("server.pem", 0o644), ("server.key", 0o600)] {
            fs::copy(fixtures.join(file), root.join(file)).unwrap();
            fs::set_permissions(root.join(file), fs::Permissions::from_mode(mode)).unwrap();
        }
        fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        fs::set_permissions(root.join("passwd"), fs::Permissions::from_mode(0o644)).unwrap();

        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let config = CONFIG
            .replace("@DIR@", &root.display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@MAIL_UID@", &mail_uid.to_string())
            .replace("@MAIL_GID@", &mail_gid.to_string())
            .replace("@USERS@", &users);
        let conf = root.join("dovecot.conf");
        fs::write(&conf, config).unwrap();
        let owner = (me.uid() == 0).then_some((mail_uid, mail_gid));
        let mail = root.join("mail");
        make_maildir(owner, &mail);
        make_dir(owner, &root.join("home"));

        let stderr = File::create(root.join("stderr.log")).unwrap();
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .current_dir(root)
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr.try_clone().unwrap()))
            .stderr(Stdio::from(stderr))
            // Its own group, so that stopping the group stops all of Dovecot's processes.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{DOVECOT} does not start: {e}"));
        let group = child.id();
        // None only if Dovecot has already exited, which the wait below reports.
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "sh"])
            .arg(group.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(group as i32)
            .spawn()
            .ok();

        let mut dovecot = Dovecot {
            child,
            watchdog,
            port,
            mail,
            owner,
            delivered: AtomicU64::new(0),
            dir,
        };
        // The master says it is starting up once its listeners are bound (a failure to bind
        // ends it instead).
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = dovecot.child.try_wait().unwrap() {
                let log = dovecot.log();
                if log.contains("Address already in use") {
                    return Err(log);
                }
                panic!("Dovecot exited ({status}) instead of listening on port {port}:\n{log}");
            }
            if dovecot.log().contains("starting up")
                && TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
            {
                return Ok(dovecot);
            }
            assert!(
                Instant::now() < deadline,
                "Dovecot did not listen on port {port} within {START_LIMIT:?}:\n{}",
                dovecot.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A folder's Maildir: the root for INBOX, `.NAME` under it for any other.
    fn folder_dir(&self, folder: &str) -> PathBuf {
        if folder.eq_ignore_ascii_case("INBOX") {
            return self.mail.clone();
        }
        assert!(
            !folder.is_empty() && !folder.starts_with('.') && !folder.contains('/'),
            "not a folder name this helper maps to a Maildir: {folder:?}"
        );
        self.mail.join(format!(".{folder}"))
    }

    /// A folder's message files by unique name: Dovecot moves a file from `new/` to `cur/`
    /// and renames it to record flags (`NAME:2,S`), keeping the part before the colon.
    /// `new/` is read first, so a file moved to `cur/` meanwhile counts once.
    fn files(&self, folder: &str) -> BTreeMap<String, PathBuf> {
        let dir = self.folder_dir(folder);
        let mut files = BTreeMap::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let unique = name.split(':').next().unwrap_or_default().to_owned();
                files.insert(unique, entry.path());
            }
        }
        files
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // The group's id is the master's own (process_group(0)). SIGTERM to all of it: the
        // master and its services (the watchdog ignores it).
        let group = format!("-{}", self.child.id());
        signal("-TERM", &group);
        let deadline = Instant::now() + STOP_LIMIT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left, the watchdog too. The group's id cannot have been reused since: the
        // watchdog, a member not yet waited for, keeps it taken.
        signal("-KILL", &group);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Whether Dovecot's IMAP server is installed; says loudly on stderr when it is not.
fn installed() -> bool {
    let missing: Vec<&str> = [DOVECOT, IMAP]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var(REQUIRED_ENV).as_deref() != Ok("1"),
        "{REQUIRED_ENV}=1 but {} missing (Debian package dovecot-imapd: \
         apt-get install --no-install-recommends dovecot-imapd)",
        missing.join(" and ")
    );
    eprintln!(
        "SKIPPED: this IMAP test did not run because {} missing \
         (apt-get install dovecot-imapd; {REQUIRED_ENV}=1 makes this a failure)",
        missing.join(" and ")
    );
    false
}

/// A Maildir (with `new`, `cur` and `tmp`) that the mail's owner, if given, owns.
fn make_maildir(owner: Option<(u32, u32)>, dir: &Path) {
    make_dir(owner, dir);
    for sub in ["new", "cur", "tmp"] {
        make_dir(owner, &dir.join(sub));
    }
}

/// A directory, given to the mail's owner if it is new and an owner is given.
fn make_dir(owner: Option<(u32, u32)>, dir: &Path) {
    match fs::create_dir(dir) {
        Ok(()) => {
            if let Some((uid, gid)) = owner {
                chown(dir, Some(uid), Some(gid)).unwrap();
            }
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => panic!("{} cannot be created: {e}", dir.display()),
    }
}

/// Where instance directories go: the sockets in them must fit a Unix socket's 107 bytes, so
/// a long (or spaced) temporary directory gives way to /tmp.
fn parent_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    let plain = tmp
        .to_str()
        .is_some_and(|s| s.len() <= 40 && !s.contains(char::is_whitespace));
    if plain { tmp } else { PathBuf::from("/tmp") }
}

/// The name of a user (in /etc/passwd) or group (in /etc/group) by id: Dovecot takes names.
fn name_of(file: &str, id: u32) -> String {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let found: u32 = fields.nth(1)?.parse().ok()?;
            (found == id).then(|| name.to_owned())
        })
        .unwrap_or_else(|| panic!("Dovecot needs a name for id {id}, which {file} lacks"))
}

/// Sends a signal with kill(1); errors (nothing left to signal) are of no interest.
fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
