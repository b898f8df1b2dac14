//! A sign-in is worth keeping, and a grant left alive at Logto is a liability: these tests run
//! the core against the stand-in provider and assert what the keychain holds and what the
//! provider was told when an entry cannot be read, belongs to someone else or to a newer
//! version, when a sign-in is asked for while signed in, and when a sign-in's tokens are not
//! kept (cancelled during the exchange, or the keychain refused them).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::stand::{sign_in, Stand, StandState, APP};
use crate::session::tests::sample;
use crate::store::{MemoryStore, TokenStore};
use crate::{AuthService, SignInMethod};

const API: &str = "https://api.example.test";

fn held(store: &MemoryStore) -> Option<String> {
    store.load().expect("memory store")
}

fn put(store: &MemoryStore, text: &str) {
    store.save(text).expect("memory store");
}

/// An entry of this tenant for another user.
fn someone_else(stand: &Stand) -> String {
    let mut session = sample();
    session.issuer = stand.state.issuer.clone();
    session.client_id = APP.into();
    session.user.sub = "someone-else".into();
    session.encode().expect("fits")
}

async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn an_entry_from_a_newer_version_is_left_alone() {
    let stand = Stand::start();
    let (service, store) = stand.service();
    let mut entry: serde_json::Value = serde_json::from_str(&someone_else(&stand)).expect("json");
    entry["v"] = json!(3);
    let text = entry.to_string();
    put(&store, &text);
    for err in [
        service.peek().await.expect_err("newer"),
        service.restore().await.expect_err("newer"),
    ] {
        assert_eq!(err.code(), "keychain.newer_version", "{err}");
    }
    assert_eq!(
        held(&store).as_deref(),
        Some(text.as_str()),
        "never deleted"
    );
    assert!(!service.is_authenticated().await);
}

