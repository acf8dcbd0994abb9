//! Outbound webhooks: the endpoints the editor registered, and the deliveries queued for them
//! inside the transaction of each change they report, so that an event is never lost after a
//! commit and never sent for a change rolled back.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::webhook::{
    DISABLE_AFTER, DeliveryStatus, Endpoint, EventSet, EventType, WebhookDelivery, WebhookSecret,
};
use crate::with_pool;

from_row!(Endpoint {
    id: plain,
    url: plain,
    description: plain,
    events: parsed,
    secret: parsed,
    enabled: plain,
    failing_since: plain,
    disabled_reason: plain,
    created_at: plain,
});

from_row!(WebhookDelivery {
    id: plain,
    endpoint_id: plain,
    message_id: plain,
    event_type: plain,
    payload: plain,
    status: parsed,
    attempts: plain,
    next_attempt_at: plain,
    last_attempt_at: plain,
    last_status_code: plain,
    last_error: plain,
    created_at: plain,
    delivered_at: plain,
});

const ENDPOINT_COLUMNS: &str =
    "id, url, description, events, secret, enabled, failing_since, disabled_reason, created_at";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, message_id, event_type, payload, status, attempts, \
     next_attempt_at, last_attempt_at, last_status_code, last_error, created_at, delivered_at";

/// Rows per insert statement, well under either database's limit on bound values.
pub(super) const INSERT_CHUNK: usize = 500;

/// The enabled endpoints that want `$event`, read inside `$tx` (`?` on a database error).
macro_rules! webhook_targets {
    ($tx:ident, $event:expr) => {{
        let event: $crate::domain::webhook::EventType = $event;
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, events FROM webhook_endpoints WHERE enabled")
                .fetch_all(&mut *$tx)
                .await?;
        rows.into_iter()
            .filter(|(_, events)| {
                $crate::domain::webhook::EventSet::from_stored(events)
                    .is_ok_and(|set| set.contains(event))
            })
            .map(|(id, _)| id)
            .collect::<Vec<i64>>()
    }};
}
pub(super) use webhook_targets;

/// Queues, inside `$tx`, one event `$event` per item of `$data` (the subscriber it is about,
/// if any, and its JSON `data`) for every endpoint in `$targets`, due at `$now` (`?` on a
/// database error).
macro_rules! queue_webhooks {
    ($tx:ident, $targets:expr, $event:expr, $data:expr, $now:expr) => {{
        let targets: &[i64] = $targets;
        let event: $crate::domain::webhook::EventType = $event;
        let now: chrono::DateTime<chrono::Utc> = $now;
        let rows: Vec<(i64, Option<i64>, String, String)> = $data
            .iter()
            .flat_map(|(about, data): &(Option<i64>, serde_json::Value)| {
                let id = $crate::domain::webhook::message_id();
                let body = $crate::domain::webhook::payload(event, data, now);
                targets
                    .iter()
                    .map(move |endpoint| (*endpoint, *about, id.clone(), body.clone()))
            })
            .collect();
        for chunk in rows.chunks($crate::store::webhooks::INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_deliveries (endpoint_id, subscriber_id, message_id, event_type, \
                 payload, status, attempts, next_attempt_at, created_at) ",
            );
            insert.push_values(chunk, |mut row, (endpoint, about, id, body)| {
                row.push_bind(*endpoint)
                    .push_bind(*about)
                    .push_bind(id.clone())
                    .push_bind(event.as_str())
                    .push_bind(body.clone())
                    .push("'pending'")
                    .push("0")
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.build().execute(&mut *$tx).await?;
        }
    }};
}
pub(super) use queue_webhooks;

/// Queues, inside `$tx`, event `$event` about each subscriber whose `$column` (`id`,
/// `email_key` or `uid`) is among `$values` (a `Vec`), for the endpoints that want it. Costs
/// one small read when no endpoint does.
macro_rules! queue_subscriber_webhooks {
    ($tx:ident, $event:expr, $column:literal, $values:expr, $now:expr) => {{
        let event: $crate::domain::webhook::EventType = $event;
        let values = $values;
        if !values.is_empty() {
            let targets = $crate::store::webhooks::webhook_targets!($tx, event);
            if !targets.is_empty() {
                let mut select = sqlx::QueryBuilder::new(concat!(
                    "SELECT id, uid, email, name, status, unsubscribe_reason FROM subscribers WHERE ",
                    $column,
                    " IN "
                ));
                $crate::store::push_list(&mut select, values);
                let rows: Vec<$crate::store::webhooks::SubscriberFacts> =
                    select.build_query_as().fetch_all(&mut *$tx).await?;
                let data: Vec<(Option<i64>, serde_json::Value)> = rows
                    .iter()
                    .map($crate::store::webhooks::subscriber_data)
                    .collect();
                $crate::store::webhooks::queue_webhooks!($tx, &targets, event, data, $now);
            }
        }
    }};
}
pub(super) use queue_subscriber_webhooks;

/// What a subscriber event says about the reader.
pub(super) type SubscriberFacts = (
    i64,
    uuid::Uuid,
    String,
    Option<String>,
    String,
    Option<String>,
);

/// A subscriber event: the subscriber it is about, and its `data`.
pub(super) fn subscriber_data(facts: &SubscriberFacts) -> (Option<i64>, serde_json::Value) {
    let (id, uid, email, name, status, reason) = facts;
    let mut data = serde_json::json!({
        "id": uid,
        "email": email,
        "name": name,
        "status": status,
    });
    if let Some(reason) = reason.as_deref().filter(|_| status == "unsubscribed") {
        data["reason"] = reason.into();
    }
    (Some(*id), data)
}

/// An issue event's `data`.
pub(super) fn issue_data(
    issue: &crate::domain::Issue,
    summary: Option<&serde_json::Value>,
) -> (Option<i64>, serde_json::Value) {
    let mut data = serde_json::json!({
        "id": issue.id,
        "uid": issue.uid,
        "subject": issue.subject,
        "slug": issue.slug,
        "status": issue.status.as_str(),
        "scheduled_at": issue.scheduled_at,
        "audience": issue.audience_label,
    });
    if let Some(summary) = summary {
        data["summary"] = summary.clone();
    }
    (None, data)
}

/// Why a change to endpoints was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No endpoint (or delivery) has this id.
    #[error("there is no such webhook endpoint or delivery")]
    NotFound,
    /// The endpoint is switched off: nothing is sent to it.
    #[error("the endpoint is switched off; switch it on first")]
    Disabled,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WebhookError {
    fn from(e: sqlx::Error) -> Self {
        WebhookError::Store(StoreError::Database(e))
    }
}

/// A new endpoint, checked.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where to post.
    pub url: url::Url,
    /// A note.
    pub description: String,
    /// What it wants.
    pub events: EventSet,
    /// What to sign with.
    pub secret: WebhookSecret,
}

