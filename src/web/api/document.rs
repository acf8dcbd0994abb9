//! The OpenAPI 3 document: the handlers' annotations, plus the answers every route shares
//! (the token check, reading the path, reading a JSON body), added here once so that no
//! operation can leave them out.

use actix_web::HttpResponse;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{IntoParams, OpenApi};

use super::{
    calendar, deliverability, issues, links, schema, sends, subscribers, tags, webhooks, welcome,
};

/// The OpenAPI 3 document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "Fortnight API", description = "Manage the subscribers, issues and calendar of a Fortnight publication."),
    paths(
        subscribers::list,
        subscribers::create,
        subscribers::get,
        subscribers::update,
        subscribers::erase,
        subscribers::unsubscribe,
        issues::list,
        issues::create,
        issues::get,
        issues::update,
        issues::delete,
        issues::duplicate,
        issues::preview,
        issues::send_test,
        sends::show,
        sends::report,
        sends::pause,
        sends::resume,
        sends::cancel,
        sends::retry,
        calendar::schedule,
        calendar::unschedule,
        calendar::get_cadence,
        calendar::change_cadence,
        calendar::slots,
        calendar::skip,
        calendar::unskip,
        deliverability::bounces,
        deliverability::suppressions,
        deliverability::lift,
        welcome::get,
        welcome::put,
        welcome::preview,
        welcome::send_test,
        tags::list,
        tags::create,
        tags::update,
        tags::delete,
        tags::subscribers,
        tags::get_segment,
        tags::put_segment,
        links::list,
        links::save,
        links::get,
        links::update,
        links::delete,
        webhooks::list,
        webhooks::create,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::test,
        webhooks::deliveries,
        webhooks::redeliver,
        openapi
    ),
    components(schemas(super::error::ErrorBody)),
    modifiers(&BearerAuth, &SharedResponses)
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "The OpenAPI document")))]
pub(super) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The `{id}` of an issue's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct IssueId {
    /// Issue id.
    #[param(schema_with = schema::id)]
    id: i64,
}

/// The `{id}` of a tag's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct TagId {
    /// Tag id.
    #[param(schema_with = schema::id)]
    id: i64,
}

/// The `{id}` of a saved link's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct LinkId {
    /// Saved link id.
    #[param(schema_with = schema::id)]
    id: i64,
}

/// The `{id}` of a webhook endpoint's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct WebhookId {
    /// Webhook endpoint id.
    #[param(schema_with = schema::id)]
    id: i64,
}

/// The `{id}` of a subscriber's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct SubscriberId {
    /// Subscriber id.
    #[param(schema_with = schema::id)]
    id: i64,
}

/// The `{at}` of a slot's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct SlotAt {
    /// The slot's instant, RFC 3339.
    at: chrono::DateTime<chrono::Utc>,
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// Adds the answers that come from what every route passes through rather than from its
/// handler, unless the handler's annotation already describes that status.
struct SharedResponses;

impl utoipa::Modify for SharedResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_shared(operation);
            }
        }
    }
}

fn add_shared(operation: &mut Operation) {
    // `require_token` wraps the whole scope, the OpenAPI document included.
    add(
        operation,
        "401",
        error("No valid API token was sent.")
            .header(
                "WWW-Authenticate",
                Header::new(ObjectBuilder::new().schema_type(Type::String)),
            )
            .build(),
    );
    let path_parameters = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Path);
    if path_parameters {
        add(
            operation,
            "400",
            error("A path parameter is not what its schema says.").build(),
        );
    }
    // `JsonConfig` in `configure` answers for every handler that reads a JSON body.
    if operation.request_body.is_some() {
        add(
            operation,
            "400",
            error("The body is not the JSON expected, or a value in it is not valid.").build(),
        );
        add(
            operation,
            "413",
            error("The body is over the size limit.").build(),
        );
        add(
            operation,
            "415",
            error("The body was not sent as `application/json`.").build(),
        );
    }
}

/// A response with the API's error body.
fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

fn add(operation: &mut Operation, status: &str, response: Response) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert(RefOr::T(response));
}
