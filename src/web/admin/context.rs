//! What every signed-in page knows: the editor, the CSRF token, a one-time flash message.

use actix_session::Session;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::store::editors::Editor;

const CSRF: &str = "csrf";
const FLASH: &str = "flash";
/// Session key of the signed-in editor's id.
pub const EDITOR: &str = "editor_id";
/// Session key of the sign-in instant (microseconds since the epoch).
pub const ISSUED: &str = "issued_at";

/// Put in the request by the guard for every signed-in route.
#[derive(Clone, Debug)]
pub struct AdminContext {
    /// The signed-in editor.
    pub editor: Editor,
    /// The session's CSRF token, for form actions.
    pub csrf: String,
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF) {
        return token;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let _ = session.insert(CSRF, &token);
    token
}

/// The stored CSRF token, if the session has one.
pub fn stored_csrf(session: &Session) -> Option<String> {
    session.get::<String>(CSRF).ok().flatten()
}

/// Leaves a message for the next page the editor sees.
pub fn flash(session: &Session, message: impl Into<String>) {
    let _ = session.insert(FLASH, message.into());
}

/// The message left by the previous action, once.
pub fn take_flash(session: &Session) -> Option<String> {
    session.remove_as::<String>(FLASH).and_then(Result::ok)
}
