//! Property tests for the three parsers that take input from outside: the callback parser (the
//! browser, or anything local), the keychain entry decoder (whatever the keychain holds), and
//! the discovery checks (the provider), and for the entry's encoder. Thousands of generated
//! inputs each run: none may panic, and every input that is accepted must satisfy the rules,
//! checked here by a second, plainer reading of the same input. The inputs are built to the
//! shape of real ones and then bent, and each test counts every way through separately (each
//! kind of acceptance, each reason for a refusal), so a generator that stopped reaching one is
//! seen.

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{AccessToken, CsrfToken, Nonce, RefreshToken};
use std::collections::BTreeMap;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{json, Value};
use url::Url;

use crate::callback::{parse_callback, Callback, ExpectedCallback};
use crate::config::is_loopback;
use crate::discovery::{check_metadata, LogtoProviderMetadata};
use crate::session::{RawIdToken, Session, Tokens, User};
use crate::tokens::{CachedToken, TokenCache, TokenKey};

const STATE: &str = "s-123_AbC";
const ISSUER: &str = "http://127.0.0.1:3001/oidc";

/// Inputs generated per property and run.
const CASES: u32 = 3000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Query values that are sometimes right, sometimes nearly right, sometimes noise.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(STATE.to_string()),
        Just(format!("{STATE}x")),
        Just(ISSUER.to_string()),
        Just(format!("{ISSUER}/")),
        Just(String::new()),
        "[A-Za-z0-9_.~%+&=#/-]{0,12}",
        any::<String>(),
    ]
}

fn pair() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just("state".to_string()),
            Just("code".to_string()),
            Just("iss".to_string()),
            Just("error".to_string()),
            Just("error_description".to_string()),
            Just("sta%74e".to_string()),
            "[a-z_]{0,8}",
        ],
        value(),
    )
}

fn target() -> impl Strategy<Value = String> {
    let path = prop_oneof![
        Just("/callback".to_string()),
        Just("/callback/".to_string()),
        Just("/Callback".to_string()),
        Just("//callback".to_string()),
        Just("/%63allback".to_string()),
        "/[a-z%./]{0,10}",
    ];
    let structured = (path, prop::collection::vec(pair(), 0..6), any::<bool>()).prop_map(
        |(path, pairs, raw)| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    if raw {
                        format!("{k}={v}")
                    } else {
                        let v: String =
                            url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                        format!("{k}={v}")
                    }
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        },
    );
    prop_oneof![2 => near_valid(), 1 => structured, 1 => any::<String>()]
}

/// A callback Logto could send (`code` or `error`, with `state` and `iss`), then bent: one part
/// dropped or not, a few pairs added, the order turned.
fn near_valid() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        "[A-Za-z0-9_-]{1,43}",
        0..6usize,
        prop::collection::vec(pair(), 0..3),
        0..6usize,
    )
        .prop_map(|(refused, code, drop, extra, turn)| {
            let mut pairs: Vec<(String, String)> = vec![
                ("state".into(), STATE.into()),
                ("iss".into(), ISSUER.into()),
            ];
            if refused {
                pairs.push(("error".into(), "access_denied".into()));
                pairs.push(("error_description".into(), code));
            } else {
                pairs.push(("code".into(), code));
            }
            if drop < pairs.len() {
                pairs.remove(drop);
            }
            pairs.extend(extra);
            let turn = turn % pairs.len().max(1);
            pairs.rotate_left(turn);
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            format!("/callback?{query}")
        })
}

