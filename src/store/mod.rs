//! The database: one set of queries over SQLite or PostgreSQL, chosen at run time by the URL.
//!
//! Each SQL string is written once and compiled against both real drivers through
//! [`with_pool!`]; `now` always comes in from Rust, never from SQL.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Implements `sqlx::FromRow` for a domain type on both databases' rows, so the type carries
/// no database derive: each field is read from the column of its name, `plain`ly, from
/// `json`, or `parsed` from text with the type's `TryFrom<String>`.
macro_rules! from_row {
    ($type:ident { $($field:ident: $kind:ident),* $(,)? }) => {
        from_row!(@impl $type, sqlx::sqlite::SqliteRow, { $($field: $kind),* });
        from_row!(@impl $type, sqlx::postgres::PgRow, { $($field: $kind),* });
    };
    (@impl $type:ident, $row:ty, { $($field:ident: $kind:ident),* }) => {
        impl<'r> sqlx::FromRow<'r, $row> for $type {
            fn from_row(row: &'r $row) -> Result<Self, sqlx::Error> {
                Ok($type { $($field: from_row!(@get row, $field, $kind)),* })
            }
        }
    };
    (@get $row:ident, $field:ident, plain) => {
        sqlx::Row::try_get($row, stringify!($field))?
    };
    (@get $row:ident, $field:ident, json) => {
        sqlx::Row::try_get::<sqlx::types::Json<_>, _>($row, stringify!($field))?.0
    };
    (@get $row:ident, $field:ident, parsed) => {
        TryFrom::try_from(sqlx::Row::try_get::<String, _>($row, stringify!($field))?).map_err(
            |e: String| sqlx::Error::ColumnDecode {
                index: stringify!($field).into(),
                source: e.into(),
            },
        )?
    };
}

pub mod api_tokens;
pub mod backup;
pub mod cadence;
pub mod clicks;
pub mod deliveries;
pub mod delivery_ledger;
pub mod delivery_workers;
pub mod editors;
pub mod group_commit;
pub mod import_jobs;
pub mod issues;
pub mod mail_events;
pub mod manage;
pub mod outbox;
pub mod retention;
pub mod saved_links;
pub mod sends;
pub mod settings;
pub mod signup_queue;
pub mod subscriber_admin;
pub mod subscriber_export;
pub mod subscriber_import;
pub mod subscribers;
pub mod tags;
pub mod webhooks;
pub mod welcome;

/// When a SQLite commit reaches the disk (`sqlite_synchronous`). PostgreSQL syncs every commit
/// itself and ignores this.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Synchronous {
    /// The log is synced before a commit returns: what was acknowledged survives a power cut.
    #[default]
    Full,
    /// The log is synced only at checkpoints: a crash of the process loses nothing, but a power
    /// cut or a crash of the machine can roll back the last commits (up to about a second).
    Normal,
}

impl TryFrom<String> for Synchronous {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            _ => Err(format!("must be \"full\" or \"normal\", not {value:?}")),
        }
    }
}

/// A connection pool for one of the two supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite: readers share a pool; writes go through one connection, so writers queue in
    /// the pool instead of spinning on `SQLITE_BUSY`.
    Sqlite {
        /// Read-only work.
        read: SqlitePool,
        /// Every write and every transaction.
        write: SqlitePool,
        /// With `synchronous = full`, what makes a commit durable before it is acknowledged
        /// ([`LogSync`]); `None` with `normal`, and in a [`Db::deferring`] handle.
        log: Option<Arc<LogSync>>,
        /// A shared lock on the database's `.lock` file, held while the pools live, so that
        /// `fortnight restore` can tell the database is in use.
        held: Arc<std::fs::File>,
    },
    /// PostgreSQL: one pool for everything.
    Postgres(PgPool),
}

