//! What the core does with the provider's answers as HTTP answers, whatever they say: a redirect
//! is never followed, and no answer is read past 1 MiB. Each request the core makes to the
//! provider is tried: discovery, the keys, the token endpoint, userinfo, revocation and the
//! tenant check (SECURITY.md: "Redirects are never followed on provider requests", "Every answer
//! from the provider is capped at 1 MiB").

use std::time::Duration;

use super::stand::{sign_in, Stand};
use crate::AuthError;

/// The promised cap, from SECURITY.md (not from the code's constant).
const MIB: usize = 1024 * 1024;

/// Every request the core sends to the provider, as the stand logs it.
const REQUESTS: [&str; 6] = [
    "GET /oidc/.well-known/openid-configuration",
    "GET /oidc/jwks",
    "POST /oidc/token",
    "GET /oidc/me",
    "POST /oidc/token/revocation",
    "GET /api/.well-known/sign-in-exp",
];

/// The tenant check's document, with no connector.
const NO_CONNECTORS: &str = r#"{"socialConnectors":[]}"#;

/// A stand whose tenant check answers, and whose next token answer is a good one.
fn stand() -> Stand {
    let stand = Stand::start();
    stand.serve_file(
        "/api/.well-known/sign-in-exp",
        "application/json",
        NO_CONNECTORS.as_bytes().to_vec(),
    );
    stand.on_token(|c| c.stand.signed_answer(|_| {}, "RT-1"));
    stand
}

/// Sends `request` the way the core does, on a fresh service of `stand` (signed in first where
/// the request needs a session), after `prepare` has set the stand's answer to it. The result:
/// `Ok` if the core took the answer, its error otherwise.
async fn send(stand: &Stand, request: &str, prepare: impl FnOnce(&Stand)) -> Result<(), AuthError> {
    let (service, _store) = stand.service();
    let signed_in_first = matches!(request, "GET /oidc/me" | "POST /oidc/token/revocation");
    if signed_in_first {
        sign_in(&service).await.expect("signed in");
    }
    prepare(stand);
    let within = Duration::from_secs(30);
    let result = match request {
        "GET /oidc/.well-known/openid-configuration" | "GET /oidc/jwks" => {
            tokio::time::timeout(within, service.prefetch()).await
        }
        "POST /oidc/token" => {
            tokio::time::timeout(within, async { sign_in(&service).await.map(drop) }).await
        }
        "GET /oidc/me" => {
            tokio::time::timeout(within, async { service.fetch_user_info().await.map(drop) }).await
        }
        "POST /oidc/token/revocation" => {
            tokio::time::timeout(within, async {
                let report = service.sign_out().await?;
                if report.revoked {
                    Ok(())
                } else {
                    Err(AuthError::Network("not revoked".into()))
                }
            })
            .await
        }
        "GET /api/.well-known/sign-in-exp" => {
            tokio::time::timeout(within, async {
                service.check_sign_in_experience().await.map(drop)
            })
            .await
        }
        other => unreachable!("{other} is not in REQUESTS"),
    };
    result.unwrap_or_else(|_| panic!("{request}: no result within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_to_the_provider_follows_a_redirect() {
    for status in [301, 302, 303, 307, 308] {
        for request in REQUESTS {
            let stand = stand();
            // Where the redirect points: another path of the same provider, which answers
            // whatever it is asked (a 404), so a client that followed it would be seen here.
            let elsewhere = format!("{}/elsewhere", stand.endpoint());
            let result = send(&stand, request, |stand| {
                stand.answer_with(request, status, Vec::new(), Some(&elsewhere));
            })
            .await;
            let followed = stand
                .requests()
                .iter()
                .filter(|r| r.ends_with(" /elsewhere"))
                .count();
            assert_eq!(followed, 0, "{status} to {request} was followed");
            assert!(
                result.is_err(),
                "{status} to {request} was taken as an answer"
            );
            assert!(
                stand.count(request) >= 1,
                "{request} was sent: {:?}",
                stand.requests()
            );
        }
    }
}

/// `text` (JSON) padded with spaces after its end to exactly `len` bytes: still the same JSON.
fn padded(text: &[u8], len: usize) -> Vec<u8> {
    assert!(text.len() <= len);
    let mut body = text.to_vec();
    body.resize(len, b' ');
    body
}

/// The stand's usual answer to a GET `request`, as bytes.
async fn usual(stand: &Stand, request: &str) -> Vec<u8> {
    let path = request.trim_start_matches("GET ");
    let response = reqwest::get(format!("{}{path}", stand.endpoint()))
        .await
        .expect("the stand answers");
    response.bytes().await.expect("a body").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_read_up_to_1_mib_and_refused_past_it() {
    for request in REQUESTS {
        for (len, taken) in [(MIB, true), (MIB + 1, false)] {
            let stand = stand();
            let result = match request {
                // The token answer is scripted per call: padded as it is made.
                "POST /oidc/token" => {
                    stand.clear_token();
                    stand.on_token(move |c| {
                        let (status, body) = c.stand.signed_answer(|_| {}, "RT-1");
                        (status, padded(&body, len))
                    });
                    send(&stand, request, |_| {}).await
                }
                // Revocation's answer has no body to use: a 200 of any size revokes, and its
                // body is not read past the cap (nothing to see from here but that it ends).
                "POST /oidc/token/revocation" => {
                    let result = send(&stand, request, |stand| {
                        stand.answer_with(request, 200, vec![b' '; len], None);
                    })
                    .await;
                    assert!(result.is_ok(), "{request} of {len} bytes: {result:?}");
                    continue;
                }
                "GET /oidc/me" => {
                    let body = stand.state.userinfo.lock().expect("lock").1.clone();
                    send(&stand, request, |stand| {
                        stand.answer_with(request, 200, padded(&body, len), None);
                    })
                    .await
                }
                _ => {
                    let body = if request.ends_with("sign-in-exp") {
                        NO_CONNECTORS.as_bytes().to_vec()
                    } else {
                        usual(&stand, request).await
                    };
                    send(&stand, request, |stand| {
                        stand.answer_with(request, 200, padded(&body, len), None);
                    })
                    .await
                }
            };
            if taken {
                assert!(result.is_ok(), "{request} of exactly 1 MiB: {result:?}");
            } else {
                let code = result.map_err(|e| e.code());
                assert_eq!(
                    code,
                    Err("provider.too_large"),
                    "{request} of 1 MiB and a byte"
                );
            }
        }
    }
}
