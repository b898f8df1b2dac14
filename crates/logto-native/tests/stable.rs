//! What the crate README promises stays the same across releases, checked through the public
//! surface alone: entries as earlier versions wrote them still read, a newer format is refused
//! rather than misread, and the lock a program takes is named as every other version names it.

use logto_native::{AuthError, EntryLock, StoredSession};

const ISSUER: &str = "https://t.logto.app/oidc";

/// A format 1 entry as version 0.1.0 wrote it: the raw ID token kept (its payload: iss, sub,
/// aud, exp and nonce), the default access token with its expiry.
const FORMAT_1: &str = concat!(
    r#"{"v":1,"iss":"https://t.logto.app/oidc","aud":"app1","#,
    r#""user":{"sub":"u1","name":"Alice","email":"alice@example.com","identities":["amazon"]},"#,
    r#""at":"AT-1","at_exp":1900000000,"rt":"RT-1","#,
    r#""idt":"eyJhbGciOiJFUzM4NCIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL3QubG9ndG8uYXBwL29pZGMiLCJzdWIiOiJ1MSIsImF1ZCI6ImFwcDEiLCJleHAiOjE5MDAwMDAwMDAsIm5vbmNlIjoiTi0xIn0.c2ln","#,
    r#""nonce":"N-1","scope":"openid offline_access"}"#
);

/// A format 2 entry as version 0.1.0 wrote it for an ID token too large for the keychain: the
/// claims a refresh is checked against instead of the token, no access token.
const FORMAT_2: &str = concat!(
    r#"{"v":2,"iss":"https://t.logto.app/oidc","aud":"app1","user":{"sub":"u1"},"rt":"RT-2","#,
    r#""idc":{"iss":"https://t.logto.app/oidc","sub":"u1","aud":"app1","exp":1900000000},"#,
    r#""nonce":"N-2"}"#
);

#[test]
fn an_entry_of_format_1_reads_as_it_was_written() {
    let stored = StoredSession::decode(FORMAT_1, ISSUER, "app1").expect("format 1 reads");
    assert_eq!(stored.user().sub, "u1");
    assert_eq!(stored.user().name.as_deref(), Some("Alice"));
    assert_eq!(stored.user().email.as_deref(), Some("alice@example.com"));
    assert_eq!(stored.user().identities, ["amazon"]);
    assert_eq!(stored.refresh_token(), Some("RT-1"));
    assert_eq!(stored.access_token(), Some(("AT-1", Some(1_900_000_000))));
    assert_eq!(stored.nonce(), Some("N-1"));
    assert!(stored.id_token().is_some_and(|t| t.ends_with(".c2ln")));
    assert_eq!(stored.id_claims()["exp"], 1_900_000_000);
    assert!(
        stored.id_claims().get("nonce").is_none(),
        "the nonce is not among the claims handed out"
    );
}

#[test]
fn an_entry_of_format_2_reads_with_its_kept_claims() {
    let stored = StoredSession::decode(FORMAT_2, ISSUER, "app1").expect("format 2 reads");
    assert_eq!(stored.user().sub, "u1");
    assert_eq!(stored.refresh_token(), Some("RT-2"));
    assert_eq!(stored.id_token(), None);
    assert_eq!(stored.access_token(), None);
    assert_eq!(stored.id_claims()["aud"], "app1");
    assert_eq!(stored.nonce(), Some("N-2"));
}

#[test]
fn a_newer_format_is_refused_and_another_apps_entry_is_not_read() {
    let newer = FORMAT_2.replace(r#""v":2"#, r#""v":3"#);
    assert!(matches!(
        StoredSession::decode(&newer, ISSUER, "app1"),
        Err(AuthError::NewerVersion)
    ));
    assert!(matches!(
        StoredSession::decode(FORMAT_1, ISSUER, "app2"),
        Err(AuthError::CorruptSession)
    ));
    assert!(matches!(
        StoredSession::decode(FORMAT_1, "https://other.logto.app/oidc", "app1"),
        Err(AuthError::CorruptSession)
    ));
}

#[test]
fn a_refusal_quotes_no_part_of_the_entry() {
    let broken = FORMAT_1.replace("\"rt\":\"RT-1\"", "\"rt\":7");
    let error = StoredSession::decode(&broken, ISSUER, "app1").expect_err("unreadable");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("AT-1") && !shown.contains("N-1"), "{shown}");
    }
}

#[test]
fn the_debug_of_an_entry_shows_no_token() {
    let stored = StoredSession::decode(FORMAT_1, ISSUER, "app1").expect("format 1 reads");
    let shown = format!("{stored:?}");
    for secret in ["AT-1", "RT-1", "N-1", "c2ln"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn the_lock_of_an_entry_is_named_as_every_version_names_it() {
    // Pinned: the first 12 bytes of SHA-256("logto-desktop\n<issuer>\n<app id>"), in hex. Two
    // versions that named it differently would each hold a lock the other never sees.
    let path = EntryLock::default_path("logto-desktop", ISSUER, "app1")
        .expect("this user's shared folder is private")
        .expect("this user has a shared folder (a home in the password database)");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("2d1bd317780e6fe6e94e127f.lock")
    );
    assert_eq!(
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str()),
        Some("logto-native")
    );
}