/// The plain reading: every value of `name` in the query, decoded.
fn values(target: &str, name: &str) -> Vec<String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// Runs `property` on [`CASES`] generated inputs (panicking with the smallest failing one). The
/// property names the way each input went; the result counts each way.
fn run<S: Strategy>(
    strategy: S,
    property: impl Fn(S::Value) -> Result<&'static str, TestCaseError>,
) -> BTreeMap<&'static str, usize> {
    let ways = Mutex::new(BTreeMap::new());
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |value| {
        let way = property(value)?;
        *ways
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(way)
            .or_insert(0) += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Counted over the shrinking runs too, which only add: a floor still means what it says.
    ways.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Asserts that each of `ways` was taken at least `floor` times.
fn each_at_least(counted: &BTreeMap<&'static str, usize>, ways: &[&str], floor: usize) {
    eprintln!("{counted:?}");
    for way in ways {
        let n = counted.get(way).copied().unwrap_or(0);
        assert!(
            n >= floor,
            "{way}: {n} of {CASES} inputs (at least {floor} expected): {counted:?}"
        );
    }
}

#[test]
fn the_callback_parser_accepts_only_what_the_rules_allow() {
    let counted = run((target(), any::<bool>()), |(target, requires_iss)| {
        callback_property(&target, requires_iss)
    });
    each_at_least(&counted, &["code", "refused", "rejected"], 100);
}

fn callback_property(target: &str, requires_iss: bool) -> Result<&'static str, TestCaseError> {
    {
        let state = CsrfToken::new(STATE.into());
        let expected = ExpectedCallback {
            path: "/callback",
            state: &state,
            issuer: ISSUER,
            requires_iss,
        };
        let result = parse_callback(target, &expected);
        if let Ok(callback) = result {
            let path = target.split(['?', '#']).next().unwrap_or_default();
            prop_assert_eq!(path, "/callback");
            prop_assert_eq!(values(target, "state"), vec![STATE.to_string()]);
            let iss = values(target, "iss");
            prop_assert!(iss.len() <= 1);
            if requires_iss {
                prop_assert_eq!(iss, vec![ISSUER.to_string()]);
            } else {
                prop_assert!(iss.iter().all(|i| i == ISSUER));
            }
            for name in ["code", "error", "error_description"] {
                prop_assert!(values(target, name).len() <= 1, "{} repeated", name);
            }
            return match callback {
                Callback::Code(code) => {
                    prop_assert!(values(target, "error").is_empty());
                    prop_assert!(!code.secret().is_empty());
                    prop_assert_eq!(values(target, "code"), vec![code.secret().clone()]);
                    Ok("code")
                }
                Callback::Refused(refusal) => {
                    prop_assert!(!refusal.error.is_empty());
                    prop_assert!(refusal.error.chars().count() <= 64);
                    prop_assert!(!refusal.error.chars().any(char::is_control));
                    Ok("refused")
                }
            };
        }
    }
    Ok("rejected")
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[ -~]{1,24}", any::<String>()]
}

/// JSON shaped like a keychain entry of either format (format 1 holds the raw ID token `idt`,
/// format 2 the kept claims `idc` instead), with every field sometimes missing, mistyped or odd.
fn entry() -> impl Strategy<Value = String> {
    let field = |good: Value| {
        prop_oneof![
            40 => Just(Some(good)),
            1 => Just(None),
            1 => Just(Some(Value::Null)),
            1 => any::<i64>().prop_map(|n| Some(json!(n))),
            1 => text().prop_map(|s| Some(json!(s))),
        ]
    };
    // The ID token part of either format, or a mix of both (which no version writes).
    let id_part = prop_oneof![
        4 => (Just(json!(1)), field(json!("a.b.c")), Just(None)),
        4 => (
            Just(json!(2)),
            Just(None),
            field(json!({"iss": ISSUER, "sub": "u1", "aud": "app1", "exp": 1_900_000_000u64})),
        ),
        1 => (
            prop_oneof![Just(json!(1)), Just(json!(2))],
            field(json!("a.b.c")),
            field(json!({"sub": "u1"})),
        ),
    ];
    (
        (id_part, field(json!(1))),
        field(json!(ISSUER)),
        field(json!("app1")),
        field(json!({"sub": "u1", "identities": []})),
        field(json!("RT")),
        field(json!(1_900_000_000u64)),
        field(json!("AT")),
        field(json!("N")),
    )
        .prop_map(
            |(((v, idt, idc), bent_v), iss, aud, user, rt, at_exp, at, nonce)| {
                // Sometimes the version itself is bent too.
                let v = if bent_v == Some(json!(1)) {
                    Some(v)
                } else {
                    bent_v
                };
                let mut map = serde_json::Map::new();
                for (k, f) in [
                    ("v", v),
                    ("iss", iss),
                    ("aud", aud),
                    ("user", user),
                    ("rt", rt),
                    ("idt", idt),
                    ("at_exp", at_exp),
                    ("at", at),
                    ("nonce", nonce),
                    ("idc", idc),
                ] {
                    if let Some(f) = f {
                        map.insert(k.into(), f);
                    }
                }
                Value::Object(map).to_string()
            },
        )
}