/// Every endpoint, oldest first.
pub async fn list(db: &Db) -> Result<Vec<Endpoint>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .fetch_all(pool)
        .await)?)
}

/// One endpoint.
pub async fn get(db: &Db, id: i64) -> Result<Option<Endpoint>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// Registers an endpoint, enabled.
#[tracing::instrument(skip_all)]
pub async fn create(
    db: &Db,
    new: &NewEndpoint,
    now: DateTime<Utc>,
) -> Result<Endpoint, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (url, description, events, secret, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, TRUE, $5, $5) RETURNING {ENDPOINT_COLUMNS}"
    ));
    Ok(with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(new.url.as_str())
        .bind(&new.description)
        .bind(new.events.to_stored())
        .bind(new.secret.expose())
        .bind(now)
        .fetch_one(pool)
        .await)?)
}

/// A change to an endpoint; `None` fields stay.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    /// A new address.
    pub url: Option<url::Url>,
    /// A new note.
    pub description: Option<String>,
    /// New events.
    pub events: Option<EventSet>,
    /// A new secret.
    pub secret: Option<WebhookSecret>,
    /// Switched on (which, for an endpoint that was off, forgets its failures) or off. A new
    /// address forgets them too.
    pub enabled: Option<bool>,
}

/// Changes an endpoint.
#[tracing::instrument(skip_all, fields(id))]
pub async fn update(
    db: &Db,
    id: i64,
    change: &EndpointChange,
    now: DateTime<Utc>,
) -> Result<Endpoint, WebhookError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET url = COALESCE($2, url), description = COALESCE($3, description), \
         events = COALESCE($4, events), secret = COALESCE($5, secret), enabled = COALESCE($6, enabled), \
         failing_since = CASE WHEN ($6 AND NOT enabled) OR $2 <> url THEN NULL ELSE failing_since END, \
         disabled_reason = CASE WHEN $6 AND NOT enabled THEN NULL ELSE disabled_reason END, \
         updated_at = $7 WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ));
    let found: Option<Endpoint> = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(id)
        .bind(change.url.as_ref().map(url::Url::as_str))
        .bind(change.description.as_deref())
        .bind(change.events.as_ref().map(EventSet::to_stored))
        .bind(change.secret.as_ref().map(WebhookSecret::expose))
        .bind(change.enabled)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
    found.ok_or(WebhookError::NotFound)
}

