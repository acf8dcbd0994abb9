//! Tokens in reader-facing links.
//!
//! A confirmation token is 256 random bits; only its SHA-256 is stored. An unsubscribe token
//! never expires and must be writable into every email of a million-recipient send, so it is
//! derived rather than stored: the subscriber's random public id and a MAC of it under a key
//! the installation keeps. Nothing at rest lets anyone forge or recover one without that key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Bytes of randomness in a confirmation token.
const CONFIRM_BYTES: usize = 32;
/// Bytes of MAC kept in an unsubscribe token.
const MAC_BYTES: usize = 16;

/// A link token that is not one of ours: wrong length, wrong alphabet or a bad MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the link is malformed")]
pub struct MalformedToken;

/// The SHA-256 of a confirmation token, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

/// A confirmation token as it appears in a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmToken(String);

impl ConfirmToken {
    /// A fresh random token.
    pub fn generate() -> ConfirmToken {
        let mut bytes = [0u8; CONFIRM_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        ConfirmToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only what [`ConfirmToken::generate`] can produce.
    pub fn parse(raw: &str) -> Result<ConfirmToken, MalformedToken> {
        match URL_SAFE_NO_PAD.decode(raw) {
            Ok(bytes) if bytes.len() == CONFIRM_BYTES => Ok(ConfirmToken(raw.to_owned())),
            _ => Err(MalformedToken),
        }
    }

    /// What the database keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The text for the link.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The secret that unsubscribe tokens are signed with (kept in the database's settings).
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(***)")
    }
}

impl LinkKey {
    /// A new random key.
    pub fn generate() -> LinkKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        LinkKey(bytes)
    }

    /// A key from stored bytes; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<LinkKey> {
        bytes.try_into().ok().map(LinkKey)
    }

    /// The raw bytes, for storing.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, purpose: LinkPurpose, uid: &Uuid) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(match purpose {
            LinkPurpose::Unsubscribe => b"fortnight/unsubscribe/v1:".as_slice(),
            LinkPurpose::Manage => b"fortnight/manage/v1:".as_slice(),
            LinkPurpose::ManageForm => b"fortnight/manage-form/v1:".as_slice(),
        });
        mac.update(uid.as_bytes());
        mac
    }

    fn sign(&self, purpose: LinkPurpose, uid: &Uuid) -> String {
        let tag = self.mac(purpose, uid).finalize().into_bytes();
        let mut bytes = [0u8; 16 + MAC_BYTES];
        bytes[..16].copy_from_slice(uid.as_bytes());
        bytes[16..].copy_from_slice(&tag[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn verify(&self, purpose: LinkPurpose, token: &str) -> Result<Uuid, MalformedToken> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| MalformedToken)?;
        if bytes.len() != 16 + MAC_BYTES {
            return Err(MalformedToken);
        }
        let uid = Uuid::from_slice(&bytes[..16]).map_err(|_| MalformedToken)?;
        self.mac(purpose, &uid)
            .verify_truncated_left(&bytes[16..])
            .map_err(|_| MalformedToken)?;
        Ok(uid)
    }

    /// The unsubscribe token of the subscriber whose public id is `uid`.
    pub fn unsubscribe_token(&self, uid: &Uuid) -> String {
        self.sign(LinkPurpose::Unsubscribe, uid)
    }

    /// The subscriber an unsubscribe token names, if this key signed it.
    pub fn verify_unsubscribe(&self, token: &str) -> Result<Uuid, MalformedToken> {
        self.verify(LinkPurpose::Unsubscribe, token)
    }

    /// The token of the subscriber's "manage your subscription" page. Signed apart from the
    /// unsubscribe token (which also travels in a mailto's subject), so neither opens the other.
    pub fn manage_token(&self, uid: &Uuid) -> String {
        self.sign(LinkPurpose::Manage, uid)
    }

    /// The subscriber a manage token names, if this key signed it.
    pub fn verify_manage(&self, token: &str) -> Result<Uuid, MalformedToken> {
        self.verify(LinkPurpose::Manage, token)
    }

    /// The hidden field of the forms on a subscriber's manage page (their CSRF token).
    pub fn manage_form_token(&self, uid: &Uuid) -> String {
        self.sign(LinkPurpose::ManageForm, uid)
    }

    /// Whether `token` is the manage page's form token of `uid`.
    pub fn verify_manage_form(&self, uid: &Uuid, token: &str) -> bool {
        self.verify(LinkPurpose::ManageForm, token) == Ok(*uid)
    }
}