/// A compact JWS whose payload is `claims` (the signature is not checked in the entry).
fn jwt(claims: &Value) -> String {
    use base64::Engine;
    let part = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2ln", part(&json!({"alg": "ES384"})), part(claims))
}

/// A session as a sign-in makes it: an ID token whose claims are the session's (some with
/// roles and organizations enough to be too large for the entry), an access token or none, a
/// scope or none.
fn session() -> impl Strategy<Value = Session> {
    (
        "[!-~]{1,40}",
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of("[!-~]{1,80}"),
        prop_oneof![2 => 0usize..800, 1 => 1500usize..6000],
        prop::option::of("[!-~]{1,600}"),
        prop::option::of(0u64..u64::MAX),
        prop::option::of("[!-~]{1,60}"),
        prop::option::of("[a-z ]{1,40}"),
    )
        .prop_map(|(sub, name, email, rt, roles, at, at_exp, nonce, scope)| {
            let claims = json!({
                "iss": ISSUER, "sub": sub, "aud": "app1", "exp": 1_900_000_000u64,
                "iat": 1_800_000_000u64, "roles": "r".repeat(roles),
            });
            let mut access = TokenCache::default();
            if let Some(at) = at {
                access.insert(
                    TokenKey::default(),
                    CachedToken {
                        token: AccessToken::new(at),
                        expires_at: at_exp,
                        lifetime: None,
                        scope: scope.clone(),
                    },
                );
            }
            Session {
                issuer: ISSUER.into(),
                client_id: "app1".into(),
                user: User {
                    sub,
                    name,
                    username: None,
                    email,
                    picture: None,
                    identities: Vec::new(),
                },
                tokens: Tokens {
                    refresh_token: rt.map(RefreshToken::new),
                    id_token: Some(RawIdToken::new(jwt(&claims))),
                    scope,
                },
                access,
                nonce: nonce.map(Nonce::new),
                id_claims: claims,
            }
        })
}

#[test]
fn the_entry_decoder_never_panics_and_accepts_only_whole_entries() {
    let counted = run(prop_oneof![4 => entry(), 1 => any::<String>()], |text| {
        let Ok(session) = Session::decode(&text, ISSUER, "app1") else {
            return Ok("refused");
        };
        let value: Value = serde_json::from_str(&text).expect("accepted text is JSON");
        prop_assert_eq!(session.issuer.as_str(), ISSUER);
        prop_assert_eq!(session.client_id.as_str(), "app1");
        prop_assert!(!session.user.sub.is_empty());
        prop_assert_eq!(
            session.tokens.refresh_token.map(|t| t.secret().clone()),
            value["rt"].as_str().map(str::to_string)
        );
        prop_assert_eq!(
            session.nonce.map(|n| n.secret().clone()),
            value["nonce"].as_str().map(str::to_string)
        );
        match value["v"].as_u64() {
            // Format 1: the raw ID token.
            Some(1) => {
                prop_assert_eq!(
                    session.tokens.id_token.map(|t| t.secret().to_string()),
                    value["idt"].as_str().map(str::to_string)
                );
                prop_assert!(value.get("idc").is_none_or(Value::is_null));
                Ok("format 1")
            }
            // Format 2: the kept claims, naming the same user, and no raw token.
            Some(2) => {
                prop_assert!(session.tokens.id_token.is_none());
                prop_assert!(value.get("idt").is_none_or(Value::is_null));
                prop_assert_eq!(&session.id_claims, &value["idc"]);
                prop_assert_eq!(
                    session.id_claims["sub"].as_str(),
                    Some(session.user.sub.as_str())
                );
                Ok("format 2")
            }
            other => {
                prop_assert!(false, "accepted format {:?}", other);
                unreachable!()
            }
        }
    });
    each_at_least(&counted, &["format 1", "format 2", "refused"], 300);
}