/// Runs the same body against whichever pool is live. `read` picks the SQLite reader pool,
/// `write` the single writer; on PostgreSQL both name the one pool.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, read, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
    ($db:expr, write, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite {
                write: $pool,
                log: __log,
                ..
            } => {
                let out = $body;
                // Durable before anyone hears of it (`synchronous = full`).
                if let Some(log) = __log {
                    log.sync().await;
                }
                out
            }
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Whether `e` is PostgreSQL aborting one of two transactions that met (a deadlock, or a
/// serialization failure): running the loser again is the remedy.
/// Appends `(a, b, …)` to a query, each value bound: the list of an `IN`.
pub(crate) fn push_list<DB, T>(
    query: &mut sqlx::QueryBuilder<DB>,
    values: impl IntoIterator<Item = T>,
) where
    DB: sqlx::Database,
    T: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    query.push("(");
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    query.push(")");
}

pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// A failure of the data layer, free of any HTTP meaning.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A shared recorder failed on behalf of several requests (the reason is its text).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Reads the scheme of a database URL.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// What makes SQLite commits durable with `sqlite_synchronous = full`: the connections run
/// with `synchronous = NORMAL`, so a commit only writes its frames to the log, and every write
/// then syncs the log (`fdatasync` of the `-wal` file) before it returns. The sync happens
/// outside the writer connection, so the next group of writes commits while the last one's
/// sync runs, and one sync covers every commit made before it began: concurrent callers wait
/// for one sync instead of each paying for their own. SQLite still syncs the log before each
/// checkpoint and the database file after it (as `NORMAL` does), so a commit whose frames were
/// checkpointed and overwritten is in the synced database file. A failed sync means the disk
/// may not hold what was committed; the process stops rather than acknowledge it (as
/// PostgreSQL does).
#[derive(Debug)]
pub struct LogSync {
    path: PathBuf,
    /// Syncs asked for so far: a caller's ticket, taken after its commit.
    asked: AtomicU64,
    /// The highest ticket covered by a finished sync, and the open log file with its inode.
    state: tokio::sync::Mutex<(u64, Option<(std::fs::File, u64)>)>,
}

impl LogSync {
    fn new(database: PathBuf) -> LogSync {
        let mut path = database.into_os_string();
        path.push("-wal");
        LogSync {
            path: path.into(),
            asked: AtomicU64::new(0),
            state: tokio::sync::Mutex::new((0, None)),
        }
    }

    /// Returns once everything committed before the call is on disk.
    pub async fn sync(&self) {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.state.lock().await;
        if state.0 >= ticket {
            return;
        }
        // Every ticket up to here was taken after its commit; the sync below begins later.
        let upto = self.asked.load(Ordering::SeqCst);
        let (path, open) = (self.path.clone(), state.1.take());
        match tokio::task::spawn_blocking(move || sync_log_file(&path, open)).await {
            Ok(Ok(open)) => *state = (upto, open),
            Ok(Err(error)) => {
                tracing::error!(%error, path = %self.path.display(), "cannot sync the database log: stopping rather than acknowledge what may not be on disk");
                std::process::abort();
            }
            // The runtime is shutting down: nobody is waiting for an answer any more.
            Err(error) if error.is_cancelled() => {}
            Err(error) => {
                tracing::error!(%error, "the database log sync failed: stopping");
                std::process::abort();
            }
        }
    }
}

/// Syncs the log file at `path`, reopening it when SQLite made a new one (the inode changed),
/// and then syncing its directory too, so that a new log's name survives as well.
fn sync_log_file(
    path: &std::path::Path,
    open: Option<(std::fs::File, u64)>,
) -> std::io::Result<Option<(std::fs::File, u64)>> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = match std::fs::metadata(path) {
        Ok(meta) => meta.ino(),
        // No log: every commit was checkpointed into the database file, which SQLite synced.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let (file, fresh) = match open {
        Some((file, known)) if known == inode => (file, false),
        _ => match std::fs::File::open(path) {
            Ok(file) => (file, true),
            // Removed since (the database's folder deleted): nothing left to make durable.
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        },
    };
    file.sync_data()?;
    if fresh && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::File::open(dir) {
            Ok(dir) => dir.sync_all()?,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some((file, inode)))
}

