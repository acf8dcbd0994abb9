//! One Chromium per test: its own chromedriver on a free port, a fresh profile, the flags that
//! keep it quiet on a closed network, and a screenshot plus the page's HTML when a test fails.

use std::any::Any;
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::NewSessionError;
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::Backend;

/// Debian's Chromium (package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// CI sets this so that a machine without a browser fails instead of skipping.
const REQUIRED_ENV: &str = "BROWSER_TEST_REQUIRED";
/// No browser test may take longer than this, whatever it waits for.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Whether browser tests must run here rather than skip.
pub fn required() -> bool {
    std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1")
}

/// Whether Chromium and chromedriver are installed; says loudly on stderr when they are not.
pub fn installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !required(),
        "{REQUIRED_ENV}=1 but {} missing (Debian packages chromium and chromium-driver)",
        missing.join(" and ")
    );
    eprintln!(
        "SKIPPED: this browser test did not run because {} missing \
         (apt-get install chromium chromium-driver; {REQUIRED_ENV}=1 makes this a failure)",
        missing.join(" and ")
    );
    false
}

/// The colour scheme the pages are asked for (`prefers-color-scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// The default: light.
    Light,
    /// `prefers-color-scheme: dark`.
    Dark,
}

/// Runs one browser test: a fresh chromedriver and Chromium, the test body, and on failure a
/// screenshot and the page's HTML under `target/browser-failures/`.
pub async fn run<F, Fut>(module: &str, backend: Backend, scheme: Scheme, test: F)
where
    F: FnOnce(Backend, Client) -> Fut,
    Fut: Future<Output = ()>,
{
    if !installed() {
        return;
    }
    let name = test_name(module, backend);
    let driver = Chromedriver::start();
    let client = driver.session(scheme).await;
    let outcome = AssertUnwindSafe(tokio::time::timeout(
        TEST_LIMIT,
        test(backend, client.clone()),
    ))
    .catch_unwind()
    .await;
    let failure: Option<Box<dyn Any + Send>> = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(_)) => Some(Box::new(format!(
            "the test took longer than {TEST_LIMIT:?}"
        ))),
        Err(panic) => Some(panic),
    };
    if failure.is_some() {
        save_failure(&name, &client).await;
    }
    // Closing the session ends Chromium; dropping the driver then ends chromedriver.
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    drop(driver);
    if let Some(panic) = failure {
        std::panic::resume_unwind(panic);
    }
}

/// `browser::editor::the_editor_writes_an_issue` on SQLite becomes
/// `editor-the_editor_writes_an_issue-sqlite`.
fn test_name(module: &str, backend: Backend) -> String {
    let path = module.split("::").skip(1).collect::<Vec<_>>().join("-");
    format!("{path}-{}", format!("{backend:?}").to_lowercase())
}

/// `target/`, found from the folder Cargo gives integration tests for scratch files.
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Saves what the browser shows and the live page's HTML, and says where on stderr.
async fn save_failure(name: &str, client: &Client) {
    let dir = target_dir().join("browser-failures");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "browser test {name} failed; could not create {}: {e}",
            dir.display()
        );
        return;
    }
    let limit = Duration::from_secs(10);
    let url = match tokio::time::timeout(limit, client.current_url()).await {
        Ok(Ok(url)) => url.to_string(),
        _ => "an unknown page".to_owned(),
    };
    let png = dir.join(format!("{name}.png"));
    match tokio::time::timeout(limit, client.screenshot()).await {
        Ok(Ok(bytes)) => match std::fs::write(&png, bytes) {
            Ok(()) => eprintln!(
                "browser test {name} failed on {url}; screenshot: {}",
                png.display()
            ),
            Err(e) => eprintln!(
                "browser test {name}: could not write {}: {e}",
                png.display()
            ),
        },
        Ok(Err(e)) => eprintln!("browser test {name}: no screenshot: {e}"),
        Err(_) => eprintln!("browser test {name}: no screenshot: the browser did not answer"),
    }
    let html = dir.join(format!("{name}.html"));
    match tokio::time::timeout(limit, client.source()).await {
        Ok(Ok(source)) => match std::fs::write(&html, source) {
            Ok(()) => eprintln!("browser test {name}: the page's HTML: {}", html.display()),
            Err(e) => eprintln!(
                "browser test {name}: could not write {}: {e}",
                html.display()
            ),
        },
        Ok(Err(e)) => eprintln!("browser test {name}: no page HTML: {e}"),
        Err(_) => eprintln!("browser test {name}: no page HTML: the browser did not answer"),
    }
}

/// A chromedriver child process in a process group of its own, with the Chromium it starts;
/// dropping it kills the group.
struct Chromedriver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits (up to ten seconds) until it says it is
    /// ready for sessions. The port is free when picked but not reserved: should another process
    /// take it first, chromedriver cannot listen there and exits, and it starts again on another.
    fn start() -> Chromedriver {
        (0..3)
            .find_map(|_| Chromedriver::try_start())
            .expect("chromedriver could not listen on any of three free ports")
    }

    fn try_start() -> Option<Chromedriver> {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so that killing the group also ends the browser it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER} does not start: {e}"));
        let mut driver = Chromedriver {
            child,
            port,
            profile: tempfile::tempdir().expect("a temporary profile folder"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // A chromedriver that found the port taken exits at once; give it that moment, so
            // that whatever else listens there is not taken for it.
            std::thread::sleep(Duration::from_millis(50));
            if driver.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if ready(port) {
                return Some(driver);
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver was not ready on port {port} within ten seconds"
            );
        }
    }

    /// A new headless Chromium session with a fresh profile.
    async fn session(&self, scheme: Scheme) -> Client {
        let mut args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        if scheme == Scheme::Dark {
            // A dark theme for the browser, and so `prefers-color-scheme: dark` for pages.
            args.extend(
                [
                    "--force-dark-mode",
                    "--blink-settings=preferredColorScheme=0",
                ]
                .map(String::from),
            );
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let mut tries = 0;
        let client = loop {
            let connect = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await;
            match connect {
                Ok(client) => break client,
                // The request did not reach chromedriver (refused or cut): it may try again.
                Err(e @ (NewSessionError::Failed(_) | NewSessionError::FailedC(_)))
                    if tries < 2 =>
                {
                    tries += 1;
                    eprintln!("chromedriver did not take the session request ({e}); once more");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("Chromium does not start under chromedriver: {e}"),
            }
        };
        let timeouts = TimeoutConfiguration::new(
            Some(Duration::from_secs(20)),
            Some(Duration::from_secs(20)),
            Some(Duration::ZERO),
        );
        client
            .update_timeouts(timeouts)
            .await
            .expect("timeouts are set");
        client
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's own (process_group(0)).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the chromedriver on `port` answers `GET /status` as ready for new sessions.
fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let compact: String = answer.split_whitespace().collect();
    compact.contains("\"ready\":true")
}

/// A port nobody listens on now (the OS picks it; chromedriver binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