/// What a tracked link (`/l/{token}`) carries: the issue, the exact address it leads to, and
/// the reader only when readers are tracked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    /// The issue the link was in.
    pub issue_id: i64,
    /// The reader whose copy it was, when `track_readers` is on.
    pub reader: Option<Uuid>,
    /// The original address, byte for byte.
    pub url: String,
}

/// What an open-tracking pixel (`/o/{token}`, only with `track_opens`) carries: the issue, and
/// the reader only when readers are tracked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The issue the pixel was in.
    pub issue_id: i64,
    /// The reader whose copy it was, when `track_readers` is on.
    pub reader: Option<Uuid>,
}

impl LinkKey {
    fn tracking_mac(&self, purpose: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose);
        mac.update(payload);
        mac
    }

    /// `payload` (the issue, the reader if any, then `rest`) and its MAC under `purpose`.
    fn tracking_token(
        &self,
        purpose: &[u8],
        issue_id: i64,
        reader: Option<Uuid>,
        rest: &[u8],
    ) -> String {
        let mut payload = Vec::with_capacity(25 + rest.len());
        payload.push(u8::from(reader.is_some()));
        payload.extend_from_slice(&issue_id.to_be_bytes());
        if let Some(uid) = reader {
            payload.extend_from_slice(uid.as_bytes());
        }
        payload.extend_from_slice(rest);
        let tag = self.tracking_mac(purpose, &payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
        )
    }

    /// The issue, reader and rest of a token this key signed unchanged under `purpose`.
    fn verify_tracking(&self, purpose: &[u8], token: &str) -> Option<(i64, Option<Uuid>, Vec<u8>)> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != MAC_BYTES {
            return None;
        }
        self.tracking_mac(purpose, &payload)
            .verify_truncated_left(&tag)
            .ok()?;
        let (&flag, rest) = payload.split_first()?;
        let issue_id = i64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let rest = &rest[8..];
        let (reader, rest) = match flag {
            0 => (None, rest),
            1 => (Some(Uuid::from_slice(rest.get(..16)?).ok()?), &rest[16..]),
            _ => return None,
        };
        Some((issue_id, reader, rest.to_vec()))
    }

    /// The token of a tracked link: the issue, the reader (if any) and the address, signed.
    pub fn click_token(&self, click: &Click) -> String {
        self.tracking_token(
            CLICK_PURPOSE,
            click.issue_id,
            click.reader,
            click.url.as_bytes(),
        )
    }

    /// What a tracked link's token carries, if this key signed it unchanged.
    pub fn verify_click(&self, token: &str) -> Option<Click> {
        let (issue_id, reader, url) = self.verify_tracking(CLICK_PURPOSE, token)?;
        Some(Click {
            issue_id,
            reader,
            url: String::from_utf8(url).ok()?,
        })
    }

    /// The token of an open-tracking pixel: the issue and the reader (if any), signed under
    /// a purpose of its own, so it is never a link's token.
    pub fn open_token(&self, open: &Open) -> String {
        self.tracking_token(OPEN_PURPOSE, open.issue_id, open.reader, &[])
    }

    /// What a pixel's token carries, if this key signed it unchanged.
    pub fn verify_open(&self, token: &str) -> Option<Open> {
        let (issue_id, reader, rest) = self.verify_tracking(OPEN_PURPOSE, token)?;
        rest.is_empty().then_some(Open { issue_id, reader })
    }
}

const CLICK_PURPOSE: &[u8] = b"fortnight/click/v1:";
const OPEN_PURPOSE: &[u8] = b"fortnight/open/v1:";

/// What a link signed for one subscriber lets its holder do.
#[derive(Clone, Copy, Debug)]
enum LinkPurpose {
    Unsubscribe,
    Manage,
    ManageForm,
}

/// What a bounce address (VERP) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerpKind {
    /// A delivery of an issue (its row id).
    Delivery,
    /// A transactional email (its outbox row id).
    Outbox,
}

/// Hex characters of the MAC in a bounce token: 64 bits, enough that a forged bounce is
/// hopeless, short enough for a local part.
const VERP_MAC_HEX: usize = 16;

