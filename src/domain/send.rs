//! A send as the editor watches it: deliveries by state, the errors, the final report.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Deliveries of one issue by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Waiting for a first try.
    pub pending: i64,
    /// Failed temporarily; tried again later.
    pub retrying: i64,
    /// Accepted by the mail server.
    pub sent: i64,
    /// Failed permanently.
    pub failed: i64,
    /// The reader left before their turn.
    pub skipped: i64,
    /// Stopped by a cancel.
    pub cancelled: i64,
    /// Held by a worker that died before recording them, so they may have gone out twice (with
    /// the same Message-ID): taken over by another worker, or, in a cancelled send, still held.
    pub in_doubt: i64,
    /// Sent in the last minute.
    pub sent_last_minute: i64,
}

impl Progress {
    /// Deliveries in all.
    pub fn total(&self) -> i64 {
        self.pending + self.retrying + self.sent + self.failed + self.skipped + self.cancelled
    }

    /// Deliveries still to go.
    pub fn remaining(&self) -> i64 {
        self.pending + self.retrying
    }
}

/// The report kept with a finished send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// Deliveries by state at the end.
    pub progress: Progress,
    /// From start to finish, in seconds.
    pub duration_secs: i64,
}

/// A delivery that went wrong, for the send page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryError {
    /// The reader's address.
    pub email: String,
    /// retrying or failed.
    pub status: String,
    /// Tries so far.
    pub attempts: i32,
    /// The server's reply or the connection error.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub updated_at: DateTime<Utc>,
}

/// A send as the editor watches it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SendStatus {
    /// The issue's status: sending, sent, cancelled (or draft/scheduled before it starts).
    pub state: crate::domain::IssueStatus,
    /// Held by the editor.
    pub paused: bool,
    /// Deliveries by state.
    pub progress: Progress,
    /// Share done, 0 to 100.
    pub percent: i64,
    /// Messages sent in the last minute.
    pub rate_per_minute: i64,
    /// Seconds left at the current rate, when it can be told.
    pub eta_secs: Option<i64>,
    /// The latest errors, newest first.
    pub errors: Vec<DeliveryError>,
    /// The final report, once finished.
    pub summary: Option<Summary>,
    /// Readers the send was fixed to when it started.
    pub audience: Option<i64>,
    /// Who they are, in words ("everyone", "readers tagged any of Weekly").
    pub audience_label: Option<String>,
}

/// One issue as it went to one reader, for the reader's page in the admin.
#[derive(Debug, Clone)]
pub struct ReaderDelivery {
    /// The issue.
    pub issue_id: i64,
    /// Its subject.
    pub subject: String,
    /// pending, retrying, sent, failed, skipped or cancelled.
    pub status: String,
    /// When the relay accepted the copy.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Messages a minute, from those sent in the last minute and how long the send has run. In a
/// send's first minute "the last minute" holds everything sent so far, so the count is scaled
/// from the time it has run (from its first second on) rather than read as a minute's worth.
pub fn rate_per_minute(sent_last_minute: i64, running: Option<chrono::Duration>) -> i64 {
    match running.map(|d| d.num_milliseconds()) {
        Some(ms) if (1_000..60_000).contains(&ms) => sent_last_minute * 60_000 / ms,
        _ => sent_last_minute,
    }
}

#[cfg(test)]
mod tests {
    use super::rate_per_minute;
    use chrono::Duration;

    #[test]
    fn the_first_minute_is_scaled_from_the_seconds_run() {
        // 45 copies 3 s in is 900 a minute, not 45 (and a 40-second send, not 13 minutes).
        assert_eq!(rate_per_minute(45, Some(Duration::seconds(3))), 900);
        assert_eq!(rate_per_minute(600, Some(Duration::seconds(30))), 1200);
        assert_eq!(rate_per_minute(700, Some(Duration::minutes(5))), 700);
        assert_eq!(rate_per_minute(700, None), 700);
        // Too early to tell: the count as it is.
        assert_eq!(rate_per_minute(3, Some(Duration::milliseconds(200))), 3);
    }
}

/// What became of an issue after it went out: its report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssueReport {
    /// Readers the send was fixed to when it started.
    pub audience: Option<i64>,
    /// Who they were, in words.
    pub audience_label: Option<String>,
    /// Copies the mail server accepted.
    pub sent: i64,
    /// Copies that failed for good.
    pub failed: i64,
    /// Readers whose copy bounced afterwards (reported by a provider or the bounce mailbox).
    pub bounced: i64,
    /// Readers who marked it as spam.
    pub complained: i64,
    /// Readers who got it and unsubscribed within 7 days of its going out.
    pub unsubscribed_within_7_days: i64,
    /// Whether links are tracked (`track_clicks`); the click counts are empty otherwise.
    pub clicks_tracked: bool,
    /// Whether clicks name readers (`track_readers`).
    pub readers_tracked: bool,
    /// The roundup's links in their order, then the body's other links, each with its clicks.
    pub links: Vec<LinkReport>,
    /// Whether opens are counted (`track_opens`).
    pub opens_tracked: bool,
    /// Requests for the pixel (a reader opening twice, or a mail client's image proxy, counts
    /// each time).
    pub opens: i64,
    /// Different readers who opened (only with `track_readers`).
    pub readers_opened: Option<i64>,
}

/// One link of an issue and the clicks on it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LinkReport {
    /// The roundup link's title; absent for a link in the body.
    pub title: Option<String>,
    /// The address.
    pub url: String,
    /// Requests through the tracked link.
    pub clicks: i64,
    /// Different readers who clicked (only with `track_readers`).
    pub readers: Option<i64>,
}
