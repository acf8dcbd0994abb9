//! The harness: `spawn_app(backend)` gives a running instance with its own database and its
//! own SMTP capture, plus typed helpers so that a test reads as intent.

mod database;
pub mod dovecot;
mod smtp;

use std::time::Duration;

use fortnight::app::Application;
use fortnight::clock::Clock;
use fortnight::config::Config;
use fortnight::store::Db;
use fortnight::store::subscribers::{self, Subscriber};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use database::{Backend, TestDatabase, count};
pub use smtp::{CapturedMail, Reply, SmtpCapture, SmtpScript};

/// Runs an async test body against SQLite and against PostgreSQL, as two tests.
/// The PostgreSQL half skips, saying so on stderr, when `POSTGRES_TEST_URL` is unset.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::Backend::postgres_configured() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}

/// A running instance and the handles a test needs.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The instance's database.
    pub db: Db,
    /// Mail the instance sent.
    pub smtp: SmtpCapture,
    /// A client that keeps cookies and does not follow redirects.
    pub client: reqwest::Client,
    /// The clock the instance reads.
    pub clock: Clock,
    /// The URL of the instance's database.
    pub database_url: String,
    /// The key the instance signs unsubscribe links with.
    pub link_key: fortnight::domain::token::LinkKey,
    /// The instance's scheduler, for ticking by hand (its own ticker waits a day).
    pub scheduler: fortnight::schedule::Scheduler,
    /// The instance's delivery worker (running in the background unless
    /// `delivery_workers` is 0), to clone for more workers.
    pub worker: fortnight::delivery::worker::Worker,
    /// The instance's bounce mailbox reader, when `bounce_mailbox` is set, for polling by hand.
    pub mailbox: Option<fortnight::bounces::mailbox::BounceMailbox>,
    stop: CancellationToken,
    _database: TestDatabase,
}

/// The configuration tests start from: port 0, quick retries, generous signup limits.
pub fn test_config(database: &TestDatabase, smtp_port: u16) -> Config {
    Config {
        database_url: SecretString::from(database.url()),
        database_max_connections: 4,
        bind: "127.0.0.1:0".parse().unwrap(),
        http_workers: Some(1),
        base_url: "http://news.example.com".parse().unwrap(),
        smtp_url: Some(SecretString::from(format!("smtp://127.0.0.1:{smtp_port}"))),
        publication_name: "The Test Dispatch".into(),
        signup_rate_per_minute: 10_000,
        signup_burst: 10_000,
        confirm_resend_interval: Duration::ZERO,
        mail_retry_base: Duration::from_millis(50),
        mail_retry_max: Duration::from_millis(200),
        mail_poll_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(2),
        // Tests tick by hand, at the times they choose.
        tick_interval: Duration::from_secs(86_400),
        // Webhook receivers in tests listen on loopback.
        webhooks_allow_private: true,
        link_fetch_allow_private: true,
        ..Config::default()
    }
}

/// Logs go through the test harness's capture (shown for failing tests); `RUST_LOG` filters.
fn init_test_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// An instance with the test configuration.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Clock::System, |_| {}).await
}

/// An instance on `clock`, with the test configuration changed by `tweak`.
pub async fn spawn_app_with(
    backend: Backend,
    clock: Clock,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let smtp = SmtpCapture::start(SmtpScript::default());
    let database = TestDatabase::create(backend).await;
    let mut config = test_config(&database, smtp.port());
    tweak(&mut config);
    start(config, clock, smtp, database).await
}