impl LinkKey {
    fn verp_mac(&self, kind: char, id: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"fortnight/verp/v1:");
        mac.update(&[kind as u8]);
        mac.update(&id.to_be_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .take(VERP_MAC_HEX / 2)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The signed token a bounce address carries: `d123-0123456789abcdef` for delivery 123.
    pub fn verp_token(&self, kind: VerpKind, id: i64) -> String {
        let letter = match kind {
            VerpKind::Delivery => 'd',
            VerpKind::Outbox => 'o',
        };
        format!("{letter}{id}-{}", self.verp_mac(letter, id))
    }

    /// What a bounce token names, if this key signed it (any case: some relays fold it).
    pub fn verify_verp(&self, token: &str) -> Option<(VerpKind, i64)> {
        let token = token.to_ascii_lowercase();
        let (head, mac) = token.split_once('-')?;
        let mut chars = head.chars();
        let letter = chars.next()?;
        let kind = match letter {
            'd' => VerpKind::Delivery,
            'o' => VerpKind::Outbox,
            _ => return None,
        };
        let id: i64 = chars.as_str().parse().ok().filter(|id| *id > 0)?;
        let expected = self.verp_mac(letter, id);
        bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            mac.as_bytes(),
        ))
        .then_some((kind, id))
    }

    /// What `address` names, if it is a bounce address made from `bounce_address` with a
    /// token this key signed.
    pub fn verp_named(&self, bounce_address: &str, address: &str) -> Option<(VerpKind, i64)> {
        self.verify_verp(verp_token_of(bounce_address, address)?)
    }
}

/// The envelope sender of one message: `bounces@news.example.com` becomes
/// `bounces+TOKEN@news.example.com`.
pub fn verp_address(bounce_address: &str, token: &str) -> String {
    match bounce_address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{token}@{domain}"),
        None => bounce_address.to_owned(),
    }
}

/// The token in an address made by [`verp_address`] from `bounce_address`, if it is one.
pub fn verp_token_of<'a>(bounce_address: &str, address: &'a str) -> Option<&'a str> {
    let (local, domain) = bounce_address.rsplit_once('@')?;
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (their_local, their_domain) = address.rsplit_once('@')?;
    if !their_domain.eq_ignore_ascii_case(domain) {
        return None;
    }
    let head = their_local.get(..local.len())?;
    if !head.eq_ignore_ascii_case(local) {
        return None;
    }
    let token = their_local.get(local.len()..)?;
    token.strip_prefix('+')
}

/// An API token's name, trimmed: 1 to 100 characters, no control character (PostgreSQL
/// refuses a NUL in text outright).
pub fn token_name(raw: &str) -> Result<&str, &'static str> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("Give the token a name of 1 to 100 characters, without control characters.");
    }
    Ok(name)
}

