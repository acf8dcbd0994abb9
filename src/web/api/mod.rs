//! The JSON API under `/api/v1`: bearer tokens, subscribers, and its OpenAPI document.

use actix_governor::Governor;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, Route, web};

use super::AppState;

mod calendar;
mod deliverability;
mod document;
pub mod error;
mod issues;
mod links;
mod schema;
mod sends;
mod subscribers;
mod tags;
mod webhooks;
mod welcome;

pub use error::ApiError;

/// Largest JSON body accepted, in bytes.
pub(crate) const JSON_LIMIT: usize = 16 * 1024;
/// Largest JSON body accepted under `/issues` (a long Markdown body), in bytes.
pub(crate) const ISSUE_JSON_LIMIT: usize = 1024 * 1024;

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(error::json_error)
}

/// A JSON body that must be an object. serde reads a struct from an array too (`[]` is a
/// struct whose fields all have defaults), which no operation's document allows; other
/// errors answer as [`error::json_error`] does.
pub(crate) struct JsonObject<T>(T);

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> JsonObject<T> {
    /// The body.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let json = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            if !value.is_object() {
                return Err(
                    ApiError::invalid("invalid_json", "The body must be a JSON object.").into(),
                );
            }
            serde_json::from_value(value).map(JsonObject).map_err(|e| {
                ApiError::invalid(
                    "invalid_json",
                    format!("The body is not the JSON expected: {e}"),
                )
                .into()
            })
        })
    }
}

/// Every API route: (method, path under `/api/v1`, handler). The router is built from this
/// list; the tests walk it for the token check and compare it with the OpenAPI document.
fn routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (
            Method::GET,
            "/subscribers/{id}",
            web::get().to(subscribers::get),
        ),
        (
            Method::PATCH,
            "/subscribers/{id}",
            web::patch().to(subscribers::update),
        ),
        (
            Method::DELETE,
            "/subscribers/{id}",
            web::delete().to(subscribers::erase),
        ),
        (
            Method::POST,
            "/subscribers/{id}/unsubscribe",
            web::post().to(subscribers::unsubscribe),
        ),
        (
            Method::GET,
            "/bounces",
            web::get().to(deliverability::bounces),
        ),
        (
            Method::GET,
            "/suppressions",
            web::get().to(deliverability::suppressions),
        ),
        (
            Method::DELETE,
            "/suppressions/{email}",
            web::delete().to(deliverability::lift),
        ),
        (Method::GET, "/issues", web::get().to(issues::list)),
        (Method::POST, "/issues", web::post().to(issues::create)),
        (Method::GET, "/issues/{id}", web::get().to(issues::get)),
        (Method::PUT, "/issues/{id}", web::put().to(issues::update)),
        (
            Method::DELETE,
            "/issues/{id}",
            web::delete().to(issues::delete),
        ),
        (
            Method::POST,
            "/issues/{id}/duplicate",
            web::post().to(issues::duplicate),
        ),
        (
            Method::GET,
            "/issues/{id}/preview",
            web::get().to(issues::preview),
        ),
        (
            Method::POST,
            "/issues/{id}/test",
            web::post().to(issues::send_test),
        ),
        (
            Method::POST,
            "/issues/{id}/schedule",
            web::post().to(calendar::schedule),
        ),
        (Method::GET, "/issues/{id}/send", web::get().to(sends::show)),
        (
            Method::GET,
            "/issues/{id}/report",
            web::get().to(sends::report),
        ),
        (
            Method::POST,
            "/issues/{id}/pause",
            web::post().to(sends::pause),
        ),
        (
            Method::POST,
            "/issues/{id}/resume",
            web::post().to(sends::resume),
        ),
        (
            Method::POST,
            "/issues/{id}/cancel",
            web::post().to(sends::cancel),
        ),
        (
            Method::POST,
            "/issues/{id}/retry",
            web::post().to(sends::retry),
        ),
        (
            Method::POST,
            "/issues/{id}/unschedule",
            web::post().to(calendar::unschedule),
        ),
        (
            Method::GET,
            "/cadence",
            web::get().to(calendar::get_cadence),
        ),
        (
            Method::PUT,
            "/cadence",
            web::put().to(calendar::change_cadence),
        ),
        (Method::GET, "/slots", web::get().to(calendar::slots)),
        (
            Method::POST,
            "/slots/{at}/skip",
            web::post().to(calendar::skip),
        ),
        (
            Method::DELETE,
            "/slots/{at}/skip",
            web::delete().to(calendar::unskip),
        ),
        (Method::GET, "/tags", web::get().to(tags::list)),
        (Method::POST, "/tags", web::post().to(tags::create)),
        (Method::PATCH, "/tags/{id}", web::patch().to(tags::update)),
        (Method::DELETE, "/tags/{id}", web::delete().to(tags::delete)),
        (
            Method::POST,
            "/tags/{id}/subscribers",
            web::post().to(tags::subscribers),
        ),
        (
            Method::GET,
            "/issues/{id}/segment",
            web::get().to(tags::get_segment),
        ),
        (
            Method::PUT,
            "/issues/{id}/segment",
            web::put().to(tags::put_segment),
        ),
        (Method::GET, "/welcome", web::get().to(welcome::get)),
        (Method::PUT, "/welcome", web::put().to(welcome::put)),
        (
            Method::GET,
            "/welcome/preview",
            web::get().to(welcome::preview),
        ),
        (
            Method::POST,
            "/welcome/test",
            web::post().to(welcome::send_test),
        ),
        (Method::GET, "/links", web::get().to(links::list)),
        (Method::POST, "/links", web::post().to(links::save)),
        (Method::GET, "/links/{id}", web::get().to(links::get)),
        (Method::PATCH, "/links/{id}", web::patch().to(links::update)),
        (
            Method::DELETE,
            "/links/{id}",
            web::delete().to(links::delete),
        ),
        (Method::GET, "/webhooks", web::get().to(webhooks::list)),
        (Method::POST, "/webhooks", web::post().to(webhooks::create)),
        (Method::GET, "/webhooks/{id}", web::get().to(webhooks::get)),
        (
            Method::PATCH,
            "/webhooks/{id}",
            web::patch().to(webhooks::update),
        ),
        (
            Method::DELETE,
            "/webhooks/{id}",
            web::delete().to(webhooks::delete),
        ),
        (
            Method::POST,
            "/webhooks/{id}/test",
            web::post().to(webhooks::test),
        ),
        (
            Method::GET,
            "/webhooks/{id}/deliveries",
            web::get().to(webhooks::deliveries),
        ),
        (
            Method::POST,
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            web::post().to(webhooks::redeliver),
        ),
        (
            Method::GET,
            "/openapi.json",
            web::get().to(document::openapi),
        ),
    ]
}

