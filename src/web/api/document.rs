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
    modifiers(&BearerAuth, &SharedResponses, &Links)
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "The OpenAPI document")))]
pub(super) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The document as JSON. utoipa writes the fields of a link object in snake case
/// (`operation_ref`); OpenAPI names them in camel case (`operationRef`), so they are renamed.
fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    let responses = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let links = response.get_mut("links").and_then(|l| l.as_object_mut());
        for link in links.into_iter().flat_map(|l| l.values_mut()) {
            let Some(link) = link.as_object_mut() else {
                continue;
            };
            for (snake, camel) in [
                ("operation_ref", "operationRef"),
                ("operation_id", "operationId"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
    doc
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

/// Links what a `POST` to a collection creates to the operations on it (OpenAPI link objects):
/// the `id` its answer carries in `data` is the `{id}` of every path under the collection. A
/// client, or a checker such as schemathesis, can follow them from a new issue to its pause,
/// from a new webhook to its test, and so on.
struct Links;

impl utoipa::Modify for Links {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let mut targets: Vec<(String, String, String)> = Vec::new();
        for (path, item) in &doc.paths.paths {
            let Some((collection, rest)) = path.split_once("/{id}") else {
                continue;
            };
            // Only the id's own paths: `{id}` and fixed words after it.
            if rest.contains('{') {
                continue;
            }
            let methods = [
                ("get", item.get.is_some()),
                ("put", item.put.is_some()),
                ("post", item.post.is_some()),
                ("delete", item.delete.is_some()),
                ("patch", item.patch.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    targets.push((collection.to_owned(), path.clone(), method.to_owned()));
                }
            }
        }
        for (collection, path, method) in targets {
            let Some(create) = doc
                .paths
                .paths
                .get_mut(&collection)
                .and_then(|item| item.post.as_mut())
            else {
                continue;
            };
            let name = format!(
                "{method}{}",
                path[collection.len() + "/{id}".len()..].replace('/', ".")
            );
            let link = utoipa::openapi::link::LinkBuilder::new()
                .operation_ref(operation_ref(&path, &method))
                .parameter("id", "$response.body#/data/id")
                .build();
            for (status, response) in create.responses.responses.iter_mut() {
                if let ("200" | "201" | "202", RefOr::T(response)) = (status.as_str(), response) {
                    response.links.insert(name.clone(), RefOr::T(link.clone()));
                }
            }
        }
    }
}

/// The `operationRef` of an operation of this document: a JSON pointer (RFC 6901) in a URI
/// fragment, so `~` and `/` escaped and the braces of a template percent-encoded.
fn operation_ref(path: &str, method: &str) -> String {
    let pointer = path
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D");
    format!("#/paths/{pointer}/{method}")
}
