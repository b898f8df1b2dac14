//! Tokens that stay valid and safe, against the provider (with Logto's rotation and 3-second
//! reuse window): refresh on expiry, one refresh at a time across many callers and resources, a
//! stolen refresh token, a provider that fails or is down, a restart mid-session, organization
//! tokens, and signing keys that Logto rotates under a running app.

use logto_desktop::shell::KEYCHAIN_SERVICE;
use std::sync::Arc;
use std::time::Duration;

use logto_desktop::auth::{AuthError, AuthService, CachedToken, Config, KeyringStore};

use crate::core_flow::Harness;
use crate::support::chrome::{channel_browser, Chrome};
use crate::support::idp::Idp;
use crate::support::nothing_listens_on;

const RESOURCES: [&str; 3] = [
    "https://one.api.test",
    "https://two.api.test",
    "https://three.api.test",
];

/// Signs alice in against a provider started with `env`, with the config tweaked by `tweak`.
async fn signed_in(env: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> Harness {
    let mut h = Harness::with_config(Idp::start_with(env), tweak);
    let chrome = Chrome::start().await;
    h.sign_in_alice(&chrome).await;
    chrome.stop().await;
    h
}

#[derive(Debug, serde::Deserialize)]
struct Stats {
    refresh_requests: u32,
    max_in_flight: u32,
    jwks_requests: u32,
}

async fn stats(h: &Harness) -> Stats {
    crate::support::http()
        .get(format!("{}/test/stats", h.idp.info.endpoint))
        .send()
        .await
        .expect("provider stats")
        .json()
        .await
        .expect("stats JSON")
}

fn refresh_secret(h: &Harness) -> String {
    h.stored()
        .and_then(|s| s.refresh_token().map(str::to_string))
        .expect("a stored refresh token")
}

fn audience(token: &CachedToken) -> serde_json::Value {
    crate::support::jwt_claims(token.secret())
        .map(|c| c["aud"].clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn an_access_token_near_expiry_is_refreshed_and_the_rotated_refresh_token_stored() {
    // 12 s lifetime: fresh for 9 s (room for a slow machine between the sign-in and the first
    // call), then inside its margin (a quarter of its life: 3 s).
    let h = signed_in(
        &[("IDP_ACCESS_TOKEN_TTL", "12"), ("IDP_TEST_HOOKS", "1")],
        |_| {},
    )
    .await;
    let first_refresh = refresh_secret(&h);
    let first = h
        .service
        .get_access_token(None, None)
        .await
        .expect("the cached token");
    assert_eq!(
        stats(&h).await.refresh_requests,
        0,
        "a fresh token needs no refresh"
    );

    // Wait until the token is within the margin: no longer, so the test stays short.
    let expires_at = first.expires_at().expect("the token has an expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // README: refreshed a quarter of its lifetime before it expires when that is under 60 s.
    let margin = 12 / 4;
    let wait = (expires_at - margin + 1).saturating_sub(now);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let second = h
        .service
        .get_access_token(None, None)
        .await
        .expect("a refreshed token");
    assert_ne!(first.secret(), second.secret());
    assert_eq!(stats(&h).await.refresh_requests, 1);
    let stored = h.stored().expect("still stored");
    assert_ne!(
        refresh_secret(&h),
        first_refresh,
        "the rotated refresh token is in the keychain"
    );
    assert_eq!(
        stored.access_token().map(|(token, _)| token),
        Some(second.secret())
    );

    // The refreshed ID token was validated and is the one now kept.
    let claims = h.service.get_id_token_claims().await.expect("claims");
    assert_eq!(claims["sub"].as_str(), Some(stored.user().sub.as_str()));
    assert!(claims.get("nonce").is_none(), "the nonce is not handed out");
    let info = h
        .service
        .fetch_user_info()
        .await
        .expect("userinfo with the new token");
    assert_eq!(info["email"], h.idp.alice().email.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_callers_across_three_resources_cause_one_refresh_at_a_time() {
    let resources = RESOURCES.join(",");
    let h = signed_in(
        &[("IDP_RESOURCES", &resources), ("IDP_TEST_HOOKS", "1")],
        |c| {
            c.resources = RESOURCES.iter().map(|r| r.to_string()).collect();
        },
    )
    .await;
    let mut calls = Vec::new();
    for i in 0..20 {
        let service = h.service.clone();
        let resource = RESOURCES[i % 3];
        calls.push(tokio::spawn(async move {
            (
                resource,
                service.get_access_token(Some(resource), None).await,
            )
        }));
    }
    for call in calls {
        let (resource, result) = call.await.expect("the task ran");
        let token = result.unwrap_or_else(|e| panic!("{resource}: {e}"));
        assert_eq!(audience(&token), resource, "a JWT for {resource}");
    }
    let stats = stats(&h).await;
    assert_eq!(stats.max_in_flight, 1, "never two token requests at once");
    assert_eq!(
        stats.refresh_requests, 3,
        "one refresh per resource, the others waited for it"
    );

    // The session survived all that rotation: the stored refresh token still works.
    assert!(h.service.is_authenticated().await);
    h.service
        .fetch_user_info()
        .await
        .expect("the session is alive");
    let restarted = AuthService::new(
        h.service.config().clone(),
        h.store.clone(),
        Arc::new(channel_browser().0),
    )
    .expect("a second service");
    restarted
        .restore()
        .await
        .expect("restore")
        .expect("a stored user");
    let again = restarted
        .get_access_token(Some(RESOURCES[0]), None)
        .await
        .expect("refresh with the stored token");
    assert_eq!(audience(&again), RESOURCES[0]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stolen_refresh_token_reused_after_the_window_ends_the_session_cleanly() {
    let resources = RESOURCES[..2].join(",");
    let h = signed_in(
        &[
            ("IDP_RESOURCES", &resources),
            ("IDP_REFRESH_REUSE_SECONDS", "1"),
        ],
        |c| {
            c.resources = RESOURCES[..2].iter().map(|r| r.to_string()).collect();
        },
    )
    .await;
    let stolen = refresh_secret(&h);
    h.service
        .get_access_token(Some(RESOURCES[0]), None)
        .await
        .expect("the app refreshes (rotation)");
    tokio::time::sleep(Duration::from_millis(1600)).await;

    // The thief replays the old refresh token after the reuse window: Logto revokes the grant.
    let replay = h.idp.refresh_directly(&stolen).await;
    assert_eq!(replay.status(), 400);

    let ended = h.service.get_access_token(Some(RESOURCES[1]), None).await;
    match ended {
        Err(e @ AuthError::GrantEnded(_)) => {
            assert_eq!(e.code(), "session.ended");
            assert!(e.to_string().contains("revoked"), "{e}");
            assert!(e.to_string().contains("sign in again"), "{e}");
        }
        other => panic!("expected the session to end, got {other:?}"),
    }
    assert!(!h.service.is_authenticated().await);
    assert!(h.stored().is_none(), "the keychain entry is gone");
    assert!(matches!(
        h.service.get_access_token(None, None).await,
        Err(AuthError::NotSignedIn)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_or_unreachable_provider_during_refresh_keeps_the_session() {
    let h = signed_in(&[("IDP_TEST_HOOKS", "1")], |c| {
        c.resources = vec!["https://api.example.test".into()];
    })
    .await;
    let before = refresh_secret(&h);

    // A 503 from the token endpoint: an error that says Logto could not be reached, and nothing lost.
    let client = crate::support::http();
    client
        .post(format!("{}/test/fail-token", h.idp.info.endpoint))
        .form(&[("count", "1")])
        .send()
        .await
        .expect("arming the failure");
    let failed = h
        .service
        .get_access_token(Some("https://api.example.test"), None)
        .await;
    assert!(
        matches!(&failed, Err(e) if e.code() == "network.unreachable"),
        "{failed:?}"
    );
    assert!(h.service.is_authenticated().await);
    assert_eq!(
        refresh_secret(&h),
        before,
        "the stored tokens are untouched"
    );

    // The next call tries again and succeeds.
    let token = h
        .service
        .get_access_token(Some("https://api.example.test"), None)
        .await
        .expect("retry");
    assert_eq!(audience(&token), "https://api.example.test");
    let rotated = refresh_secret(&h);

    // The provider goes away entirely.
    let Harness {
        mut idp,
        service,
        store,
        urls,
    } = h;
    let port = url::Url::parse(&idp.info.endpoint)
        .ok()
        .and_then(|u| u.port())
        .expect("port");
    idp.stop();
    assert!(nothing_listens_on(port).await);
    let failed = service.get_organization_token("org-acme").await;
    assert!(
        matches!(&failed, Err(e) if e.code() == "network.unreachable"),
        "{failed:?}"
    );
    assert!(service.is_authenticated().await, "still signed in");
    let h = Harness {
        idp,
        service,
        store,
        urls,
    };
    assert_eq!(
        refresh_secret(&h),
        rotated,
        "the stored refresh token is untouched"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_restart_mid_session_resumes_with_the_rotated_refresh_token() {
    let h = signed_in(&[("IDP_REFRESH_REUSE_SECONDS", "1")], |c| {
        c.resources = vec!["https://api.example.test".into()];
    })
    .await;
    let original = refresh_secret(&h);
    h.service
        .get_access_token(Some("https://api.example.test"), None)
        .await
        .expect("refresh");
    let rotated = refresh_secret(&h);
    assert_ne!(original, rotated);

    // A new service with nothing in memory, as after a restart, reading the same keychain entry.
    let config = h.service.config().clone();
    let store = Arc::new(KeyringStore::new(
        KEYCHAIN_SERVICE,
        &config.issuer(),
        &config.app_id,
    ));
    let restarted =
        AuthService::new(config, store, Arc::new(channel_browser().0)).expect("service");
    restarted
        .restore()
        .await
        .expect("restore")
        .expect("a stored user");
    // Past the reuse window, the original token would now revoke the grant: only the rotated one works.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let token = restarted
        .get_access_token(Some("https://api.example.test"), None)
        .await
        .expect("the restarted app refreshes with the rotated token");
    assert_eq!(audience(&token), "https://api.example.test");
    restarted
        .fetch_user_info()
        .await
        .expect("the grant is alive");
}

#[tokio::test(flavor = "current_thread")]
async fn organization_tokens_come_from_a_refresh_with_organization_id() {
    let h = signed_in(&[], |c| {
        c.scopes = vec!["urn:logto:scope:organizations".into()]
    })
    .await;
    let token = h
        .service
        .get_organization_token("org-acme")
        .await
        .expect("an organization token");
    assert_eq!(audience(&token), "urn:logto:organization:org-acme");
    let refused = h.service.get_organization_token("org-not-mine").await;
    assert!(
        matches!(&refused, Err(e) if e.code() == "provider.refused"),
        "{refused:?}"
    );
    assert!(
        h.service.is_authenticated().await,
        "a refused organization does not end the session"
    );
    let again = h
        .service
        .get_organization_token("org-globex")
        .await
        .expect("another organization");
    assert_eq!(audience(&again), "urn:logto:organization:org-globex");
}

/// Rotates the provider's signing key, keeping the previous public key in its JWKS (Logto's grace
/// period) or dropping it at once. Returns the new `kid`.
async fn rotate_keys(h: &Harness, keep_previous: bool) -> String {
    let answer = h.idp.rotate_keys(keep_previous, None).await;
    answer["kid"].as_str().expect("a new kid").to_string()
}

fn kid_of(jwt: &str) -> Option<String> {
    crate::support::jwt_header_field(jwt, "kid")
}

#[tokio::test(flavor = "current_thread")]
async fn a_signing_key_rotated_at_logto_is_followed_with_one_fetch_of_the_keys() {
    // 4 s access tokens are fresh for 3 s (their margin is a quarter of their life), so a call
    // more than 3 s after the last refresh refreshes again.
    let h = signed_in(
        &[("IDP_TEST_HOOKS", "1"), ("IDP_ACCESS_TOKEN_TTL", "4")],
        |c| c.resources = vec!["https://api.example.test".into()],
    )
    .await;
    assert_eq!(stats(&h).await.jwks_requests, 1, "discovery's fetch");
    let before = refresh_secret(&h);

    // Logto's Console "rotate" with a grace period: the refreshed ID token has the new kid.
    let kid = rotate_keys(&h, true).await;
    h.service
        .get_access_token(Some("https://api.example.test"), None)
        .await
        .expect("a refresh across the rotation");
    let stored = h.stored().expect("still signed in");
    let id_token = stored.id_token().expect("an ID token");
    assert_eq!(kid_of(id_token), Some(kid));
    assert_ne!(
        refresh_secret(&h),
        before,
        "the rotated refresh token is stored"
    );
    assert_eq!(
        stats(&h).await.jwks_requests,
        2,
        "one refetch for the new key"
    );

    // A second rotation within the minute, dropping the old key: the keys are not fetched again
    // so soon, so the new ID token cannot be checked yet. The session and the rotated refresh
    // token are kept, and the error says so.
    let before = refresh_secret(&h);
    let kid = rotate_keys(&h, false).await;
    // Past the 3 s the 4 s tokens stay fresh, so the next call refreshes.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let err = h
        .service
        .get_access_token(Some("https://api.example.test"), None)
        .await
        .expect_err("an ID token signed with a key not fetched yet");
    assert_eq!(err.code(), "token.unverified", "{err}");
    assert!(h.service.is_authenticated().await, "the session is kept");
    assert_ne!(
        refresh_secret(&h),
        before,
        "the rotated refresh token is kept"
    );
    assert_eq!(
        stats(&h).await.jwks_requests,
        2,
        "no refetch within the minute"
    );

    // A restarted app fetches the keys at discovery and goes on with the stored refresh token.
    let config = h.service.config().clone();
    let store = Arc::new(KeyringStore::new(
        KEYCHAIN_SERVICE,
        &config.issuer(),
        &config.app_id,
    ));
    let restarted =
        AuthService::new(config, store, Arc::new(channel_browser().0)).expect("service");
    restarted.restore().await.expect("restore").expect("a user");
    let token = restarted
        .get_access_token(Some("https://api.example.test"), None)
        .await
        .expect("the grant is alive after both rotations");
    assert_eq!(kid_of(token.secret()), Some(kid));
    assert_eq!(stats(&h).await.jwks_requests, 3);
}

/// Logto's ID tokens grow with organizations and roles: carol's is about 8 KB, dave's 16 KB,
/// far past the 2,560 bytes of one keychain entry.
#[tokio::test(flavor = "current_thread")]
async fn sessions_with_8_and_16_kb_id_tokens_are_kept_refreshed_and_restored() {
    const API: &str = "https://api.example.test";
    for (username, password, at_least) in [
        ("carol", "carol-password-1", 7_500),
        ("dave", "dave-password-1", 15_000),
    ] {
        let mut h = Harness::with_config(Idp::start_with(&[("IDP_TEST_HOOKS", "1")]), |c| {
            c.scopes = vec![
                "urn:logto:scope:organizations".into(),
                "urn:logto:scope:organization_roles".into(),
                "roles".into(),
            ];
            c.resources = vec![API.into()];
        });
        let chrome = Chrome::start().await;
        h.sign_in_as(&chrome, username, password).await;
        chrome.stop().await;

        // In memory: every claim of the big ID token.
        let claims = h.service.get_id_token_claims().await.expect("claims");
        let organizations = claims["organizations"].as_array().map_or(0, |o| o.len());
        assert!(
            organizations > 100,
            "{username}: {organizations} organizations"
        );
        assert!(
            claims.to_string().len() > at_least * 2 / 3,
            "{username}'s ID token is as large as promised"
        );

        // In the keychain: the refresh token and the claims the app needs, not the raw token.
        let stored = h.stored().expect("the session is saved");
        assert!(
            stored.id_token().is_none(),
            "{username}: raw token left out"
        );
        assert_eq!(stored.id_claims()["sub"], claims["sub"]);
        let rt = refresh_secret(&h);

        // A new process restores it and refreshes with it; the new ID token passes the checks
        // against the kept claims, and is again too large to store, which is fine.
        let config = h.service.config().clone();
        let store = Arc::new(KeyringStore::new(
            KEYCHAIN_SERVICE,
            &config.issuer(),
            &config.app_id,
        ));
        let restarted =
            AuthService::new(config, store, Arc::new(channel_browser().0)).expect("service");
        let user = restarted.restore().await.expect("restore").expect("a user");
        assert_eq!(user.username.as_deref(), Some(username));
        let kept = restarted.get_id_token_claims().await.expect("kept claims");
        assert!(
            kept.get("organizations").is_none(),
            "only the kept claims until a refresh"
        );
        let token = restarted
            .get_access_token(Some(API), None)
            .await
            .unwrap_or_else(|e| panic!("{username}: the restored session refreshes: {e}"));
        assert_eq!(audience(&token), API);
        assert_ne!(
            refresh_secret(&h),
            rt,
            "{username}: the rotated refresh token is stored"
        );
        let refreshed = restarted.get_id_token_claims().await.expect("claims");
        assert_eq!(
            refreshed["organizations"].as_array().map_or(0, |o| o.len()),
            organizations
        );
    }
}