/// `/subscribers`: listed, and created under the signup limit, so registered apart from
/// `routes()`.
fn subscriber_collection() -> Vec<(Method, Route)> {
    vec![
        (Method::GET, web::get().to(subscribers::list)),
        (Method::POST, web::post().to(subscribers::create)),
    ]
}

/// The method and full path of every API route, `/subscribers` included.
pub fn route_table() -> Vec<(Method, String)> {
    let mut table: Vec<(Method, String)> = subscriber_collection()
        .into_iter()
        .map(|(m, _)| (m, "/api/v1/subscribers".to_owned()))
        .collect();
    table.extend(
        routes()
            .into_iter()
            .map(|(m, p, _)| (m, format!("/api/v1{p}"))),
    );
    table
}

/// Registers `/api/v1`. Creating subscribers shares the signup form's per-IP limit. Each path
/// is one resource, so a method it does not take is answered 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig, signup_limit: &super::client_ip::PostLimit) {
    let mut scope = web::scope("/api/v1")
        .wrap(actix_web::middleware::from_fn(require_token))
        .app_data(json_config(JSON_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .service(
            resource("/subscribers", subscriber_collection()).wrap(Governor::new(signup_limit)),
        );
    for (path, routes) in resources() {
        let mut resource = resource(path, routes);
        if path.starts_with("/issues") || path.starts_with("/tags") || path == "/welcome" {
            resource = resource.app_data(json_config(ISSUE_JSON_LIMIT));
        }
        scope = scope.service(resource);
    }
    cfg.service(scope.default_service(web::to(|| async {
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "No such API endpoint.",
        )
        .error_response()
    })));
}

/// `routes()` grouped by path, in the order the paths first appear.
fn resources() -> Vec<(&'static str, Vec<(Method, Route)>)> {
    let mut grouped: Vec<(&'static str, Vec<(Method, Route)>)> = Vec::new();
    for (method, path, route) in routes() {
        match grouped.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => grouped.push((path, vec![(method, route)])),
        }
    }
    grouped
}

/// One path and its routes; any other method is answered 405.
fn resource(path: &str, routes: Vec<(Method, Route)>) -> actix_web::Resource {
    let methods: Vec<Method> = routes.iter().map(|(m, _)| m.clone()).collect();
    routes.into_iter().fold(
        web::resource(path).default_service(method_not_allowed(&methods)),
        |resource, (_, route)| resource.route(route),
    )
}

/// The answer to a method a path does not take: 405 JSON naming the ones it does, in `Allow`.
fn method_not_allowed(methods: &[Method]) -> Route {
    let allow = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::new(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("This address takes {allow}."),
            )
            .error_response();
            if let Ok(value) = header::HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
    })
}

/// Refuses any request without a live bearer token (401 JSON).
async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let live = match (token, state) {
        (Some(token), Some(state)) => {
            crate::store::api_tokens::authenticate(&state.db, &token, state.clock.now())
                .await
                .map_err(ApiError::from)?
        }
        _ => None,
    };
    if live.is_none() {
        let refused: HttpResponse = ApiError::unauthorized().error_response();
        return Ok(req.into_response(refused).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// An optional field that may be left out but not given as `null`: a PATCH body changes only
/// what it names, and `null` names nothing this API can store.
pub(crate) fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A list's page size: `raw`, or `default` when absent; 1 to 500, else a 400.
pub(crate) fn page_limit(raw: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(default);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    Ok(limit)
}

/// A page of a list read with one row more than `limit`: the rows shown, and the id to pass
/// as `before` for the next page when there is one.
pub(crate) fn page_of<T>(
    mut rows: Vec<T>,
    limit: i64,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = rows.last().map(&id).filter(|_| more);
    (rows, next_before)
}

/// A record id from a path: a positive whole number, else a 400 naming what it should be.
pub(crate) fn path_id(raw: &str, noun: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("invalid_id", format!("{raw:?} is not {noun} id")))
}
