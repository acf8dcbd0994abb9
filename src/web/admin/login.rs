//! Signing in and out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::context::{self, EDITOR, ISSUED};
use super::see_other;
use crate::domain::SubscriberEmail;
use crate::domain::password;
use crate::render::admin::LoginPage;
use crate::store::editors;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// The sign-in form.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: `next` when it is a page of this admin (a path under
/// `/admin`, nothing that could lead off the site), else the dashboard.
pub fn after_login(next: &str) -> &str {
    let ours = next.starts_with("/admin")
        && !next.starts_with("/admin/login")
        && !next.contains(['\\', '\r', '\n'])
        && !next.contains("//")
        && !next.contains("..")
        && next.len() <= 4096;
    if ours { next } else { "/admin" }
}

/// The query of the sign-in page.
#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// `GET /admin/login`.
pub async fn form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    let next = after_login(&query.next);
    if session.get::<i64>(EDITOR).ok().flatten().is_some() {
        return Ok(see_other(next));
    }
    let csrf = context::csrf_token(&session);
    html(
        StatusCode::OK,
        LoginPage {
            publication: &state.publication,
            csrf: &csrf,
            email: "",
            error: None,
            next: if next == "/admin" { "" } else { next },
        },
    )
}

/// `POST /admin/login`: the same answer whether the address or the password was wrong, and
/// the same time taken (an unknown address is checked against a decoy hash).
pub async fn submit(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<Credentials>,
) -> Result<HttpResponse, WebError> {
    let Credentials {
        email,
        password,
        next,
    } = form.into_inner();
    let next = after_login(&next).to_owned();
    let refuse = |status: StatusCode, error: &str| {
        let csrf = context::csrf_token(&session);
        let shown: String = email.chars().take(254).collect();
        html(
            status,
            LoginPage {
                publication: &state.publication,
                csrf: &csrf,
                email: &shown,
                error: Some(error),
                next: if next == "/admin" { "" } else { &next },
            },
        )
    };
    // Keyed by the parsed address only, so the limiter's memory stays bounded by real
    // addresses; stale keys are dropped as they recover.
    let address = SubscriberEmail::parse(&email).ok();
    let key = address
        .as_ref()
        .map_or_else(|| "(not an address)".to_owned(), SubscriberEmail::key);
    state.login_accounts.retain_recent();
    if state.login_accounts.check_key(&key).is_err() {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Wait a minute and try again.",
        );
    }
    let found = match &address {
        Some(address) => editors::credentials(&state.db, address).await?,
        None => None,
    };
    let (id, hash) = found.unzip();
    let candidate = SecretString::from(password);
    // The decoy (first built here, off the async threads) makes unknown addresses as slow as known ones.
    let matches = web::block(move || {
        password::verify(
            &candidate,
            hash.as_deref().unwrap_or_else(|| password::decoy_hash()),
        )
    })
    .await
    .map_err(|e| WebError::Internal(e.into()))?;
    let Some(id) = id.filter(|_| matches) else {
        tracing::info!("sign-in refused");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The email address or the password is not right.",
        );
    };
    // A fresh session on sign-in: nothing chosen before it (fixation) survives.
    session.renew();
    session.clear();
    let now = state.clock.now();
    session
        .insert(EDITOR, id)
        .and_then(|()| session.insert(ISSUED, now.timestamp_micros()))
        .map_err(|e| WebError::Internal(anyhow::anyhow!("{e}")))?;
    editors::touch_login(&state.db, id, now).await?;
    tracing::info!(editor = id, "signed in");
    Ok(see_other(&next))
}

/// `POST /admin/logout`: ends this session and every other one of this editor, so a copy
/// of the cookie stops working too.
pub async fn logout(
    state: web::Data<AppState>,
    ctx: web::ReqData<super::AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    editors::end_sessions(&state.db, ctx.editor.id, state.clock.now()).await?;
    session.purge();
    Ok(see_other("/admin/login"))
}
