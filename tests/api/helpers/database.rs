//! A fresh database per test: a SQLite file in a temporary folder, or a new PostgreSQL
//! database on the server named by `POSTGRES_TEST_URL`, dropped when the test ends.

use fortnight::store::Db;
use fortnight::with_pool;
use sqlx::Connection;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

const PG_ENV: &str = "POSTGRES_TEST_URL";

impl Backend {
    /// Whether PostgreSQL tests can run; says loudly on stderr when they cannot.
    pub fn postgres_configured() -> bool {
        let configured = std::env::var(PG_ENV).is_ok_and(|v| !v.is_empty());
        // CI sets POSTGRES_TEST_REQUIRED so that a missing URL fails instead of skipping.
        if !configured && std::env::var("POSTGRES_TEST_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("POSTGRES_TEST_REQUIRED=1 but {PG_ENV} is unset");
        }
        if !configured {
            eprintln!(
                "SKIPPED: the PostgreSQL half of this test did not run because {PG_ENV} is unset \
                 (e.g. {PG_ENV}=postgres://postgres@127.0.0.1:5432/postgres)"
            );
        }
        configured
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database.
    pub async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("fortnight.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var(PG_ENV).expect("POSTGRES_TEST_URL");
                let name = format!("fortnight_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("PostgreSQL reachable");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&name);
                TestDatabase {
                    url: url.to_string(),
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a separate thread with its own runtime may block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Rows in `table` (a fixed table name from the tests).
pub async fn count(db: &Db, table: &'static str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    with_pool!(db, read, |pool| sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await)
    .unwrap()
}