/// Removes an endpoint and its log.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: i64) -> Result<(), WebhookError> {
    let gone = with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM webhook_endpoints WHERE id = $1"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    if gone == 0 {
        return Err(WebhookError::NotFound);
    }
    Ok(())
}

/// Queues a `webhook.test` event for one endpoint, whatever events it wants (while it is on).
#[tracing::instrument(skip(db))]
pub async fn queue_test(
    db: &Db,
    endpoint_id: i64,
    publication: &str,
    now: DateTime<Utc>,
) -> Result<WebhookDelivery, WebhookError> {
    let data = serde_json::json!({ "message": format!("A test event from {publication}.") });
    insert_one(
        db,
        endpoint_id,
        &crate::domain::webhook::message_id(),
        EventType::Test.as_str(),
        &crate::domain::webhook::payload(EventType::Test, &data, now),
        now,
    )
    .await
}

/// Queues delivery `delivery_id` of an endpoint again (while it is on), as a new delivery
/// with the same message id and body (a receiver that took the first can tell it is a repeat).
#[tracing::instrument(skip(db))]
pub async fn redeliver(
    db: &Db,
    endpoint_id: i64,
    delivery_id: i64,
    now: DateTime<Utc>,
) -> Result<WebhookDelivery, WebhookError> {
    let old = delivery(db, endpoint_id, delivery_id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    insert_one(
        db,
        endpoint_id,
        &old.message_id,
        &old.event_type,
        &old.payload,
        now,
    )
    .await
}

async fn insert_one(
    db: &Db,
    endpoint_id: i64,
    message_id: &str,
    event_type: &str,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<WebhookDelivery, WebhookError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, payload, status, attempts, \
         next_attempt_at, created_at) SELECT id, $2, $3, $4, 'pending', 0, $5, $5 \
         FROM webhook_endpoints WHERE id = $1 AND enabled RETURNING {DELIVERY_COLUMNS}"
    ));
    let made: Option<WebhookDelivery> = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(endpoint_id)
        .bind(message_id)
        .bind(event_type)
        .bind(payload)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
    match made {
        Some(made) => Ok(made),
        None if get(db, endpoint_id).await?.is_some() => Err(WebhookError::Disabled),
        None => Err(WebhookError::NotFound),
    }
}

/// One delivery of an endpoint.
pub async fn delivery(
    db: &Db,
    endpoint_id: i64,
    delivery_id: i64,
) -> Result<Option<WebhookDelivery>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(delivery_id)
        .bind(endpoint_id)
        .fetch_optional(pool)
        .await)?)
}

/// An endpoint's deliveries, newest first: up to `limit` older than `before`, only those with
/// `status` when given.
pub async fn deliveries(
    db: &Db,
    endpoint_id: i64,
    status: Option<DeliveryStatus>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
         AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(endpoint_id)
        .bind(status.map(DeliveryStatus::as_str))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// A delivery leased to the sender, with where it goes. No `Debug`: it holds the secret.
#[derive(Clone, sqlx::FromRow)]
pub struct DueDelivery {
    /// Row id.
    pub id: i64,
    /// The endpoint's id.
    pub endpoint_id: i64,
    /// The `webhook-id`.
    pub message_id: String,
    /// The body.
    pub payload: String,
    /// Tries so far, this one included.
    pub attempts: i32,
    /// Where to post.
    pub url: String,
    /// The endpoint's secret, stored form.
    pub secret: String,
}

/// Leases up to `limit` due deliveries of enabled endpoints until `lease_until`, counting the
/// try. A lease left by a crashed sender has ended by `now`, so its rows are taken again.
#[tracing::instrument(skip(db))]
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueDelivery>, StoreError> {
    // PostgreSQL skips rows another instance is claiming; SQLite has one writer at a time.
    let lock = match db {
        Db::Sqlite { .. } => "",
        Db::Postgres(_) => " FOR UPDATE OF d SKIP LOCKED",
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_deliveries SET locked_until = $2, attempts = attempts + 1 WHERE id IN \
         (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled \
         AND (d.locked_until IS NULL OR d.locked_until <= $1) ORDER BY d.next_attempt_at, d.id LIMIT $3{lock}) \
         RETURNING id, endpoint_id, message_id, payload, attempts, \
         (SELECT url FROM webhook_endpoints e WHERE e.id = webhook_deliveries.endpoint_id) AS url, \
         (SELECT secret FROM webhook_endpoints e WHERE e.id = webhook_deliveries.endpoint_id) AS secret"
    ));
    Ok(with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// How one try ended.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The endpoint's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed; `None` when the endpoint took it (2xx).
    pub error: Option<String>,
    /// When the try ended.
    pub at: DateTime<Utc>,
}

/// What recording a try did to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEffect {
    /// Nothing beyond the delivery.
    None,
    /// It had failed for a day and is now disabled.
    Disabled,
}

