//! The rest of the admin by hand: the cadence and its slots, the subscriber list, API tokens.

use fantoccini::Client;
use fortnight::domain::SubscriberStatus;
use reqwest::Method;

use crate::browser_tests;
use crate::fixture::{EDITOR, instance};
use crate::helpers::Backend;
use crate::page::{Page, Target, id_in};

browser_tests!(
    the_editor_changes_the_cadence_and_skips_a_slot,
    the_editor_finds_adds_and_erases_a_subscriber,
    the_editor_creates_and_revokes_an_api_token,
    the_editor_imports_a_csv_and_follows_its_progress,
);

async fn the_editor_imports_a_csv_and_follows_its_progress(backend: Backend, client: Client) {
    let app = instance(backend, |_| {}).await;
    let page = Page::new(client, &app);
    page.sign_in(EDITOR).await;
    // Big enough that the job is still running when its page first shows.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("readers.csv");
    let mut csv = String::from("email,name\n");
    for i in 0..60_000 {
        csv.push_str(&format!("imported{i}@example.com,Reader {i}\n"));
    }
    csv.push_str("not-an-address,Broken\n");
    std::fs::write(&file, csv).unwrap();
    page.click_through(Target::Link("Import")).await;
    page.find(Target::Css("#file"))
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .expect("the file is chosen");
    page.click(Target::Css(r#"input[name="consented"]"#)).await;
    page.click_through(Target::Button("Import")).await;
    let job = id_in(&page.path().await, "/admin/import/");
    // The page follows the job by itself (its script reloads it when the state changes) and
    // ends on the report.
    page.wait_for_text("#report", "Import finished").await;
    let report = page.text("#report").await;
    assert!(
        report.contains("60001 rows read: 60000 added as active") && report.contains("1 invalid"),
        "{report}"
    );
    assert!(
        page.text("table").await.contains("email:"),
        "the bad row, by line"
    );
    assert_eq!(app.subscriber_count().await, 60_000);
    page.click_through(Target::Link("← Imports")).await;
    let listed = page.text("table").await;
    assert!(
        listed.contains("readers.csv") && listed.contains("done"),
        "{listed}"
    );
    assert!(job > 0);
}

async fn the_editor_changes_the_cadence_and_skips_a_slot(backend: Backend, client: Client) {
    let app = instance(backend, |_| {}).await;
    let page = Page::new(client, &app);
    page.sign_in(EDITOR).await;
    page.click_through(Target::Link("Cadence")).await;
    page.choose("#every", "week").await;
    page.choose("#weekday", "Monday").await;
    // A time field takes keys per part; the browser's locale shows hours, minutes, AM/PM.
    page.fill("#time", "0715AM").await;
    assert_eq!(page.values("#time").await, ["07:15"]);
    page.fill("#zone", "Europe/London").await;
    page.click_through(Target::Button("Change")).await;
    let rule = "every week on Monday at 07:15 (Europe/London)";
    assert!(page.flash().await.contains(rule), "{}", page.flash().await);
    let history = page.text("section:last-of-type table").await;
    assert!(history.contains(rule), "{history}");

    // The first slot under the new rule, and its Skip button.
    let row =
        "(//tbody/tr[td[1][contains(., 'Europe/London')]][.//button[normalize-space()='Skip']])[1]";
    let slot = page
        .find(Target::XPath(&format!("{row}/td[1]")))
        .await
        .text()
        .await
        .unwrap();
    assert!(slot.starts_with("Mon "), "{slot}");
    page.click_through(Target::XPath(&format!("{row}//button")))
        .await;
    assert!(page.flash().await.starts_with("The slot is skipped"));
    let skipped = format!("//tbody/tr[td[1][normalize-space()='{slot}']]");
    let cells = page
        .find(Target::XPath(&skipped))
        .await
        .text()
        .await
        .unwrap();
    assert!(cells.contains("skipped"), "{cells}");
    page.find(Target::XPath(&format!(
        "{skipped}//button[normalize-space()='Unskip']"
    )))
    .await;
}

async fn the_editor_finds_adds_and_erases_a_subscriber(backend: Backend, client: Client) {
    let app = instance(backend, |_| {}).await;
    app.seed_active("reader", 3).await;
    let page = Page::new(client, &app);
    page.sign_in(EDITOR).await;
    page.click_through(Target::Link("Subscribers")).await;
    page.fill("#new-email", "ada@example.com").await;
    page.fill("#new-name", "Ada Lovelace").await;
    page.click(Target::Css(r#"input[name="consented"]"#)).await;
    page.click_through(Target::Button("Add")).await;
    assert_eq!(page.flash().await, "ada@example.com was added as active.");
    let ada = app.subscriber("ada@example.com").await.expect("added");
    assert_eq!(ada.status, SubscriberStatus::Active);

    page.click_through(Target::Link("Subscribers")).await;
    page.fill("#q", "lovelace").await;
    page.click_through(Target::Button("Filter")).await;
    let table = page.text("table").await;
    assert!(table.contains("ada@example.com"), "{table}");
    assert!(!table.contains("reader0@example.com"), "{table}");
    page.click_through(Target::Link("ada@example.com")).await;
    assert_eq!(id_in(&page.path().await, "/admin/subscribers/"), ada.id);

    // Erasing cannot be undone: without the box ticked, the browser keeps the form back.
    let erase = "Erase (GDPR): delete the address and its history";
    page.click_and_stay(Target::Button(erase)).await;
    assert!(app.subscriber("ada@example.com").await.is_some());
    page.click(Target::Css(r#"input[name="confirm"]"#)).await;
    page.click_through(Target::Button(erase)).await;
    assert_eq!(
        page.flash().await,
        "The subscriber was erased, with their history."
    );
    assert!(app.subscriber("ada@example.com").await.is_none());
    page.fill("#q", "lovelace").await;
    page.click_through(Target::Button("Filter")).await;
    assert!(page.text("table").await.contains("No subscribers match."));
}

async fn the_editor_creates_and_revokes_an_api_token(backend: Backend, client: Client) {
    let app = instance(backend, |_| {}).await;
    let page = Page::new(client, &app);
    page.sign_in(EDITOR).await;
    page.click_through(Target::Link("API tokens")).await;
    page.fill("#token-name", "Zapier").await;
    page.click_through(Target::Button("Create a token")).await;
    let token = page.text("#new-token").await;
    let works = |token: String| {
        let app = &app;
        async move {
            app.api(Method::GET, "/api/v1/issues", &token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(works(token.clone()).await, 200);

    let row = "//tbody/tr[td[1][normalize-space()='Zapier']]";
    page.click_through(Target::XPath(&format!(
        "{row}//button[normalize-space()='Revoke']"
    )))
    .await;
    assert!(page.flash().await.starts_with("The token was revoked"));
    let cells = page.find(Target::XPath(row)).await.text().await.unwrap();
    assert!(cells.contains("revoked"), "{cells}");
    assert!(!page.has("#new-token").await, "the token is shown once");
    assert_eq!(works(token).await, 401);
}