/// Copies the SQLite write-ahead log into the database file every second from a reader
/// connection. SQLite's automatic checkpoint would run inside whichever commit crosses the
/// threshold and stall every writer queued behind it; a passive checkpoint here never blocks
/// the writer. The log restarts from the top only once all of it has been copied, which the
/// reader's copy never achieves while commits keep coming (they add frames while it runs), so
/// the writer's own connection then copies the little that came in meanwhile: no commit can
/// run beside it, and the next commit starts the log again instead of growing it. That keeps
/// the log's file from growing under sustained writes, so a commit's sync (FULL) overwrites
/// blocks already allocated instead of also recording a new file size. Should the log still
/// grow (a reader holding an old snapshot), past `WAL_LIMIT_PAGES` a truncating checkpoint
/// (which briefly waits for the writer) bounds it.
async fn checkpoint_wal(read: SqlitePool, write: SqlitePool) {
    // 1 GiB of 4 KiB pages: reached only by long bulk writes (a large import).
    const WAL_LIMIT_PAGES: i64 = 262_144;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let checkpoint = |pool: &SqlitePool, sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64)>(sql)
                .fetch_one(&pool)
                .await
        }
    };
    while !read.is_closed() {
        tick.tick().await;
        let result = match checkpoint(&read, "PRAGMA wal_checkpoint(PASSIVE)").await {
            Ok((_, log_pages, _)) if log_pages > WAL_LIMIT_PAGES => {
                checkpoint(&read, "PRAGMA wal_checkpoint(TRUNCATE)").await
            }
            Ok((_, log_pages, _)) if log_pages > 0 => {
                checkpoint(&write, "PRAGMA wal_checkpoint(PASSIVE)").await
            }
            other => other,
        };
        if let Err(e) = result
            && !read.is_closed()
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

/// The lock file beside a SQLite database: `fortnight.db.lock` for `fortnight.db`.
pub fn lock_path(database: &std::path::Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes a shared lock on the database's lock file: any number of processes may use the
/// database together, and `fortnight restore` (which takes it exclusively) waits for none.
fn hold(database: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let path = lock_path(database);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    file.try_lock_shared().map_err(|_| {
        StoreError::Unavailable(format!(
            "{} is being restored; start again once the restore has finished",
            database.display()
        ))
    })?;
    Ok(file)
}

impl Db {
    /// Opens a pool for `url`; a SQLite file is created on first use, and its commits are
    /// synced as `synchronous` says.
    pub async fn connect(
        url: &SecretString,
        max_connections: u32,
        synchronous: Synchronous,
    ) -> Result<Db, StoreError> {
        let raw = url.expose_secret();
        match Backend::of_url(raw) {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(raw)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // With `full`, the log is synced after each write outside the writer
                    // ([`LogSync`]); SQLite itself syncs only at checkpoints.
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("temp_store", "memory")
                    // Checkpoints run beside the writer (below), never inside a commit.
                    .pragma("wal_autocheckpoint", "0");
                let database = options.get_filename().to_owned();
                let held = Arc::new(hold(&database)?);
                // The one writer gets a 16 MiB page cache (imports and sends were measured no faster with
                // 64 MiB, which only made a long send's memory grow with the list).
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone().pragma("cache_size", "-16384"))
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .connect_with(options)
                    .await?;
                tokio::spawn(checkpoint_wal(read.clone(), write.clone()));
                let log = match synchronous {
                    Synchronous::Full => Some(Arc::new(LogSync::new(database))),
                    Synchronous::Normal => None,
                };
                Ok(Db::Sqlite {
                    read,
                    write,
                    log,
                    held,
                })
            }
            _ => {
                let options = PgConnectOptions::from_str(raw)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// Applies the embedded migrations that have not run yet. On PostgreSQL the migrator
    /// holds an advisory lock, so instances that start together are safe.
    /// The migrations this binary holds that the database has not applied yet, by version
    /// and description.
    pub async fn pending_migrations(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let migrator = match self {
            Db::Sqlite { .. } => sqlx::migrate!("./migrations/sqlite"),
            Db::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        // A database never migrated has no table: everything is pending.
        let applied: Vec<i64> = with_pool!(self, read, |pool| sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success"
        )
        .fetch_all(pool)
        .await)
        .unwrap_or_default();
        Ok(migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect())
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// A handle on the same pools whose writes return before the SQLite log is synced; the
    /// caller makes them durable with [`Db::sync`] before it acknowledges them. Group commit
    /// uses it so that one group's sync overlaps the next group's transaction.
    pub fn deferring(&self) -> Db {
        match self {
            Db::Sqlite {
                read, write, held, ..
            } => Db::Sqlite {
                read: read.clone(),
                write: write.clone(),
                log: None,
                held: held.clone(),
            },
            Db::Postgres(pool) => Db::Postgres(pool.clone()),
        }
    }

    /// Returns once every write made before the call is durable (SQLite with
    /// `synchronous = full`; otherwise at once: PostgreSQL syncs each commit itself).
    pub async fn sync(&self) {
        if let Db::Sqlite { log: Some(log), .. } = self {
            log.sync().await;
        }
    }

    /// Whether [`Db::sync`] has anything to wait for: SQLite with `synchronous = full`, and
    /// never a [`Db::deferring`] handle.
    pub fn syncs_log(&self) -> bool {
        matches!(self, Db::Sqlite { log: Some(_), .. })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Answers whether the database responds to a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, read, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Closes every connection; later queries fail.
    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