#[tokio::test]
async fn a_look_at_an_unreadable_entry_changes_nothing_and_restore_removes_it() {
    let stand = Stand::start();
    let (service, store) = stand.service();
    put(&store, "{not a session");
    let err = service.peek().await.expect_err("unreadable");
    assert_eq!(err.code(), "keychain.unreadable");
    assert!(!err.to_string().contains("removed"), "{err}");
    assert_eq!(
        held(&store).as_deref(),
        Some("{not a session"),
        "peek is read-only"
    );
    let err = service.restore().await.expect_err("corrupt");
    assert_eq!(err.code(), "keychain.corrupt");
    assert_eq!(held(&store), None, "garbage is removed, with a notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_finds_the_entry_changed_ends_only_this_session() {
    for case in ["another user", "garbage", "a newer version", "gone"] {
        let stand = Stand::start();
        stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
        let (service, store) = stand.service();
        sign_in(&service).await.expect("signed in");
        let other = match case {
            "another user" => Some(someone_else(&stand)),
            "garbage" => Some("{not a session".to_string()),
            "a newer version" => Some(r#"{"v":9,"anything":true}"#.to_string()),
            _ => None,
        };
        match &other {
            Some(text) => put(&store, text),
            None => store.delete().expect("memory"),
        }
        let err = service
            .get_access_token(Some(API), None)
            .await
            .expect_err(case);
        assert_eq!(err.code(), "session.ended", "{case}: {err}");
        assert!(!service.is_authenticated().await, "{case}");
        assert_eq!(held(&store), other, "{case}: the entry is its writer's");
        assert_eq!(stand.count("POST /oidc/token"), 1, "{case}: no refresh");
        assert!(stand.revoked().is_empty(), "{case}: nothing revoked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_while_signed_in_is_refused_before_anything_happens() {
    let stand = Stand::start();
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    let (service, store) = stand.service();
    sign_in(&service).await.expect("signed in");
    let before = held(&store);
    let requests = stand.requests().len();
    let err = sign_in(&service).await.expect_err("already signed in");
    assert_eq!(err.code(), "sign_in.already_signed_in");
    assert_eq!(held(&store), before, "the session is untouched");
    assert_eq!(stand.requests().len(), requests, "Logto was asked nothing");
    assert!(service.is_authenticated().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keychain_that_cannot_save_is_reported_before_the_browser_opens() {
    let stand = Stand::start();
    let (service, store) = stand.service();
    *store.fail.lock().expect("lock") = true;
    let err = sign_in(&service).await.expect_err("no keychain");
    assert_eq!(err.code(), "keychain.unavailable");
    assert!(
        stand.state.last_nonce().is_none(),
        "the browser was never opened"
    );
    assert!(stand.requests().iter().all(|r| !r.starts_with("POST")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_cannot_be_saved_are_revoked() {
    let stand = Stand::start();
    let (service, store): (Arc<AuthService>, Arc<MemoryStore>) = stand.service();
    // The keychain goes away while the person is in the browser.
    let failing = store.clone();
    stand.on_token(move |c| {
        *failing.fail.lock().expect("lock") = true;
        c.stand.signed_answer(|_| {}, "RT-1")
    });
    let err = sign_in(&service).await.expect_err("save fails");
    assert_eq!(err.code(), "keychain.unavailable");
    assert_eq!(stand.revoked(), ["RT-1"], "the unsaved grant is revoked");
    assert!(!service.is_authenticated().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_cancelled_during_the_exchange_revokes_what_the_exchange_brings() {
    let stand = Stand::start();
    stand.on_token(|c| {
        // Slow enough for the cancel to land while the exchange is in flight.
        std::thread::sleep(Duration::from_millis(1500));
        c.stand.signed_answer(|_| {}, "RT-1")
    });
    let (service, store) = stand.service();
    let task = {
        let service = service.clone();
        tokio::spawn(async move { service.sign_in(SignInMethod::Logto, |_| {}).await })
    };
    until("the token request", || {
        stand.requests().iter().any(|r| r == "POST /oidc/token")
    })
    .await;
    assert!(service.cancel_sign_in());
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the sign-in ends")
        .expect("no panic");
    assert_eq!(result.expect_err("cancelled").code(), "sign_in.cancelled");
    until("the revocation", || stand.revoked() == ["RT-1"]).await;
    assert_eq!(held(&store), None);
    assert!(!service.is_authenticated().await);
}

#[test]
fn waiting_for_the_browser_never_prints_its_url() {
    let url = url::Url::parse(
        "http://127.0.0.1:1/oidc/auth?state=STATE-secret&nonce=NONCE-secret&code_challenge=CH-secret",
    )
    .expect("url");
    let waiting = crate::SignInWaiting {
        url,
        deadline: 42,
        browser_error: Some("no browser".into()),
    };
    let text = format!("{waiting:?}");
    for secret in ["STATE-secret", "NONCE-secret", "CH-secret", "127.0.0.1"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("[redacted]") && text.contains("42"), "{text}");
}

/// The page id the tab was shown (`ok`, `not-completed`, `return`, ...), once it was shown one.
async fn tab_page(stand: &Stand) -> String {
    until("the tab's answer", || stand.tab().is_some()).await;
    let page = stand.tab().unwrap_or_default();
    let id = page
        .split("<main id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .or_else(|| {
            page.split(" id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
        })
        .unwrap_or_default()
        .to_string();
    assert!(!page.contains("code-1"), "the code never reaches the page");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tab_says_signed_in_only_once_the_session_is_stored() {
    let stand = Stand::start();
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    let (service, store) = stand.service();
    sign_in(&service).await.expect("signed in");
    assert_eq!(tab_page(&stand).await, "ok");
    assert!(held(&store).is_some());

    // The ID token fails its checks: the tab must not say "signed in".
    let stand = Stand::start();
    stand.on_token(|c| c.stand.signed_answer(|c| c["aud"] = json!("other"), "RT-1"));
    let (service, _store) = stand.service();
    sign_in(&service).await.expect_err("refused");
    assert_eq!(tab_page(&stand).await, "not-completed");

    // The keychain refuses the session after the exchange: nor here.
    let stand = Stand::start();
    let (service, store) = stand.service();
    let failing = store.clone();
    stand.on_token(move |c| {
        *failing.fail.lock().expect("lock") = true;
        c.stand.signed_answer(|_| {}, "RT-1")
    });
    sign_in(&service).await.expect_err("save fails");
    assert_eq!(tab_page(&stand).await, "not-completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_finish_gives_the_tab_a_neutral_page_after_8_seconds() {
    // SECURITY.md: "[if the outcome is not known] within 8 seconds the tab is told, neutrally,
    // to return to the app". The token answer takes longer than that.
    const BOUND: Duration = Duration::from_secs(8);
    let stand = Stand::start();
    let slow = BOUND + Duration::from_millis(1500);
    stand.on_token(move |c| {
        std::thread::sleep(slow);
        c.stand.signed_answer(|_| {}, "RT-1")
    });
    let (service, _store) = stand.service();
    let task = {
        let service = service.clone();
        tokio::spawn(async move { service.sign_in(SignInMethod::Logto, |_| {}).await })
    };
    assert_eq!(tab_page(&stand).await, "return");
    assert!(
        !task.is_finished(),
        "the tab heard before the sign-in ended"
    );
    // Told at the bound: not later (the tab would hang), and not sooner (a sign-in that ends
    // within the bound gets the page that says how it went).
    let waited = StandState::lock(&stand.state.tab_waited).expect("measured");
    assert!(
        waited >= BOUND && waited < BOUND + Duration::from_millis(1000),
        "the tab waited {waited:?}"
    );
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("ends")
        .expect("no panic")
        .expect("the sign-in still completes");
}

/// Signed in on `stand` (refresh token `RT-1`), remembering signed-out sessions at `marks`, with
/// a keychain that from now on will not delete the entry.
async fn signed_in_with_a_keychain_that_will_not_delete(
    stand: &Stand,
    marks: &std::path::Path,
) -> (Arc<AuthService>, Arc<MemoryStore>) {
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    let (service, store) =
        stand.service_on(Arc::new(MemoryStore::default()), Some(marks.to_path_buf()));
    sign_in(&service).await.expect("signed in");
    *store.fail_delete.lock().expect("lock") = true;
    (service, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keychain_that_will_not_let_go_neither_stops_sign_out_nor_brings_the_session_back() {
    let stand = Stand::start();
    let marks = tempfile::tempdir().expect("a folder");
    let path = marks.path().join("signed-out");
    let (service, store) = signed_in_with_a_keychain_that_will_not_delete(&stand, &path).await;

    let report = service.sign_out().await.expect("sign-out goes on");
    assert!(report.revoked, "Logto was told");
    assert_eq!(stand.revoked(), ["RT-1"]);
    assert!(
        stand.opened().iter().any(|u| u.contains("/session/end?")),
        "the end-session page was opened: {:?}",
        stand.opened()
    );
    assert!(report.browser_session_ended);
    let warning = report.warning.expect("a warning");
    assert!(warning.contains("will not be used again"), "{warning}");
    assert!(held(&store).is_some(), "the entry is still there");
    let marked = std::fs::read_to_string(&path).expect("the marks file");
    assert!(!marked.contains("RT-1"), "a hash, never the token");

    // The next start does not pretend: it neither shows nor keeps the revoked session.
    let (next, _) = stand.service_on(store.clone(), Some(path.clone()));
    assert_eq!(next.peek().await.expect("peek"), None);
    assert_eq!(next.restore().await.expect("restore"), None);
    assert!(!next.is_authenticated().await);
    assert!(held(&store).is_some(), "still stuck");
    // Once the keychain lets go, the entry and its mark are gone.
    *store.fail_delete.lock().expect("lock") = false;
    let (later, _) = stand.service_on(store.clone(), Some(path.clone()));
    assert_eq!(later.restore().await.expect("restore"), None);
    assert_eq!(held(&store), None);
    assert!(!path.exists(), "the mark went with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_prefetch_is_not_kept_and_the_sign_in_fetches_again() {
    let stand = Stand::start();
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    let (service, _store) = stand.service();
    *stand.state.jwks_status.lock().expect("lock") = 500;
    let err = service.prefetch().await.expect_err("the keys fail");
    assert_eq!(err.code(), "network.unreachable");
    *stand.state.jwks_status.lock().expect("lock") = 200;
    sign_in(&service)
        .await
        .expect("the sign-in fetches discovery again");
    assert_eq!(stand.count("GET /oidc/.well-known/openid-configuration"), 2);
    // Fetched once, kept: a second prefetch asks nothing.
    service.prefetch().await.expect("cached");
    assert_eq!(stand.count("GET /oidc/.well-known/openid-configuration"), 2);
}

/// A sign-in answer whose access token is stale at once (it lives 0 s), so that the next call
/// for a token refreshes without the test waiting on the wall clock.
fn short_lived(c: &super::stand::TokenCall<'_>, refresh_token: &str) -> super::stand::Answer {
    let (status, body) = c.stand.signed_answer(|_| {}, refresh_token);
    let mut body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    body["expires_in"] = json!(0);
    (status, body.to_string().into_bytes())
}

/// A refresh whose rotated token the keychain would not take: `flush` writes it once the keychain
/// answers, so a short-lived program can keep the grant before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_the_keychain_refused_is_written_by_flush() {
    let stand = Stand::start();
    stand.on_token(|c| short_lived(c, "RT-1"));
    let store = Arc::new(MemoryStore::default());
    let service = stand.service_with(store.clone(), |s| s);
    sign_in(&service).await.expect("signed in");
    service.flush().await.expect("nothing to write is fine");

    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-2"));
    // Readable for the re-read before the refresh, refusing the write after it.
    *store.fail_save.lock().expect("memory store") = true;
    let error = service
        .get_access_token(None, None)
        .await
        .expect_err("the keychain refused");
    assert_eq!(error.code(), "keychain.unavailable");
    assert!(service.flush().await.is_err(), "still refused");
    *store.fail_save.lock().expect("memory store") = false;
    service.flush().await.expect("written");
    let held = held(&store).expect("an entry");
    assert!(
        held.contains("RT-2"),
        "the rotated token is in the keychain"
    );
    assert_eq!(stand.count("POST /oidc/token"), 2);
}

/// Two programs on one keychain entry: the one that refreshed second finds the first one's
/// rotated refresh token and its fresh access token in the entry, and asks Logto nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_another_program_fetched_is_taken_from_the_entry_without_a_refresh() {
    let stand = Stand::start();
    stand.on_token(|c| short_lived(c, "RT-1"));
    let store = Arc::new(MemoryStore::default());
    let first = stand.service_with(store.clone(), |s| s);
    sign_in(&first).await.expect("signed in");

    let second = stand.service_with(store.clone(), |s| s);
    second.restore().await.expect("restored");
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-2"));
    let fetched = second
        .get_access_token(None, None)
        .await
        .expect("refreshed");
    assert_eq!(stand.count("POST /oidc/token"), 2);

    // The stand gives each answer its own access token: the one taken is the second
    // program's, not the first's stale one.
    assert_eq!(
        Some(fetched.secret().to_string()),
        stand.last_access_token()
    );
    let taken = first.get_access_token(None, None).await.expect("a token");
    assert_eq!(taken.secret(), fetched.secret());
    assert_eq!(stand.count("POST /oidc/token"), 2, "no second refresh");
}

/// Shared with other programs (an entry lock), a keychain that cannot be read stops a refresh:
/// the refresh token in memory may be one another program has rotated. Nothing is lost; the
/// next call, with the keychain back, refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_unreadable_the_keychain_stops_a_refresh_and_loses_nothing() {
    let stand = Stand::start();
    stand.on_token(|c| short_lived(c, "RT-1"));
    let dir = tempfile::tempdir().expect("a folder");
    let lock = crate::lock::EntryLock::new(dir.path().join("entry.lock"));
    let store = Arc::new(MemoryStore::default());
    let service = stand.service_with(store.clone(), |s| s.with_entry_lock(lock));
    sign_in(&service).await.expect("signed in");

    *store.fail.lock().expect("memory store") = true;
    let error = service
        .get_access_token(None, None)
        .await
        .expect_err("no refresh");
    assert_eq!(error.code(), "keychain.unavailable");
    assert_eq!(stand.count("POST /oidc/token"), 1, "Logto was not asked");
    assert!(service.is_authenticated().await, "the session is kept");

    *store.fail.lock().expect("memory store") = false;
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-2"));
    service
        .get_access_token(None, None)
        .await
        .expect("refreshed once the keychain answers");
    assert_eq!(stand.count("POST /oidc/token"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_sign_out_that_can_neither_tell_logto_nor_empty_the_keychain_says_both_and_revokes_later(
) {
    let stand = Stand::start();
    let marks = tempfile::tempdir().expect("a folder");
    let path = marks.path().join("signed-out");
    let (service, store) = signed_in_with_a_keychain_that_will_not_delete(&stand, &path).await;
    *stand.state.revocation_status.lock().expect("lock") = 503;

    let report = service.sign_out().await.expect("sign-out goes on");
    assert!(!report.revoked);
    let warning = report.warning.expect("a warning");
    assert!(warning.contains("Logto could not be told"), "{warning}");
    assert!(
        warning.contains("could not be removed from the keychain"),
        "{warning}"
    );
    assert!(warning.contains("when the app next starts"), "{warning}");
    assert!(held(&store).is_some(), "the entry is still there");

    // The next start shows no session, and while Logto is still down keeps the entry (never
    // used) for the start after.
    let (next, _) = stand.service_on(store.clone(), Some(path.clone()));
    assert_eq!(next.restore().await.expect("restore"), None);
    assert!(!next.is_authenticated().await);
    *store.fail_delete.lock().expect("lock") = false;
    let err = next.prefetch().await.expect_err("Logto still down");
    assert_eq!(err.code(), "network.unreachable", "{err}");
    assert!(held(&store).is_some(), "kept until Logto is told");
    assert!(stand.revoked().is_empty());

    // Once Logto answers, the grant is revoked, then the entry and its mark are gone.
    *stand.state.revocation_status.lock().expect("lock") = 200;
    let (later, _) = stand.service_on(store.clone(), Some(path.clone()));
    assert_eq!(later.restore().await.expect("restore"), None);
    later.prefetch().await.expect("told");
    assert_eq!(stand.revoked(), ["RT-1"]);
    assert_eq!(held(&store), None);
    assert!(!path.exists(), "the mark went with it");
    // And nothing more at the start after.
    let (last, _) = stand.service_on(store.clone(), Some(path.clone()));
    assert_eq!(last.restore().await.expect("restore"), None);
    last.prefetch().await.expect("nothing to do");
    assert_eq!(stand.revoked(), ["RT-1"]);
}

/// A keychain in which another program stores a sign-in right after this one reads the entry.
struct Racing {
    inner: MemoryStore,
    then: std::sync::Mutex<Option<String>>,
}

impl TokenStore for Racing {
    fn load(&self) -> Result<Option<String>, crate::AuthError> {
        let read = self.inner.load();
        if let Some(next) = self.then.lock().expect("lock").take() {
            self.inner.save(&next)?;
        }
        read
    }
    fn save(&self, secret: &str) -> Result<(), crate::AuthError> {
        self.inner.save(secret)
    }
    fn delete(&self) -> Result<(), crate::AuthError> {
        self.inner.delete()
    }
}

struct NoBrowser;
impl crate::Browser for NoBrowser {
    fn open(&self, _: &url::Url) -> Result<(), String> {
        Err("no browser here".into())
    }
}

#[tokio::test]
async fn issue_16_restore_never_removes_a_sign_in_stored_after_it_read_the_entry() {
    let stand = Stand::start();
    let marks = tempfile::tempdir().expect("a folder");
    let path = marks.path().join("signed-out");
    let mut theirs = sample();
    theirs.issuer = stand.state.issuer.clone();
    theirs.client_id = APP.into();
    theirs.user.sub = "their-user".into();
    theirs.tokens.refresh_token = Some(oauth2::RefreshToken::new("RT-theirs".into()));
    let theirs = theirs.encode().expect("fits");
    let mut signed_out = sample();
    signed_out.issuer = stand.state.issuer.clone();
    signed_out.client_id = APP.into();
    let rt = signed_out
        .tokens
        .refresh_token
        .as_ref()
        .map(|t| t.secret().clone())
        .expect("a refresh token");
    crate::store::SignedOutMarks::new(path.clone())
        .add(&rt)
        .expect("marked");
    for (name, first) in [
        ("an unreadable entry", "not a session".to_string()),
        (
            "a session signed out earlier",
            signed_out.encode().expect("fits"),
        ),
    ] {
        let store = Arc::new(Racing {
            inner: MemoryStore::default(),
            then: std::sync::Mutex::new(Some(theirs.clone())),
        });
        store.inner.save(&first).expect("memory");
        let service = AuthService::new(stand.config(), store.clone(), Arc::new(NoBrowser))
            .expect("service")
            .with_signed_out_marks(crate::store::SignedOutMarks::new(path.clone()));
        let user = service.restore().await.expect(name);
        assert_eq!(
            user.map(|u| u.sub).as_deref(),
            Some("their-user"),
            "{name}: the other program's sign-in is the one restored"
        );
        assert_eq!(
            store.inner.load().expect("memory").as_deref(),
            Some(theirs.as_str()),
            "{name}: and it is still in the keychain"
        );
    }
}

/// The status `service` shows within `bound`, once `matches` says it is the one awaited.
async fn status_within(
    service: &AuthService,
    bound: Duration,
    matches: impl Fn(&crate::Status) -> bool,
) -> crate::Status {
    let mut status = service.subscribe();
    let seen = tokio::time::timeout(bound, async {
        status.wait_for(|s| matches(s)).await.map(|s| s.clone())
    })
    .await;
    match seen {
        Ok(Ok(seen)) => seen,
        _ => panic!(
            "not within {bound:?}; the status is {:?}",
            *service.subscribe().borrow()
        ),
    }
}

/// Issue 17: two programs on one entry, the window following the other. A sign-out, a sign-in
/// and a refresh made by the other program reach the window's status within a second (the
/// promise), with no request to Logto from the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_what_another_program_does_reaches_the_status_within_a_second() {
    use crate::{SignedOutWhy, Status};
    const WITHIN: Duration = Duration::from_secs(1);
    let stand = Stand::start();
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    let dir = tempfile::tempdir().expect("a folder");
    let lock = || crate::lock::EntryLock::new(dir.path().join("entry.lock"));
    let store = Arc::new(MemoryStore::default());
    let window = stand.service_with(store.clone(), |s| s.with_entry_lock(lock()));
    let script = stand.service_with(store.clone(), |s| s.with_entry_lock(lock()));
    window.follow_other_programs().expect("following");
    window.restore().await.expect("restored");
    assert!(matches!(
        *window.subscribe().borrow(),
        Status::SignedOut(None)
    ));

    // A sign-in elsewhere: the window shows its user, and holds its session.
    sign_in(&script).await.expect("signed in");
    let shown = status_within(&window, WITHIN, |s| matches!(s, Status::SignedIn(_))).await;
    let Status::SignedIn(user) = shown else {
        unreachable!()
    };
    assert_eq!(Some(user), script.current_user().await);
    assert!(window.is_authenticated().await);

    // A refresh elsewhere rotates the refresh token: the window's own next refresh (an API's
    // token is never kept in the entry) uses the rotated one, never the used one.
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-rotated"));
    script
        .get_access_token(Some(API), None)
        .await
        .expect("a token");
    let used = Arc::new(std::sync::Mutex::new(None));
    let seen = used.clone();
    stand.on_token(move |c| {
        *seen.lock().expect("seen") = c.param("refresh_token").map(str::to_string);
        c.stand.signed_answer(|_| {}, "RT-3")
    });
    window
        .get_access_token(Some(API), None)
        .await
        .expect("a token");
    assert_eq!(
        used.lock().expect("used").as_deref(),
        Some("RT-rotated"),
        "the window refreshed with the refresh token the other program kept"
    );

    // A sign-out elsewhere: signed out here too, saying where it happened; nothing revoked twice.
    let requests = stand.requests().len();
    script.sign_out().await.expect("signed out");
    let requests_of_the_sign_out = stand.requests().len() - requests;
    let shown = status_within(&window, WITHIN, |s| matches!(s, Status::SignedOut(Some(_)))).await;
    assert!(
        matches!(shown, Status::SignedOut(Some(SignedOutWhy::Elsewhere))),
        "{shown:?}"
    );
    assert!(!window.is_authenticated().await);
    assert_eq!(
        stand.requests().len() - requests,
        requests_of_the_sign_out,
        "the window made no request of its own"
    );
}

/// Issue 17: when another program finds that Logto ended the sign-in (its refresh is refused
/// with `invalid_grant`), the window following it shows that Logto ended it, within a second, not
/// just that someone signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_grant_another_program_found_ended_shows_as_ended() {
    use crate::{SignedOutWhy, Status};
    let stand = Stand::start();
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    let dir = tempfile::tempdir().expect("a folder");
    let lock = || crate::lock::EntryLock::new(dir.path().join("entry.lock"));
    let store = Arc::new(MemoryStore::default());
    let window = stand.service_with(store.clone(), |s| s.with_entry_lock(lock()));
    let script = stand.service_with(store.clone(), |s| s.with_entry_lock(lock()));
    window.follow_other_programs().expect("following");
    sign_in(&script).await.expect("signed in");
    status_within(&window, Duration::from_secs(1), |s| {
        matches!(s, Status::SignedIn(_))
    })
    .await;

    stand.on_token(|_| {
        (
            400,
            br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#.to_vec(),
        )
    });
    let err = script
        .get_access_token(Some(API), None)
        .await
        .expect_err("ended");
    assert_eq!(err.code(), "session.ended");
    let shown = status_within(&window, Duration::from_secs(1), |s| {
        matches!(s, Status::SignedOut(Some(_)))
    })
    .await;
    let Status::SignedOut(Some(SignedOutWhy::Ended(e))) = shown else {
        panic!("not shown as ended: {shown:?}")
    };
    assert_eq!(e.code(), "session.ended");
    assert!(!window.is_authenticated().await);
}
