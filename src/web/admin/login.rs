//! Signing in and out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::context::{self, EDITOR};
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
}

/// `GET /admin/login`.
pub async fn form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, WebError> {
    if session.get::<i64>(EDITOR).ok().flatten().is_some() {
        return Ok(see_other("/admin"));
    }
    let csrf = context::csrf_token(&session);
    html(
        StatusCode::OK,
        LoginPage {
            publication: &state.publication,
            csrf: &csrf,
            email: "",
            error: None,
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
    let Credentials { email, password } = form.into_inner();
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
            },
        )
    };
    let key = email.trim().to_lowercase();
    if state.login_accounts.check_key(&key).is_err() {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Wait a minute and try again.",
        );
    }
    let found = match SubscriberEmail::parse(&email) {
        Ok(address) => editors::credentials(&state.db, &address).await?,
        Err(_) => None,
    };
    let (id, hash) = found.map_or((None, password::decoy_hash().to_owned()), |(id, hash)| {
        (Some(id), hash)
    });
    let candidate = SecretString::from(password);
    let matches = web::block(move || password::verify(&candidate, &hash))
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
    session
        .insert(EDITOR, id)
        .map_err(|e| WebError::Internal(anyhow::anyhow!("{e}")))?;
    editors::touch_login(&state.db, id, state.clock.now()).await?;
    tracing::info!(editor = id, "signed in");
    Ok(see_other("/admin"))
}

/// `POST /admin/logout`.
pub async fn logout(session: Session) -> HttpResponse {
    session.purge();
    see_other("/admin/login")
}
