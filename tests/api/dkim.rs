//! DKIM: keys made by `fortnight dkim generate`, every outgoing message signed with an RSA and
//! an Ed25519 key, and each signature checked by dkimpy, an implementation independent of the
//! server's, against the DNS records the command printed.
//!
//! dkimpy (with PyNaCl for Ed25519) comes from `.ci/requirements-verifiers.txt`; `.ci/run` installs
//! it and names its Python in `DKIM_VERIFIER_PYTHON`. Without it the tests skip, saying so,
//! unless `DKIM_TEST_REQUIRED=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;

use crate::both_databases;
use crate::delivery::{start_send_of, wait_status};
use crate::helpers::{Backend, CapturedMail, spawn_app_with};

both_databases!(every_message_is_signed_and_verifies_independently,);

const DOMAIN: &str = "news.example.com";

/// The Python that has dkimpy, or `None` (after saying so) when the tests may skip.
fn verifier() -> Option<String> {
    let python = std::env::var("DKIM_VERIFIER_PYTHON").unwrap_or_else(|_| "python3".into());
    let works = Command::new(&python)
        .args(["-c", "import dkim, nacl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    assert!(
        std::env::var("DKIM_TEST_REQUIRED").as_deref() != Ok("1"),
        "DKIM_TEST_REQUIRED=1 but {python} cannot import dkimpy and PyNaCl: \
         pip install -r .ci/requirements-verifiers.txt, or set DKIM_VERIFIER_PYTHON"
    );
    eprintln!(
        "SKIPPED: the DKIM verification tests need dkimpy and PyNaCl ({python} cannot import them)"
    );
    None
}

/// Runs `fortnight dkim generate` in `dir`; the key file and the `(name, TXT value)` it printed.
fn generate(dir: &Path, selector: &str, algorithm: &str) -> (PathBuf, (String, String)) {
    let output = Command::new(env!("CARGO_BIN_EXE_fortnight"))
        .args([
            "dkim",
            "generate",
            "--selector",
            selector,
            "--algorithm",
            algorithm,
        ])
        .current_dir(dir)
        .env("FORTNIGHT_DKIM_DOMAIN", DOMAIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // `s1._domainkey.news.example.com. IN TXT "v=DKIM1; k=rsa; p=…" "…"`
    let (name, rest) = stdout.trim().split_once(" IN TXT ").unwrap();
    let value: String = rest
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(name, format!("{selector}._domainkey.{DOMAIN}."));
    let path = dir.join(format!("dkim-{selector}.pem"));
    (path, (name.to_owned(), value))
}

/// dkimpy's verdict on a message: whether every signature verified, and its report lines.
fn verify(python: &str, raw: &[u8], records: &[(String, String)]) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), raw).unwrap();
    let output = Command::new(python)
        .arg(format!(
            "{}/tests/fixtures/dkim/verify.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(file.path())
        .args(
            records
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        )
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn assert_signed(python: &str, mail: &CapturedMail, records: &[(String, String)]) {
    let (ok, report) = verify(python, &mail.raw, records);
    assert!(
        ok,
        "to {:?}: {report}\n{}",
        mail.to,
        String::from_utf8_lossy(&mail.raw)
    );
    assert!(report.contains("ok a=rsa-sha256 s=r2026"), "{report}");
    assert!(report.contains("ok a=ed25519-sha256 s=e2026"), "{report}");
}

async fn every_message_is_signed_and_verifies_independently(backend: Backend) {
    let Some(python) = verifier() else { return };
    let keys = tempfile::tempdir().unwrap();
    let (rsa_key, rsa_record) = generate(keys.path(), "r2026", "rsa");
    let (ed_key, ed_record) = generate(keys.path(), "e2026", "ed25519");
    let records = vec![rsa_record, ed_record];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&rsa_key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is its owner's only: {mode:o}"
        );
    }
    // The command never overwrites a key.
    let again = Command::new(env!("CARGO_BIN_EXE_fortnight"))
        .args(["dkim", "generate", "--selector", "r2026"])
        .current_dir(keys.path())
        .output()
        .unwrap();
    assert!(!again.status.success());

    let app = spawn_app_with(backend, Clock::System, |c| {
        c.dkim_selector = vec!["r2026".into(), "e2026".into()];
        c.dkim_private_key = vec![rsa_key.clone(), ed_key.clone()];
        c.dkim_domain = Some(DOMAIN.into());
        c.list_unsubscribe_mailto = Some("unsubscribe@news.example.com".into());
        c.bounce_address = Some("bounces@news.example.com".into());
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("signed", 3).await;
    // Lines that SMTP dot-stuffs, a long line, and text spliced per reader (the greeting and
    // the unsubscribe link).
    let body = ".starts with a dot\n\n..two dots\n\n.\n\nA long line: ".to_owned()
        + &"word ".repeat(60)
        + "\n\n## Links\n\n- [A link](https://example.org/a?x=1&y=2) commentary.\n";
    let id = start_send_of(&app, &token, "Signed, sealed, délivré", &body).await;
    wait_status(&app, id, IssueStatus::Sent, 30).await;
    let copies: Vec<CapturedMail> = app
        .wait_for_mail(3)
        .await
        .into_iter()
        .filter(|m| m.to[0].starts_with("signed"))
        .collect();
    assert_eq!(copies.len(), 3);
    for copy in &copies {
        let raw = String::from_utf8_lossy(&copy.raw);
        assert!(
            raw.contains("\n.starts with a dot") || raw.contains("\n=2Estarts"),
            "{raw}"
        );
        assert_signed(&python, copy, &records);
        let signature = copy.header("DKIM-Signature").unwrap();
        let signed: String = signature.split_whitespace().collect();
        let h = signed
            .split(';')
            .find_map(|tag| tag.strip_prefix("h="))
            .unwrap()
            .to_ascii_lowercase();
        for name in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(h.split(':').any(|n| n == name), "{name} not signed: h={h}");
        }
    }
    assert_ne!(
        copies[0].text(),
        copies[1].text(),
        "each copy is the reader's own"
    );

    // The admin names the records that must be published.
    app.sign_in().await;
    let page = app.get("/admin/deliverability").await.text().await.unwrap();
    for selector in ["r2026", "e2026"] {
        assert!(
            page.contains(&format!("<code>{selector}._domainkey.{DOMAIN}</code>")),
            "{page}"
        );
    }

    // Transactional mail is signed too: a confirmation.
    app.sign_up("newcomer@example.org").await;
    let all = app.wait_for_mail(copies.len() + 2).await;
    let confirmation = all
        .iter()
        .find(|m| m.to[0] == "newcomer@example.org")
        .expect("a confirmation");
    assert_signed(&python, confirmation, &records);

    // The verifier can fail: a changed subject, a changed body, an unknown key.
    let copy = &copies[0];
    let raw = String::from_utf8(copy.raw.clone()).unwrap();
    let subject = raw.replacen("Subject: ", "Subject: Re: ", 1);
    assert!(!verify(&python, subject.as_bytes(), &records).0);
    let body = raw.replacen("commentary", "c0mmentary", 1);
    assert_ne!(body, raw);
    assert!(!verify(&python, body.as_bytes(), &records).0);
    let other = tempfile::tempdir().unwrap();
    let (_, wrong) = generate(other.path(), "r2026", "rsa");
    assert!(!verify(&python, raw.as_bytes(), &[wrong, records[1].clone()]).0);
    drop(app);
}

#[test]
fn a_selector_without_a_key_is_a_configuration_error() {
    let config = fortnight::config::Config {
        dkim_selector: vec!["s1".into()],
        ..Default::default()
    };
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("dkim_selector"), "{error}");
}