#[test]
fn what_is_encoded_decodes_to_the_same_session() {
    let counted = run(session(), |session| {
        let Some(text) = session.encode() else {
            // Only a refresh token (or nonce) of kilobytes may make it too large, and these are
            // not.
            prop_assert!(false, "a session was refused: {:?}", session);
            unreachable!()
        };
        // README and SECURITY.md: one entry of at most 2,560 bytes.
        prop_assert!(text.len() <= 2560, "{} bytes", text.len());
        let back = Session::decode(&text, ISSUER, "app1").expect("decodes");
        prop_assert_eq!(&back.user, &session.user);
        prop_assert_eq!(
            back.tokens
                .refresh_token
                .as_ref()
                .map(|t| t.secret().clone()),
            session
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.secret().clone())
        );
        prop_assert_eq!(
            back.nonce.as_ref().map(|n| n.secret().clone()),
            session.nonce.as_ref().map(|n| n.secret().clone())
        );
        // The default access token comes back whole, or (when room ran out) not at all.
        let access = |s: &Session| {
            s.default_access_token()
                .map(|t| t.secret().clone())
                .zip(Some(
                    s.access
                        .get(&TokenKey::default())
                        .and_then(|t| t.expires_at),
                ))
        };
        let (kept, had) = (access(&back), access(&session));
        prop_assert!(kept.is_none() || kept == had, "{:?}", kept.map(|k| k.1));
        let scope_kept = back.tokens.scope == session.tokens.scope;
        prop_assert!(scope_kept || back.tokens.scope.is_none());
        match &back.tokens.id_token {
            // Format 1: the raw token, and its claims read from it.
            Some(token) => {
                prop_assert_eq!(
                    Some(token.secret()),
                    session.tokens.id_token.as_ref().map(|t| t.secret())
                );
                prop_assert_eq!(&back.id_claims, &session.id_claims);
                // What can be had again goes first: the access token before the scope.
                prop_assert!(
                    scope_kept || kept.is_none(),
                    "the scope went before the access token"
                );
                Ok(if kept.is_some() {
                    "format 1 with its access token"
                } else {
                    "format 1"
                })
            }
            // Format 2: exactly the kept claims, because the token would not fit.
            None => {
                let token = session
                    .tokens
                    .id_token
                    .as_ref()
                    .map_or(0, |t| t.secret().len());
                prop_assert!(token > 2560 / 2, "a {}-byte ID token was left out", token);
                for (claim, value) in session.id_claims.as_object().into_iter().flatten() {
                    let kept_claim = crate::session::KEPT_CLAIMS.contains(&claim.as_str());
                    prop_assert_eq!(
                        back.id_claims.get(claim),
                        kept_claim.then_some(value),
                        "{}",
                        claim
                    );
                }
                Ok("format 2")
            }
        }
    });
    each_at_least(
        &counted,
        &["format 1 with its access token", "format 1", "format 2"],
        100,
    );
}

fn url_for(field: &'static str) -> impl Strategy<Value = String> {
    let scheme = prop_oneof![4 => Just("https"), 2 => Just("http"), 1 => Just("ftp"), 1 => Just("javascript")];
    let host = prop_oneof![
        4 => Just("tenant.logto.app"),
        2 => Just("127.0.0.1"),
        1 => Just("localhost"),
        1 => Just("[::1]"),
        1 => Just("evil.example"),
        1 => Just("tenant.logto.app.evil.example"),
    ];
    let port =
        prop_oneof![4 => Just(""), 1 => Just(":443"), 1 => Just(":8443"), 1 => Just(":3001")];
    (scheme, host, port).prop_map(move |(s, h, p)| format!("{s}://{h}{p}/oidc/{field}"))
}

