//! DKIM signatures (RFC 6376) on every outgoing message: RSA-SHA256 and Ed25519-SHA256
//! (RFC 8463), one signature per configured key, made by the `mail-auth` crate.
//!
//! A message is signed once it is complete, as the bytes that go to the relay, so the
//! per-reader parts of an issue copy (the greeting, the unsubscribe link, `To`,
//! `Message-ID`) are covered like the rest. Both canonicalizations are `relaxed`, which
//! survives the re-folding and whitespace changes relays make.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// The header fields every signature covers. RFC 8058 requires `List-Unsubscribe` and
/// `List-Unsubscribe-Post` to be signed; a field a message lacks is signed as absent, so it
/// cannot be added on the way (`Reply-To`, `Cc` on mail without them).
pub const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    /// RSA-SHA256, 2048-bit keys: what every receiver verifies.
    Rsa,
    /// Ed25519-SHA256 (RFC 8463): small and fast; not every receiver verifies it yet, so
    /// publish it beside an RSA key.
    Ed25519,
}

enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// The configured keys, ready to sign.
pub struct Dkim {
    signers: Vec<Signer>,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("keys", &self.signers.len())
            .finish_non_exhaustive()
    }
}

/// Why a key cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct KeyError {
    path: PathBuf,
    reason: String,
}

fn signer<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

impl Dkim {
    /// Loads each `(selector, PEM file)` pair for signing as `domain`. A file holds one
    /// private key: RSA (`RSA PRIVATE KEY` or `PRIVATE KEY`, 2048 bits or more) or Ed25519
    /// (`PRIVATE KEY`, as `openssl genpkey -algorithm ed25519` writes it).
    pub fn load<'a>(
        domain: &str,
        keys: impl IntoIterator<Item = (&'a str, &'a Path)>,
    ) -> Result<Dkim, KeyError> {
        let mut signers = Vec::new();
        for (selector, path) in keys {
            let bad = |reason: String| KeyError {
                path: path.to_owned(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
            let der = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| bad(format!("no PEM private key in it ({e})")))?;
            let key = match &der {
                PrivateKeyDer::Pkcs8(pkcs8) => {
                    match Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der()) {
                        Ok(key) => Signer::Ed25519(signer(key, domain, selector)),
                        Err(_) => rsa(der.clone_key(), domain, selector).map_err(bad)?,
                    }
                }
                PrivateKeyDer::Pkcs1(_) => rsa(der.clone_key(), domain, selector).map_err(bad)?,
                _ => return Err(bad("neither an RSA nor an Ed25519 private key".into())),
            };
            signers.push(key);
        }
        Ok(Dkim { signers })
    }

    /// `raw` with a `DKIM-Signature` field per key in front.
    pub fn sign(&self, raw: &[u8]) -> Result<Vec<u8>, mail_auth::Error> {
        let mut out = Vec::with_capacity(raw.len() + 700 * self.signers.len());
        for signer in &self.signers {
            let signature = match signer {
                Signer::Rsa(s) => s.sign(raw)?,
                Signer::Ed25519(s) => s.sign(raw)?,
            };
            signature.write_header(&mut out);
        }
        out.extend_from_slice(raw);
        Ok(out)
    }
}

fn rsa(der: PrivateKeyDer<'static>, domain: &str, selector: &str) -> Result<Signer, String> {
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| {
        format!("not a usable RSA (2048 to 8192 bits) or Ed25519 private key ({e})")
    })?;
    Ok(Signer::Rsa(signer(key, domain, selector)))
}

/// A new key: its PEM text and the DNS TXT record that publishes it.
pub struct Generated {
    /// The private key, PEM (PKCS#8).
    pub pem: String,
    /// The TXT record's value, e.g. `v=DKIM1; k=rsa; p=MIIB…`.
    pub record: String,
}

/// Makes a new signing key: RSA-2048 or Ed25519.
pub fn generate(algorithm: Algorithm) -> anyhow::Result<Generated> {
    match algorithm {
        Algorithm::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
            let public = key.to_public_key().to_public_key_der()?;
            Ok(Generated {
                pem: key.to_pkcs8_pem(LineEnding::LF)?.to_string(),
                record: format!("v=DKIM1; k=rsa; p={}", BASE64.encode(public.as_bytes())),
            })
        }
        Algorithm::Ed25519 => {
            use ring::signature::KeyPair as _;
            let pkcs8 =
                ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(Generated {
                pem: pem_text("PRIVATE KEY", pkcs8.as_ref()),
                record: format!(
                    "v=DKIM1; k=ed25519; p={}",
                    BASE64.encode(pair.public_key().as_ref())
                ),
            })
        }
    }
}

fn pem_text(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A TXT record's value as a zone file writes it: quoted strings of at most 255 characters
/// (an RSA record is longer than one string may be).
pub fn zone_strings(record: &str) -> String {
    record
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Vec::new();
        for (algorithm, selector) in [(Algorithm::Rsa, "r1"), (Algorithm::Ed25519, "e1")] {
            let generated = generate(algorithm).unwrap();
            let path = dir.path().join(format!("{selector}.pem"));
            std::fs::write(&path, &generated.pem).unwrap();
            keys.push((selector, path));
        }
        let dkim = Dkim::load("example.com", keys.iter().map(|(s, p)| (*s, p.as_path()))).unwrap();
        let raw = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nHello.\r\n";
        let signed = String::from_utf8(dkim.sign(raw).unwrap()).unwrap();
        assert_eq!(signed.matches("DKIM-Signature:").count(), 2, "{signed}");
        assert!(signed.contains("a=rsa-sha256") && signed.contains("a=ed25519-sha256"));
        assert!(
            signed.contains("s=r1") && signed.contains("s=e1") && signed.contains("d=example.com")
        );
        assert!(signed.ends_with(std::str::from_utf8(raw).unwrap()));
    }

    #[test]
    fn refuses_what_is_not_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "not a key").unwrap();
        let err = Dkim::load("example.com", [("s1", path.as_path())]).unwrap_err();
        assert!(err.to_string().contains("k.pem"), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(Dkim::load("example.com", [("s1", missing.as_path())]).is_err());
    }

    #[test]
    fn long_records_are_split_into_strings() {
        let record = "x".repeat(300);
        let zone = zone_strings(&record);
        assert_eq!(
            zone,
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
    }
}