/// An API token as the editor sees it (never the token itself).
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Id.
    pub id: i64,
    /// What the editor called it.
    pub name: String,
    /// Its first characters, to recognise it.
    pub prefix: String,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last use.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounce_tokens_name_their_message_and_refuse_forgeries() {
        let key = LinkKey::generate();
        let token = key.verp_token(VerpKind::Delivery, 4242);
        assert!(
            token.starts_with("d4242-") && token.len() == 6 + VERP_MAC_HEX,
            "{token}"
        );
        assert_eq!(key.verify_verp(&token), Some((VerpKind::Delivery, 4242)));
        assert_eq!(
            key.verify_verp(&token.to_uppercase()),
            Some((VerpKind::Delivery, 4242))
        );
        let outbox = key.verp_token(VerpKind::Outbox, 7);
        assert_eq!(key.verify_verp(&outbox), Some((VerpKind::Outbox, 7)));
        // Another id with the same MAC, another key, a cut MAC, junk: refused.
        assert_eq!(key.verify_verp(&token.replace("d4242", "d4243")), None);
        assert_eq!(LinkKey::generate().verify_verp(&token), None);
        assert_eq!(key.verify_verp(&token[..token.len() - 1]), None);
        for junk in ["", "-", "d-", "x1-00", "d0-00", "d-5-00"] {
            assert_eq!(key.verify_verp(junk), None, "{junk}");
        }
        let address = verp_address("bounces@news.example.com", &token);
        assert_eq!(address, format!("bounces+{token}@news.example.com"));
        assert_eq!(
            verp_token_of("bounces@news.example.com", &address),
            Some(token.as_str())
        );
        assert_eq!(
            verp_token_of(
                "bounces@news.example.com",
                &format!("<{}>", address.to_uppercase())
            ),
            Some(token.to_uppercase().as_str())
        );
        assert_eq!(
            verp_token_of("bounces@news.example.com", "bounces@news.example.com"),
            None
        );
        assert_eq!(
            verp_token_of("bounces@news.example.com", "other+x@news.example.com"),
            None
        );
        assert_eq!(
            verp_token_of("bounces@news.example.com", "bounces+x@elsewhere.example"),
            None
        );
        assert_eq!(
            verp_token_of("bounces@news.example.com", "bounceé+x@news.example.com"),
            None
        );
        assert_eq!(
            verp_token_of("bounces@news.example.com", "b@news.example.com"),
            None
        );
    }

    #[test]
    fn confirm_tokens_are_random_and_round_trip() {
        let a = ConfirmToken::generate();
        let b = ConfirmToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(ConfirmToken::parse(a.as_str()).unwrap().hash(), a.hash());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn confirm_token_parse_rejects_other_shapes() {
        for bad in [
            "",
            "abc",
            "not base64 at all!!",
            &"A".repeat(44),
            &"A".repeat(42),
        ] {
            assert_eq!(ConfirmToken::parse(bad), Err(MalformedToken), "{bad:?}");
        }
    }

    #[test]
    fn unsubscribe_tokens_verify_under_their_key_only() {
        let key = LinkKey::generate();
        let uid = Uuid::new_v4();
        let token = key.unsubscribe_token(&uid);
        assert_eq!(key.verify_unsubscribe(&token), Ok(uid));
        assert_eq!(
            LinkKey::generate().verify_unsubscribe(&token),
            Err(MalformedToken)
        );
    }

    #[test]
    fn a_changed_unsubscribe_token_is_refused() {
        let key = LinkKey::generate();
        let token = key.unsubscribe_token(&Uuid::new_v4());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[3] ^= 1;
        assert_eq!(
            key.verify_unsubscribe(&URL_SAFE_NO_PAD.encode(bytes)),
            Err(MalformedToken)
        );
    }

    #[test]
    fn manage_and_unsubscribe_tokens_do_not_open_each_other() {
        let key = LinkKey::generate();
        let uid = Uuid::new_v4();
        let manage = key.manage_token(&uid);
        let unsubscribe = key.unsubscribe_token(&uid);
        assert_ne!(manage, unsubscribe);
        assert_eq!(key.verify_manage(&manage), Ok(uid));
        assert_eq!(key.verify_manage(&unsubscribe), Err(MalformedToken));
        assert_eq!(key.verify_unsubscribe(&manage), Err(MalformedToken));
        assert_eq!(
            LinkKey::generate().verify_manage(&manage),
            Err(MalformedToken)
        );
    }

    #[test]
    fn click_tokens_carry_the_exact_address_and_refuse_changes() {
        let key = LinkKey::generate();
        let url = "https://example.com/a?b=1&c=%20d#frag".to_owned();
        for reader in [None, Some(Uuid::new_v4())] {
            let click = Click {
                issue_id: 42,
                reader,
                url: url.clone(),
            };
            let token = key.click_token(&click);
            assert_eq!(key.verify_click(&token), Some(click));
            assert_eq!(LinkKey::generate().verify_click(&token), None);
            let (payload, tag) = token.split_once('.').unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(
                key.verify_click(&forged),
                None,
                "a changed address is refused"
            );
        }
        for junk in ["", ".", "abc", "abc.def", "a.b.c"] {
            assert_eq!(key.verify_click(junk), None, "{junk}");
            assert_eq!(key.verify_open(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_pixel_token_is_not_a_link_token_nor_the_reverse() {
        let key = LinkKey::generate();
        for reader in [None, Some(Uuid::new_v4())] {
            let open = Open {
                issue_id: 7,
                reader,
            };
            let token = key.open_token(&open);
            assert_eq!(key.verify_open(&token), Some(open));
            assert_eq!(key.verify_click(&token), None);
            assert_eq!(LinkKey::generate().verify_open(&token), None);
            let click = Click {
                issue_id: 7,
                reader,
                url: String::new(),
            };
            assert_eq!(key.verify_open(&key.click_token(&click)), None);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_never_a_valid_unsubscribe_token(raw in "\\PC{0,64}") {
            let key = LinkKey::generate();
            prop_assert!(key.verify_unsubscribe(&raw).is_err());
        }

        #[test]
        fn every_subscriber_gets_a_verifiable_token(bytes in any::<[u8; 16]>()) {
            let key = LinkKey::generate();
            let uid = Uuid::from_bytes(bytes);
            prop_assert_eq!(key.verify_unsubscribe(&key.unsubscribe_token(&uid)), Ok(uid));
        }
    }
}
