//! Backups of the SQLite database that are safe while the server runs (`VACUUM INTO`: one
//! consistent snapshot, never a copy of a live file and its write-ahead log), and restoring
//! one, refused while any Fortnight process holds the database.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use super::lock_path;

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or the database refused.
    #[error("{0}")]
    Failed(String),
    /// A Fortnight process holds the database.
    #[error(
        "a Fortnight process is using {0}: stop `fortnight serve` and every `fortnight worker` first"
    )]
    InUse(PathBuf),
}

fn failed(what: &str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Failed(format!("{what}: {e}"))
}

/// The database file a `sqlite:` URL names.
pub fn sqlite_path(url: &SecretString) -> Result<PathBuf, BackupError> {
    let options = SqliteConnectOptions::from_str(url.expose_secret())
        .map_err(|e| failed("the database URL", e))?;
    Ok(options.get_filename().to_owned())
}

/// Checks that `file` is a sound Fortnight database: SQLite's integrity check passes and it
/// has the migrations' table. Returns how many migrations it has.
async fn check(file: &Path) -> Result<i64, BackupError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| failed(&format!("cannot open {}", file.display()), e))?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| failed(&format!("{} is not a SQLite database", file.display()), e))?;
    if integrity != "ok" {
        return Err(BackupError::Failed(format!(
            "{} fails SQLite's integrity check: {integrity}",
            file.display()
        )));
    }
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| {
            failed(
                &format!("{} is not a Fortnight database", file.display()),
                e,
            )
        })
}

/// Syncs `file` and the folder holding it, so that what was written survives a power cut.
fn sync(file: &Path) -> Result<(), BackupError> {
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed(&format!("cannot sync {}", file.display()), e))?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed(&format!("cannot sync {}", dir.display()), e))?;
    }
    Ok(())
}

/// Writes a consistent copy of the SQLite database at `url` to `file` (which must not
/// exist) while other processes keep using it, checks the copy and syncs it. Returns its size
/// in bytes.
pub async fn backup(url: &SecretString, file: &Path) -> Result<u64, BackupError> {
    if file.exists() {
        return Err(BackupError::Failed(format!(
            "{} exists already; choose a new file",
            file.display()
        )));
    }
    let database = sqlite_path(url)?;
    if !database.exists() {
        return Err(BackupError::Failed(format!(
            "there is no database at {}",
            database.display()
        )));
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(&database)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| failed(&format!("cannot open {}", database.display()), e))?;
    let target = file.to_string_lossy().into_owned();
    sqlx::query("VACUUM INTO $1")
        .bind(&target)
        .execute(&mut conn)
        .await
        .map_err(|e| failed(&format!("cannot write the backup to {target}"), e))?;
    sync(file)?;
    check(file).await?;
    std::fs::metadata(file)
        .map(|m| m.len())
        .map_err(|e| failed(&format!("cannot read {target}"), e))
}

/// Puts backup `file` back as the SQLite database at `url`, refused while any Fortnight
/// process holds it (or the backup is not a sound Fortnight database). The database it
/// replaces is kept beside it as `….replaced`; that path comes back.
pub async fn restore(url: &SecretString, file: &Path) -> Result<Option<PathBuf>, BackupError> {
    let database = sqlite_path(url)?;
    check(file).await?;
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(&format!("cannot make {}", dir.display()), e))?;
    }
    let lock_file = lock_path(&database);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(|e| failed(&format!("cannot open {}", lock_file.display()), e))?;
    if lock.try_lock().is_err() {
        return Err(BackupError::InUse(database));
    }
    let with_suffix = |suffix: &str| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let incoming = with_suffix(".restoring");
    std::fs::copy(file, &incoming)
        .map_err(|e| failed(&format!("cannot copy {}", file.display()), e))?;
    sync(&incoming)?;
    let replaced = if database.exists() {
        let aside = with_suffix(".replaced");
        std::fs::rename(&database, &aside)
            .map_err(|e| failed(&format!("cannot move {} aside", database.display()), e))?;
        Some(aside)
    } else {
        None
    };
    // The old database's log and index belong to it, not to the restored file.
    for stale in [with_suffix("-wal"), with_suffix("-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(&format!("cannot remove {}", stale.display()), e)),
        }
    }
    std::fs::rename(&incoming, &database)
        .map_err(|e| failed(&format!("cannot put {} in place", database.display()), e))?;
    sync(&database)?;
    drop(lock);
    Ok(replaced)
}

/// The `pg_dump` line that backs up the PostgreSQL database at `url` to `file`, its password
/// left out (`pg_dump` reads it from `PGPASSWORD` or `~/.pgpass`).
pub fn pg_dump_line(url: &SecretString, file: &Path) -> String {
    let mut shown = url::Url::parse(url.expose_secret())
        .map(|mut u| {
            let _ = u.set_password(None);
            u.to_string()
        })
        .unwrap_or_else(|_| "postgres://USER@HOST/DATABASE".into());
    shown = shown.replace('\'', "'\\''");
    format!(
        "pg_dump --format=custom --file='{}' '{shown}'",
        file.display().to_string().replace('\'', "'\\''")
    )
}