/// Records a try of leased delivery `id` (only while the lease is still `lease`), schedules
/// the next try or gives up, and keeps the endpoint's run of failures: a success ends it; a
/// failure a day after it began disables the endpoint and, in the same transaction, queues
/// `notice` (subject, text) to every editor.
#[tracing::instrument(skip_all, fields(delivery = delivery.id, endpoint = delivery.endpoint_id))]
pub async fn record_attempt(
    db: &Db,
    delivery: &DueDelivery,
    lease: DateTime<Utc>,
    attempt: &Attempt,
    notice: &(String, String),
) -> Result<EndpointEffect, StoreError> {
    let code = attempt.status_code.map(i32::from);
    let now = attempt.at;
    Ok(with_pool!(db, write, |pool| {
        async {
        let mut tx = pool.begin().await?;
        // The endpoint first, then the delivery: the order a deletion takes them in (the
        // endpoint, then its deliveries by cascade), so the two wait rather than deadlock.
        sqlx::query("UPDATE webhook_endpoints SET updated_at = updated_at WHERE id = $1")
            .bind(delivery.endpoint_id)
            .execute(&mut *tx)
            .await?;
        let effect = match &attempt.error {
            None => {
                let mine = sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = $2, last_attempt_at = $2, \
                     last_status_code = $3, last_error = NULL, locked_until = NULL \
                     WHERE id = $1 AND locked_until = $4",
                )
                .bind(delivery.id)
                .bind(now)
                .bind(code)
                .bind(lease)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if mine == 1 {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 \
                         AND failing_since IS NOT NULL",
                    )
                    .bind(delivery.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
                }
                EndpointEffect::None
            }
            Some(error) => {
                let next = crate::domain::webhook::next_attempt(delivery.attempts, now);
                let mine = sqlx::query(
                    "UPDATE webhook_deliveries SET status = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
                     last_attempt_at = $4, last_status_code = $5, last_error = $6, locked_until = NULL \
                     WHERE id = $1 AND locked_until = $7",
                )
                .bind(delivery.id)
                .bind(if next.is_some() { "pending" } else { "failed" })
                .bind(next)
                .bind(now)
                .bind(code)
                .bind(error)
                .bind(lease)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let disabled: Option<i64> = if mine == 1 {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
                    )
                    .bind(delivery.endpoint_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query_scalar(
                        "UPDATE webhook_endpoints SET enabled = FALSE, updated_at = $2, disabled_reason = $3 \
                         WHERE id = $1 AND enabled AND failing_since <= $4 RETURNING id",
                    )
                    .bind(delivery.endpoint_id)
                    .bind(now)
                    .bind(format!("Every try failed for a day; the last: {error}"))
                    .bind(now - DISABLE_AFTER)
                    .fetch_optional(&mut *tx)
                    .await?
                } else {
                    None
                };
                if disabled.is_some() {
                    let editors: Vec<String> = sqlx::query_scalar("SELECT email FROM editors")
                        .fetch_all(&mut *tx)
                        .await?;
                    for to in editors {
                        let payload = serde_json::to_string(&super::outbox::Notice {
                            to,
                            subject: notice.0.clone(),
                            text: notice.1.clone(),
                        })
                        .unwrap_or_default();
                        sqlx::query(
                            "INSERT INTO mail_outbox (kind, payload, status, attempts, next_attempt_at, created_at) \
                             VALUES ('notice', $1, 'pending', 0, $2, $2)",
                        )
                        .bind(payload)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    EndpointEffect::Disabled
                } else {
                    EndpointEffect::None
                }
            }
        };
        tx.commit().await?;
        Ok::<_, sqlx::Error>(effect)
    }
    .await
    })?)
}

/// Hands back leased deliveries not tried (shutdown came first), the try not counted.
pub async fn release(db: &Db, ids: &[i64], lease: DateTime<Utc>) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    with_pool!(db, write, |pool| {
        let mut query = sqlx::QueryBuilder::new(
            "UPDATE webhook_deliveries SET locked_until = NULL, attempts = attempts - 1 WHERE locked_until = ",
        );
        query.push_bind(lease).push(" AND id IN ");
        super::push_list(&mut query, ids.iter().copied());
        query.build().execute(pool).await.map(|_| ())
    })?;
    Ok(())
}
