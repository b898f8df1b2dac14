//! Hostile and broken answers, run through the whole core (service, loopback, exchange, ID token,
//! userinfo, keychain) against the stand-in provider over real sockets. Each test asserts the
//! error's code, what the core asked the provider after the failing step, and what the keychain
//! holds.

use std::time::Duration;

use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{AccessToken, AccessTokenHash};
use serde_json::{json, Value};

use super::stand::{sign_in, Answer, Key, Stand, APP};
use crate::session::Session;
use crate::store::{MemoryStore, TokenStore};
use crate::AuthService;

const API: &str = "https://api.example.test";

fn stored(store: &MemoryStore, stand: &Stand) -> Option<Session> {
    store
        .load()
        .expect("memory store")
        .map(|t| Session::decode(&t, &stand.state.issuer, APP).expect("decodable"))
}

fn good(c: &super::stand::TokenCall<'_>) -> Answer {
    c.stand.signed_answer(|_| {}, "RT-1")
}

/// Words that blame the network, which a refusal must not use when the network was fine.
fn blames_the_network(message: &str) -> bool {
    let m = message.to_lowercase();
    ["reach", "connection", "network", "internet"]
        .iter()
        .any(|w| m.contains(w))
}

type Script = Box<dyn Fn(&super::stand::TokenCall<'_>) -> Answer + Send + Sync>;

/// A case: its name, the token answer, userinfo's answer if not the default, the expected code.
type Case = (&'static str, Script, Option<(u16, Value)>, &'static str);

fn tweak(f: impl Fn(&mut Value) + Send + Sync + 'static) -> Script {
    Box::new(move |c| c.stand.signed_answer(&f, "RT-1"))
}

/// A good answer whose ID token lacks `claim`.
fn without(claim: &'static str) -> Script {
    tweak(move |c| {
        c.as_object_mut().map(|o| o.remove(claim));
    })
}

fn signed_by(key: Key, header: Value) -> Script {
    Box::new(move |c| {
        let claims = c.stand.claims(c.stand.last_nonce().as_deref());
        c.stand
            .answer(Some(key.sign(header.clone(), &claims)), "RT-1")
    })
}

fn body(status: u16, text: &str) -> Script {
    let text = text.to_string();
    Box::new(move |_| (status, text.clone().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_carries_the_code_of_its_cause_and_nothing_is_stored() {
    let big = format!(
        r#"{{"access_token":"AT","token_type":"Bearer","pad":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let cases: Vec<Case> = vec![
        (
            "a 10 MB token answer",
            body(200, &big),
            None,
            "provider.too_large",
        ),
        (
            "a token answer that is not JSON",
            body(200, "<html>hello</html>"),
            None,
            "provider.bad_answer",
        ),
        (
            "a token answer without access_token",
            body(200, r#"{"token_type":"Bearer"}"#),
            None,
            "provider.bad_answer",
        ),
        (
            "a token answer with a numeric access_token",
            body(200, r#"{"access_token":5,"token_type":"Bearer"}"#),
            None,
            "provider.bad_answer",
        ),
        (
            "a 404 with no OAuth error",
            body(404, "<h1>Not found</h1>"),
            None,
            "provider.bad_answer",
        ),
        (
            "invalid_grant",
            body(
                400,
                r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
            ),
            None,
            "provider.refused",
        ),
        (
            "a 503",
            body(503, "Service Unavailable"),
            None,
            "network.unreachable",
        ),
        (
            "no ID token",
            Box::new(|c| c.stand.answer(None, "RT-1")),
            None,
            "token.invalid",
        ),
        (
            "an ID token that is not a JWT",
            Box::new(|c| c.stand.answer(Some("not-a-jwt".into()), "RT-1")),
            None,
            "token.invalid",
        ),
        (
            "an ID token without sub",
            without("sub"),
            None,
            "token.invalid",
        ),
        (
            "an ID token without iat",
            without("iat"),
            None,
            "token.invalid",
        ),
        (
            "an ID token without exp",
            without("exp"),
            None,
            "token.invalid",
        ),
        (
            "an ID token with a string exp",
            tweak(|c| c["exp"] = json!("tomorrow")),
            None,
            "token.invalid",
        ),
        (
            "another issuer",
            tweak(|c| c["iss"] = json!("http://127.0.0.1:1/oidc")),
            None,
            "token.invalid",
        ),
        (
            "another audience",
            tweak(|c| c["aud"] = json!("someone-else")),
            None,
            "token.invalid",
        ),
        (
            "an extra untrusted audience",
            tweak(|c| c["aud"] = json!([APP, "someone-else"])),
            None,
            "token.invalid",
        ),
        (
            "another azp",
            tweak(|c| c["azp"] = json!("someone-else")),
            None,
            "token.invalid",
        ),
        // SECURITY.md: "`exp` and `iat` with a 60 s allowance"; ten seconds past it (the next
        // test has ten seconds inside it).
        (
            "expired beyond the allowance",
            tweak(|c| c["exp"] = json!(crate::exchange::unix_now() - 70)),
            None,
            "token.invalid",
        ),
        (
            "issued in the future beyond the allowance",
            tweak(|c| c["iat"] = json!(crate::exchange::unix_now() + 70)),
            None,
            "token.invalid",
        ),
        (
            "an ID token without iss",
            without("iss"),
            None,
            "token.invalid",
        ),
        (
            "an ID token without aud",
            without("aud"),
            None,
            "token.invalid",
        ),
        (
            "another nonce",
            tweak(|c| c["nonce"] = json!("not-the-nonce")),
            None,
            "token.invalid",
        ),
        ("no nonce", without("nonce"), None, "token.invalid"),
        (
            "a wrong at_hash",
            tweak(|c| c["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA")),
            None,
            "token.invalid",
        ),
        (
            "alg none",
            signed_by(Key::new(7, "k1"), json!({"alg": "none"})),
            None,
            "token.invalid",
        ),
        (
            "HS256",
            signed_by(Key::new(7, "k1"), json!({"alg": "HS256"})),
            None,
            "token.invalid",
        ),
        (
            "a key nobody published",
            signed_by(Key::new(9, "k9"), json!({})),
            None,
            "token.invalid",
        ),
        (
            "a published kid with another key's signature",
            signed_by(Key::new(9, "k1"), json!({})),
            None,
            "token.invalid",
        ),
        (
            "userinfo for another user",
            Box::new(good),
            Some((200, json!({"sub": "u2"}))),
            "token.invalid",
        ),
        (
            "userinfo that is not JSON",
            Box::new(good),
            Some((200, json!("nope"))),
            "provider.bad_answer",
        ),
        (
            "userinfo refusing the token",
            Box::new(good),
            Some((401, json!({"error": "invalid_token"}))),
            "provider.refused",
        ),
        (
            "userinfo failing",
            Box::new(good),
            Some((500, json!({}))),
            "network.unreachable",
        ),
    ];
    for (name, script, userinfo, code) in cases {
        let stand = Stand::start();
        stand.on_token(script);
        if let Some((status, body)) = userinfo.clone() {
            stand.set_userinfo(status, body);
        }
        let (service, store) = stand.service();
        let err = sign_in(&service).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        if code != "network.unreachable" {
            assert!(!blames_the_network(&err.to_string()), "{name}: {err}");
        }
        assert!(store.load().expect("memory").is_none(), "{name}: stored");
        assert!(!service.is_authenticated().await, "{name}");
        let requests = stand.requests();
        let after_token = requests
            .iter()
            .skip_while(|r| *r != "POST /oidc/token")
            .skip(1)
            .cloned()
            .collect::<Vec<_>>();
        // An answer that carried tokens leaves no grant alive: its refresh token is revoked.
        let issued = code == "token.invalid" || userinfo.is_some();
        let expected: &[&str] = if issued { &["RT-1"] } else { &[] };
        assert_eq!(stand.revoked(), expected, "{name}");
        if userinfo.is_none() {
            // Nothing past the failing step but fetching the keys again and the revocation: no
            // userinfo, no second token request.
            assert!(
                after_token.iter().all(|r| [
                    "GET /oidc/jwks",
                    "GET /oidc/.well-known/openid-configuration",
                    "POST /oidc/token/revocation"
                ]
                .contains(&r.as_str())),
                "{name}: asked {after_token:?} after the token answer"
            );
        }
        if issued {
            assert_eq!(
                after_token.last().map(String::as_str),
                Some("POST /oidc/token/revocation"),
                "{name}: the revocation comes last"
            );
        }
        // Only a key or a signature the snapshot may not know yet is a reason to fetch
        // discovery and the keys again; a token that breaks any other rule is refused as it is.
        let may_be_stale = matches!(
            name,
            "a key nobody published" | "a published kid with another key's signature"
        );
        let fetched_again = after_token
            .iter()
            .any(|r| r == "GET /oidc/jwks" || r == "GET /oidc/.well-known/openid-configuration");
        assert_eq!(fetched_again, may_be_stale, "{name}: {after_token:?}");
        assert!(stand.count("POST /oidc/token") == 1, "{name}: {requests:?}");
    }
}

/// SECURITY.md: "`exp` and `iat` with a 60 s allowance": clocks ten seconds inside it either way
/// are accepted (the case list above has them ten seconds past it refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_within_the_60_second_clock_allowance_is_accepted() {
    type Change = fn(&mut Value);
    let cases: [(&str, Change); 2] = [
        ("expired 50 s ago", |c| {
            c["exp"] = json!(crate::exchange::unix_now() - 50)
        }),
        ("issued 50 s from now", |c| {
            c["iat"] = json!(crate::exchange::unix_now() + 50)
        }),
    ];
    for (name, change) in cases {
        let stand = Stand::start();
        stand.on_token(move |c| c.stand.signed_answer(change, "RT-1"));
        let (service, store) = stand.service();
        sign_in(&service)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.code()));
        assert!(stored(&store, &stand).is_some(), "{name}: stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_at_hash_and_a_missing_expires_in_are_accepted() {
    let stand = Stand::start();
    let jwk: CoreJsonWebKey = serde_json::from_value(key_jwk(&Key::new(7, "k1"))).expect("a JWK");
    let hash = AccessTokenHash::from_token(
        &AccessToken::new("AT-hashed".into()),
        &CoreJwsSigningAlgorithm::EdDsa,
        &jwk,
    )
    .expect("at_hash");
    stand.on_token(move |c| {
        let (status, body) = c
            .stand
            .signed_answer(|c| c["at_hash"] = json!(hash.as_str()), "RT-1");
        let mut body: Value = serde_json::from_slice(&body).expect("json");
        body["access_token"] = json!("AT-hashed");
        body.as_object_mut().map(|o| o.remove("expires_in"));
        (status, body.to_string().into_bytes())
    });
    let (service, store) = stand.service();
    let before = crate::exchange::unix_now();
    sign_in(&service).await.expect("signed in");
    let session = stored(&store, &stand).expect("stored");
    let expires = session
        .access
        .get(&Default::default())
        .and_then(|t| t.expires_at)
        .expect("an expiry");
    // README and SECURITY.md: an answer without `expires_in` is taken to live 5 minutes.
    let after = crate::exchange::unix_now();
    assert!(
        (before + 5 * 60..=after + 5 * 60).contains(&expires),
        "{expires} is now + {} s, not 5 minutes",
        expires as i64 - after as i64
    );
    let token = service.get_access_token(None, None).await.expect("cached");
    assert_eq!(
        token.secret(),
        "AT-hashed",
        "the token the ID token's at_hash is of"
    );
}

fn key_jwk(key: &Key) -> Value {
    use base64::Engine;
    json!({
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": key.kid,
        "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.signing.verifying_key().as_bytes()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_after_discovery_is_fetched_once_and_the_sign_in_succeeds() {
    let stand = Stand::start();
    let (service, store) = stand.service();
    service.prefetch().await.expect("discovered");
    assert_eq!(stand.count("GET /oidc/jwks"), 1);
    let (k1, k2) = (Key::new(7, "k1"), Key::new(8, "k2"));
    stand.rotate(k2.clone(), vec![k2, k1]);
    stand.on_token(good);
    sign_in(&service).await.expect("signed in with the new key");
    assert_eq!(stand.count("GET /oidc/jwks"), 2, "{:?}", stand.requests());
    assert!(stored(&store, &stand).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_kid_among_several_keys_refetches_then_verifies() {
    let stand = Stand::start();
    let (k1, k2) = (Key::new(7, "k1"), Key::new(8, "k2"));
    stand.rotate(k1.clone(), vec![k1, k2.clone()]);
    let (service, _store) = stand.service();
    service.prefetch().await.expect("discovered");
    // The old key is gone now, and the token names no key: ambiguous with the cached set.
    stand.rotate(k2.clone(), vec![k2.clone()]);
    stand.on_token(move |c| {
        let claims = c.stand.claims(c.stand.last_nonce().as_deref());
        c.stand
            .answer(Some(k2.sign(json!({"kid": null}), &claims)), "RT-1")
    });
    sign_in(&service).await.expect("signed in");
    assert_eq!(stand.count("GET /oidc/jwks"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_kids_cannot_make_the_app_hammer_the_key_set() {
    let stand = Stand::start();
    let (service, store) = stand.service();
    for n in 0..5u8 {
        let key = Key::new(20 + n, &format!("made-up-{n}"));
        stand.on_token(move |c| {
            let claims = c.stand.claims(c.stand.last_nonce().as_deref());
            c.stand.answer(Some(key.sign(json!({}), &claims)), "RT-1")
        });
        let err = sign_in(&service).await.expect_err("unknown key");
        assert_eq!(err.code(), "token.invalid", "{err}");
        assert!(err.to_string().contains("not published"), "{err}");
    }
    // Discovery's fetch, and one refetch for the first unknown key; none after within a minute.
    assert_eq!(stand.count("GET /oidc/jwks"), 2, "{:?}", stand.requests());
    assert!(store.load().expect("memory").is_none());
}

/// Moves tokio's clock `by` ahead at once (the stand answers on threads of its own, in real
/// time, so the clock runs again afterwards, from the later point).
async fn skip(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// Whether a refetch for a caller holding `snapshot` is turned away (no fetch, no error).
async fn limited(
    discovered: &crate::discovery::Discovered,
    http: &crate::http::Http,
    config: &crate::Config,
    snapshot: &std::sync::Arc<crate::discovery::Provider>,
) -> bool {
    discovered
        .refetch(http, config, snapshot)
        .await
        .expect("no fetch, no error")
        .is_none()
}

#[tokio::test]
async fn discovery_is_fetched_again_at_most_once_per_interval() {
    // SECURITY.md: "at most once a minute (the first one after start-up always may)".
    const MINUTE: Duration = Duration::from_secs(60);
    let stand = Stand::start();
    let http = crate::http::client().expect("client");
    let (service, _store) = stand.service();
    let config = service.config().clone();
    let discovered = crate::discovery::Discovered::new();
    let first = discovered.get(&http, &config).await.expect("fetched");
    // The first refetch after the start-up's fetch is always allowed.
    let second = discovered
        .refetch(&http, &config, &first)
        .await
        .expect("fetched")
        .expect("allowed");
    assert!(!std::sync::Arc::ptr_eq(&first, &second));
    // A caller still holding the first snapshot gets the newer one, without a fetch.
    let again = discovered
        .refetch(&http, &config, &first)
        .await
        .expect("newer");
    assert!(again.is_some_and(|p| std::sync::Arc::ptr_eq(&p, &second)));
    assert!(limited(&discovered, &http, &config, &second).await);
    assert_eq!(stand.count("GET /oidc/jwks"), 2);
    assert_eq!(stand.count("GET /oidc/.well-known/openid-configuration"), 2);
    // Just short of a minute later: still not.
    skip(MINUTE - Duration::from_secs(2)).await;
    assert!(limited(&discovered, &http, &config, &second).await);
    assert_eq!(stand.count("GET /oidc/jwks"), 2);
    // A minute after the last one: again.
    skip(Duration::from_secs(2)).await;
    let third = discovered
        .refetch(&http, &config, &second)
        .await
        .expect("fetched again")
        .expect("allowed");
    assert_eq!(stand.count("GET /oidc/jwks"), 3);
    // A failing fetch keeps the snapshot it had, and counts as a try.
    *stand.state.jwks_status.lock().expect("lock") = 500;
    skip(MINUTE).await;
    let err = discovered
        .refetch(&http, &config, &third)
        .await
        .expect_err("500");
    assert_eq!(err.code(), "network.unreachable");
    let kept = discovered.get(&http, &config).await.expect("kept");
    assert!(std::sync::Arc::ptr_eq(&kept, &third));
    assert!(limited(&discovered, &http, &config, &third).await);
}

/// Signs in on a fresh stand, then scripts the next refresh answer.
async fn signed_in_then(
    tweak_claims: impl Fn(&mut Value) + Send + Sync + 'static,
) -> (
    Stand,
    std::sync::Arc<AuthService>,
    std::sync::Arc<MemoryStore>,
) {
    let stand = Stand::start();
    stand.on_token(|c| {
        c.stand.signed_answer(
            |c| c["auth_time"] = json!(crate::exchange::unix_now() - 10),
            "RT-1",
        )
    });
    let (service, store) = stand.service();
    sign_in(&service).await.expect("signed in");
    stand.on_token(move |c| c.stand.signed_answer(&tweak_claims, "RT-2"));
    (stand, service, store)
}

fn stored_refresh_token(store: &MemoryStore, stand: &Stand) -> Option<String> {
    stored(store, stand).and_then(|s| s.tokens.refresh_token.map(|t| t.secret().clone()))
}

/// OpenID Connect Core 12.2: a refreshed ID token need not carry the nonce (Logto's do not);
/// one that does must repeat it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_id_token_without_a_nonce_is_accepted() {
    let (stand, service, store) = signed_in_then(|c| {
        c.as_object_mut().map(|o| o.remove("nonce"));
    })
    .await;
    let token = service
        .get_access_token(Some(API), None)
        .await
        .expect("refreshed");
    assert_eq!(Some(token.secret().to_string()), stand.last_access_token());
    assert_eq!(
        stored_refresh_token(&store, &stand).as_deref(),
        Some("RT-2")
    );
    assert!(stand.revoked().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_signed_with_a_rotated_key_fetches_the_keys_and_goes_on() {
    let (stand, service, store) = signed_in_then(|_| {}).await;
    let (k1, k2) = (Key::new(7, "k1"), Key::new(8, "k2"));
    stand.rotate(k2.clone(), vec![k2, k1]);
    let token = service
        .get_access_token(Some(API), None)
        .await
        .expect("refreshed");
    assert_eq!(Some(token.secret().to_string()), stand.last_access_token());
    assert_eq!(stand.count("GET /oidc/jwks"), 2);
    assert_eq!(
        stored_refresh_token(&store, &stand).as_deref(),
        Some("RT-2")
    );
    assert!(stand.revoked().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_cannot_be_checked_yet_keeps_the_session_and_the_rotated_token() {
    for (name, case) in [
        ("a key not published", 0),
        ("clocks far apart", 1),
        ("a token without iat", 2),
    ] {
        let (stand, service, store) = signed_in_then(|_| {}).await;
        if case == 0 {
            // Replace the scripted answer: signed with a key the provider does not publish.
            stand.clear_token();
            let key = Key::new(9, "k9");
            stand.on_token(move |c| {
                let claims = c.stand.claims(c.stand.last_nonce().as_deref());
                c.stand.answer(Some(key.sign(json!({}), &claims)), "RT-2")
            });
        } else {
            stand.clear_token();
            stand.on_token(move |c| {
                c.stand.signed_answer(
                    |claims| {
                        if case == 1 {
                            claims["iat"] = json!(crate::exchange::unix_now() + 3600);
                        } else {
                            claims.as_object_mut().map(|o| o.remove("iat"));
                        }
                    },
                    "RT-2",
                )
            });
        }
        let err = service
            .get_access_token(Some(API), None)
            .await
            .expect_err(name);
        assert_eq!(err.code(), "token.unverified", "{name}: {err}");
        assert!(!blames_the_network(&err.to_string()), "{name}: {err}");
        assert!(service.is_authenticated().await, "{name}: session kept");
        assert_eq!(
            stored_refresh_token(&store, &stand).as_deref(),
            Some("RT-2"),
            "{name}: the rotated refresh token is stored"
        );
        assert!(stand.revoked().is_empty(), "{name}");
        // The next call tries again, with the rotated token.
        stand.on_token(|c| {
            assert_eq!(c.param("refresh_token"), Some("RT-2"));
            c.stand.signed_answer(|_| {}, "RT-3")
        });
        service
            .get_access_token(Some(API), None)
            .await
            .unwrap_or_else(|e| panic!("{name}: the retry: {e}"));
        assert_eq!(
            stored_refresh_token(&store, &stand).as_deref(),
            Some("RT-3")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_for_someone_else_ends_the_session_and_revokes_the_new_grant() {
    type Tweak = Box<dyn Fn(&mut Value) + Send + Sync>;
    let cases: Vec<(&str, Tweak)> = vec![
        (
            "another subject",
            Box::new(|c| c["sub"] = json!("someone-else")),
        ),
        (
            "another nonce",
            Box::new(|c| c["nonce"] = json!("not-the-sign-in-nonce")),
        ),
        (
            "another issuer",
            Box::new(|c| c["iss"] = json!("http://127.0.0.1:1/oidc")),
        ),
        (
            "another audience",
            Box::new(|c| c["aud"] = json!("someone-else")),
        ),
        (
            "another azp",
            Box::new(|c| c["azp"] = json!("someone-else")),
        ),
        (
            "an auth_time that goes back",
            Box::new(|c| c["auth_time"] = json!(1_000_000)),
        ),
        (
            "a wrong at_hash",
            Box::new(|c| c["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA")),
        ),
    ];
    for (name, tweak) in cases {
        let (stand, service, store) = signed_in_then(tweak).await;
        let err = service
            .get_access_token(Some(API), None)
            .await
            .expect_err(name);
        assert_eq!(err.code(), "session.ended", "{name}: {err}");
        assert!(!service.is_authenticated().await, "{name}");
        assert!(store.load().expect("memory").is_none(), "{name}: cleared");
        assert_eq!(
            stand.revoked(),
            ["RT-2"],
            "{name}: the new grant is revoked"
        );
    }
    // A signature that fails with freshly fetched keys ends it too.
    let (stand, service, store) = signed_in_then(|_| {}).await;
    stand.clear_token();
    stand.on_token(|c| {
        let (status, body) = c.stand.signed_answer(|_| {}, "RT-2");
        let mut body: Value = serde_json::from_slice(&body).expect("json");
        let token = body["id_token"].as_str().unwrap_or_default().to_string();
        let (input, _) = token.rsplit_once('.').unwrap_or_default();
        let forged = Key::new(9, "k1").sign(json!({}), &json!({}));
        let signature = forged.rsplit('.').next().unwrap_or_default();
        body["id_token"] = json!(format!("{input}.{signature}"));
        (status, body.to_string().into_bytes())
    });
    let err = service
        .get_access_token(Some(API), None)
        .await
        .expect_err("forged");
    assert_eq!(err.code(), "session.ended", "{err}");
    assert!(store.load().expect("memory").is_none());
    assert_eq!(stand.count("GET /oidc/jwks"), 2, "keys fetched again first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_ends_the_session_and_a_503_or_a_huge_answer_keeps_it() {
    let (stand, service, store) = signed_in_then(|_| {}).await;
    stand.clear_token();
    stand.on_token(|_| (503, b"Service Unavailable".to_vec()));
    let err = service
        .get_access_token(Some(API), None)
        .await
        .expect_err("503");
    assert_eq!(err.code(), "network.unreachable");
    assert!(
        !err.to_string().contains("Service Unavailable"),
        "no body is quoted"
    );
    stand.on_token(|_| (200, vec![b' '; 2 * 1024 * 1024]));
    let err = service
        .get_access_token(Some(API), None)
        .await
        .expect_err("huge");
    assert_eq!(err.code(), "provider.too_large");
    assert!(service.is_authenticated().await);
    assert_eq!(
        stored_refresh_token(&store, &stand).as_deref(),
        Some("RT-1")
    );
    stand.on_token(|_| {
        (
            400,
            br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#.to_vec(),
        )
    });
    let err = service
        .get_access_token(Some(API), None)
        .await
        .expect_err("gone");
    assert_eq!(err.code(), "session.ended");
    assert!(store.load().expect("memory").is_none());
}

/// Signs in on `stand` (whose discovery lists EdDSA), then restores the session in a second
/// program sharing the keychain entry that fetches discovery while it lists only `before`; the
/// stand then lists `after`, and the next refresh is signed with EdDSA.
async fn restored_with_discovery_listing(
    stand: &Stand,
    before: Value,
    after: Value,
) -> (std::sync::Arc<AuthService>, std::sync::Arc<MemoryStore>) {
    stand.on_token(good);
    let (first, store) = stand.service();
    sign_in(&first).await.expect("signed in");
    let (service, store) = stand.service_on(store, None);
    service.restore().await.expect("restored").expect("a user");
    *stand.state.algs.lock().expect("lock") = before;
    service.prefetch().await.expect("discovered");
    *stand.state.algs.lock().expect("lock") = after;
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-2"));
    (service, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_refresh_signed_with_an_algorithm_discovery_did_not_list_fetches_discovery_again(
) {
    // Logto's discovery lists the algorithms of the keys it holds: ES384 alone before a switch
    // to another key type, both after it.
    let stand = Stand::start();
    let (service, store) =
        restored_with_discovery_listing(&stand, json!(["ES384"]), json!(["ES384", "EdDSA"])).await;
    let discoveries = stand.count("GET /oidc/.well-known/openid-configuration");
    let token = service
        .get_access_token(Some(API), None)
        .await
        .expect("refreshed after fetching discovery again");
    assert_eq!(Some(token.secret().to_string()), stand.last_access_token());
    assert_eq!(
        stand.count("GET /oidc/.well-known/openid-configuration"),
        discoveries + 1
    );
    assert_eq!(
        stored_refresh_token(&store, &stand).as_deref(),
        Some("RT-2")
    );
    assert!(stand.revoked().is_empty(), "{:?}", stand.revoked());
    // The new discovery serves the next sign-in too: signed out, a new sign-in fetches nothing.
    service.sign_out().await.expect("signed out");
    stand.on_token(good);
    let before = stand.requests().len();
    sign_in(&service).await.expect("signed in again");
    let fetched: Vec<String> = stand.requests()[before..]
        .iter()
        .filter(|r| r.starts_with("GET /oidc/jwks") || r.contains("openid-configuration"))
        .cloned()
        .collect();
    assert!(fetched.is_empty(), "{fetched:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_refresh_whose_algorithm_discovery_still_does_not_list_keeps_the_session() {
    let stand = Stand::start();
    let (service, store) =
        restored_with_discovery_listing(&stand, json!(["ES384"]), json!(["ES384"])).await;
    let err = service
        .get_access_token(Some(API), None)
        .await
        .expect_err("unverified");
    assert_eq!(err.code(), "token.unverified", "{err}");
    assert!(err.to_string().contains("EdDSA"), "{err}");
    assert!(service.is_authenticated().await);
    // The rotated refresh token is kept, and nothing was revoked.
    assert_eq!(
        stored_refresh_token(&store, &stand).as_deref(),
        Some("RT-2")
    );
    assert!(stand.revoked().is_empty(), "{:?}", stand.revoked());
    // `none` and HS* are never a matter of stale metadata: they still end the session.
    stand.on_token(|c| {
        let claims = c.stand.claims(c.stand.last_nonce().as_deref());
        c.stand.answer(
            Some(Key::new(7, "k1").sign(json!({"alg": "HS256"}), &claims)),
            "RT-3",
        )
    });
    let err = service
        .get_access_token(Some("https://other.example.test"), None)
        .await
        .expect_err("ended");
    assert_eq!(err.code(), "session.ended", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_sign_in_signed_with_an_algorithm_discovery_did_not_list_fetches_discovery_again(
) {
    let stand = Stand::start();
    *stand.state.algs.lock().expect("lock") = json!(["ES384"]);
    let (service, store) = stand.service();
    service.prefetch().await.expect("discovered");
    *stand.state.algs.lock().expect("lock") = json!(["ES384", "EdDSA"]);
    stand.on_token(good);
    sign_in(&service).await.expect("signed in");
    assert_eq!(stand.count("GET /oidc/.well-known/openid-configuration"), 2);
    assert!(stored(&store, &stand).is_some());

    // Still not listed once fetched again: the sign-in fails on fresh metadata, and its grant
    // is revoked.
    let stand = Stand::start();
    *stand.state.algs.lock().expect("lock") = json!(["ES384"]);
    let (service, store) = stand.service();
    stand.on_token(good);
    let err = sign_in(&service).await.expect_err("refused");
    assert_eq!(err.code(), "token.invalid", "{err}");
    assert_eq!(stand.count("GET /oidc/.well-known/openid-configuration"), 2);
    assert_eq!(stand.revoked(), ["RT-1"]);
    assert!(store.load().expect("memory").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_sign_in_cancelled_during_an_exchange_that_fails_revokes_its_grant() {
    let stand = Stand::start();
    stand.on_token(|c| {
        // Slow enough for the cancel to come first; then refused (another nonce).
        std::thread::sleep(Duration::from_millis(500));
        c.stand
            .signed_answer(|c| c["nonce"] = json!("not-the-nonce"), "RT-1")
    });
    let (service, store) = stand.service();
    let signing_in = tokio::spawn({
        let service = service.clone();
        async move { sign_in(&service).await }
    });
    while stand.count("POST /oidc/token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(service.cancel_sign_in());
    let err = signing_in.await.expect("joined").expect_err("cancelled");
    assert_eq!(err.code(), "sign_in.cancelled");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stand.revoked().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stand.revoked(), ["RT-1"]);
    assert!(store.load().expect("memory").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_sign_in_over_an_entry_another_program_stored_revokes_that_grant() {
    let stand = Stand::start();
    stand.on_token(good);
    // This program has not restored: another one signs in and stores its session meanwhile.
    let (this, store) = stand.service();
    let (other, _) = stand.service_on(store.clone(), None);
    sign_in(&other).await.expect("the other program signed in");
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-2"));
    sign_in(&this).await.expect("signed in");
    assert_eq!(stand.revoked(), ["RT-1"], "the replaced grant is revoked");
    assert_eq!(
        stored_refresh_token(&store, &stand).as_deref(),
        Some("RT-2")
    );
}