/// Starts an instance on a prepared configuration, database and SMTP capture.
pub async fn start(
    config: Config,
    clock: Clock,
    smtp: SmtpCapture,
    database: TestDatabase,
) -> TestApp {
    init_test_logging();
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let scheduler = app.scheduler();
    let worker = app.worker();
    let mailbox = app.bounce_mailbox();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until(stop.clone()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    TestApp {
        address,
        db: state.db.clone(),
        smtp,
        client,
        clock,
        link_key: state.link_key.clone(),
        scheduler,
        worker,
        mailbox,
        database_url: database.url(),
        stop,
        _database: database,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestApp {
    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// `POST path` with a form body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .form(fields)
            .send()
            .await
            .expect("request")
    }

    /// `POST /subscribe` with the given form fields.
    pub async fn post_subscribe(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_form("/subscribe", fields).await
    }

    /// Signs `email` up through the form, expects the "check your inbox" answer, returns its body.
    pub async fn sign_up(&self, email: &str) -> String {
        let response = self.post_subscribe(&[("email", email), ("name", "")]).await;
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert!(body.contains("Check your inbox"), "{body}");
        body
    }

    /// Waits (up to ten seconds) until `n` messages have been captured, and returns them all.
    pub async fn wait_for_mail(&self, n: usize) -> Vec<CapturedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mail = self.smtp.messages();
            if mail.len() >= n {
                return mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} messages, got {}",
                mail.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until nothing is left pending in the mail queue, so that "no more mail" holds.
    pub async fn settle_mail(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let counts = fortnight::store::outbox::counts(&self.db).await.unwrap();
            if counts.pending == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mail queue did not settle: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The stored subscriber with this address.
    pub async fn subscriber(&self, email: &str) -> Option<Subscriber> {
        let email = fortnight::domain::SubscriberEmail::parse(email).unwrap();
        subscribers::find_by_email(&self.db, &email).await.unwrap()
    }

    /// How many subscribers are stored.
    pub async fn subscriber_count(&self) -> i64 {
        database::count(&self.db, "subscribers").await
    }

    /// How many transactional emails were ever queued.
    pub async fn outbox_count(&self) -> i64 {
        database::count(&self.db, "mail_outbox").await
    }
}

/// The path of the first link in `text` that contains `marker` (e.g. `/confirm/`).
pub fn link_path(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} link in:\n{text}"));
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// A `<form>` inside a `<p>` makes the HTML parser close the paragraph first: the layout
/// breaks while the markup looks fine. Walks the tags and fails on one.
pub fn assert_no_form_in_a_paragraph(page: &str, path: &str) {
    let mut open_p = false;
    for tag in page.split('<').skip(1) {
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
            .collect::<String>()
            .to_ascii_lowercase();
        match name.as_str() {
            "p" => open_p = true,
            "/p" => open_p = false,
            "form" | "div" | "section" | "table" | "ul" | "ol" => {
                assert!(!open_p, "a <{name}> inside a <p> on {path}")
            }
            _ => {}
        }
    }
}

/// The password every test editor gets.
pub const EDITOR_PASSWORD: &str = "a long enough password";

impl TestApp {
    /// Creates an editor account directly in the store.
    pub async fn create_editor(&self, email: &str) {
        let address = fortnight::domain::SubscriberEmail::parse(email).unwrap();
        let password =
            fortnight::domain::password::Password::parse(EDITOR_PASSWORD.into()).unwrap();
        let hash = tokio::task::spawn_blocking(move || password.hash())
            .await
            .unwrap();
        assert!(
            fortnight::store::editors::add(&self.db, &address, &hash, self.clock.now())
                .await
                .unwrap()
        );
    }

    /// The CSRF token in the first form of the page at `path` (its hidden `csrf` field).
    pub async fn csrf_from(&self, path: &str) -> String {
        let page = self.get(path).await.text().await.unwrap();
        assert!(!page.contains("?csrf="), "a CSRF token in a URL on {path}");
        assert_no_form_in_a_paragraph(&page, path);
        let marker = r#"name="csrf" value=""#;
        let start = page
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field on {path}:\n{page}"))
            + marker.len();
        page[start..].split('"').next().unwrap().to_owned()
    }

    /// Posts the sign-in form.
    pub async fn post_login(&self, email: &str, password: &str) -> reqwest::Response {
        let csrf = self.csrf_from("/admin/login").await;
        self.post_form(
            "/admin/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Creates an editor and signs in as them.
    pub async fn sign_in(&self) {
        self.create_editor("editor@example.com").await;
        let response = self.post_login("editor@example.com", EDITOR_PASSWORD).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/admin");
    }

    /// Posts an admin form with the session's CSRF token in its hidden field.
    pub async fn admin_post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf_from("/admin").await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// A live API token.
    pub async fn api_token(&self) -> String {
        self.create_editor("api-owner@example.com").await;
        let owner = fortnight::store::editors::list(&self.db)
            .await
            .unwrap()
            .remove(0);
        fortnight::store::api_tokens::create(&self.db, "tests", Some(owner.id), self.clock.now())
            .await
            .unwrap()
            .1
    }

    /// A request to the API with a bearer token.
    pub fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
    }

    /// Uploads a CSV file through the admin's import form (signed in).
    pub async fn upload_csv(&self, csv: &str, consented: bool) -> reqwest::Response {
        let csrf = self.csrf_from("/admin/import").await;
        let mut form = reqwest::multipart::Form::new().text("csrf", csrf).part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
                .file_name("list.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
        if consented {
            form = form.text("consented", "yes");
        }
        self.client
            .post(format!("{}/admin/import", self.address))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads a CSV file, follows the answer to the import job's page, and returns that page
    /// once the job has ended (within 20 s).
    pub async fn import_csv(&self, csv: &str, consented: bool) -> String {
        let response = self.upload_csv(csv, consented).await;
        assert_eq!(
            response.status(),
            303,
            "the upload answers with the job's page"
        );
        let job = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(job.starts_with("/admin/import/"), "{job}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let page = self.get(&job).await.text().await.unwrap();
            if page.contains("State: <strong id=\"state\">done")
                || page.contains("State: <strong id=\"state\">failed")
            {
                return page;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the import did not finish: {page}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds subscribers directly, active, named `prefix{i}@example.com`.
    pub async fn seed_active(&self, prefix: &str, n: usize) {
        use fortnight::domain::{SubscriberEmail, SubscriberName, SubscriberStatus};
        use fortnight::store::subscriber_import::{ImportRow, insert};
        let rows: Vec<ImportRow> = (0..n)
            .map(|i| ImportRow {
                email: SubscriberEmail::parse(&format!("{prefix}{i}@example.com")).unwrap(),
                name: SubscriberName::parse_optional(Some(&format!("Reader {i}"))).unwrap(),
                status: SubscriberStatus::Active,
                created_at: None,
                tags: Vec::new(),
            })
            .collect();
        let mut added = 0;
        for batch in rows.chunks(2500) {
            let now = self.clock.now();
            added += insert(&self.db, batch, None, now)
                .await
                .unwrap()
                .unwrap()
                .active;
        }
        assert_eq!(added, n as u64);
    }
}

/// A child process killed when the test ends, however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