fn document() -> impl Strategy<Value = (String, Value)> {
    let issuer = prop_oneof![
        Just("https://tenant.logto.app/oidc".to_string()),
        Just("http://127.0.0.1:3001/oidc".to_string()),
        Just("http://tenant.logto.app/oidc".to_string()),
    ];
    let algs = prop::collection::vec(
        prop_oneof![
            Just("none"),
            Just("HS256"),
            Just("HS512"),
            Just("RS256"),
            Just("ES384"),
            Just("EdDSA"),
            Just("PS256"),
            Just("ES256"),
        ],
        0..4,
    );
    let methods = prop::option::of(prop::collection::vec(
        prop_oneof![Just("S256"), Just("plain")],
        0..3,
    ));
    let endpoint = |field: &'static str| (prop::bool::weighted(0.9), url_for(field));
    (
        issuer,
        prop::bool::weighted(0.9),
        (
            endpoint("auth"),
            endpoint("token"),
            endpoint("me"),
            endpoint("jwks"),
            endpoint("revocation"),
            endpoint("end"),
        ),
        algs,
        methods,
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(issuer, same_issuer, urls, algs, methods, iss)| {
            // Mostly endpoints on the issuer's own origin, so that acceptance is reached often.
            let own = |field: &str, (own, other): (bool, String)| {
                if own {
                    format!("{issuer}/{field}")
                } else {
                    other
                }
            };
            let mut doc = json!({
                "issuer": if same_issuer { issuer.clone() } else { format!("{issuer}/") },
                "authorization_endpoint": own("auth", urls.0),
                "token_endpoint": own("token", urls.1),
                "userinfo_endpoint": own("me", urls.2),
                "jwks_uri": own("jwks", urls.3),
                "revocation_endpoint": own("revocation", urls.4),
                "end_session_endpoint": own("end", urls.5),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": algs,
            });
            if let Some(methods) = methods {
                doc["code_challenge_methods_supported"] = json!(methods);
            }
            if let Some(iss) = iss {
                doc["authorization_response_iss_parameter_supported"] = json!(iss);
            }
            (issuer, doc)
        })
}

/// The reason a refusal of `check_metadata` gives, by its words.
fn reason(error: &crate::AuthError) -> &'static str {
    let words = error.to_string();
    [
        ("names the issuer", "another issuer"),
        ("only https", "plain http off loopback"),
        ("on another origin", "another origin"),
        ("PKCE", "no S256"),
        ("algorithms this app refuses", "no accepted algorithm"),
    ]
    .into_iter()
    .find(|(said, _)| words.contains(said))
    .map_or("another reason", |(_, reason)| reason)
}

#[test]
fn accepted_discovery_documents_keep_every_rule() {
    let counted = run(document(), |(expected, doc)| {
        let Ok(metadata) = serde_json::from_value::<LogtoProviderMetadata>(doc.clone()) else {
            return Ok("not a document");
        };
        let checked = check_metadata(&expected, &metadata);
        if let Err(e) = &checked {
            return Ok(reason(e));
        }
        if let Ok((algs, requires_iss)) = checked {
            prop_assert_eq!(doc["issuer"].as_str(), Some(expected.as_str()));
            let issuer = Url::parse(&expected).expect("issuer");
            for field in [
                "issuer",
                "authorization_endpoint",
                "token_endpoint",
                "userinfo_endpoint",
                "jwks_uri",
                "revocation_endpoint",
                "end_session_endpoint",
            ] {
                let url = Url::parse(doc[field].as_str().unwrap_or_default()).expect("a URL");
                prop_assert_eq!(url.origin(), issuer.origin(), "{} on another origin", field);
                prop_assert!(
                    url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)),
                    "{} over {}",
                    field,
                    url
                );
            }
            prop_assert!(!algs.is_empty());
            prop_assert!(algs.iter().all(|a| !matches!(
                a,
                CoreJwsSigningAlgorithm::None
                    | CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
            )));
            if let Some(methods) = doc.get("code_challenge_methods_supported") {
                prop_assert!(methods
                    .as_array()
                    .is_some_and(|m| m.contains(&json!("S256"))));
            }
            prop_assert_eq!(
                requires_iss,
                doc["authorization_response_iss_parameter_supported"] == json!(true)
            );
        }
        Ok("accepted")
    });
    each_at_least(
        &counted,
        &[
            "accepted",
            "another issuer",
            "plain http off loopback",
            "another origin",
            "no S256",
            "no accepted algorithm",
        ],
        50,
    );
    assert!(!counted.contains_key("another reason"), "{counted:?}");
    assert!(!counted.contains_key("not a document"), "{counted:?}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_json_as_a_discovery_document_never_panics(text in any::<String>(), issuer in text()) {
        if let Ok(metadata) = serde_json::from_str::<LogtoProviderMetadata>(&text) {
            let _ = check_metadata(&issuer, &metadata);
        }
    }
}
