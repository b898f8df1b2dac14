//! `make bench`, measure 7 (issue 9): `get_access_token` when the token is cached and fresh,
//! the path every API call of a signed-in app takes. No network and no keychain on this path;
//! criterion times it in microseconds. `make test` runs it once (criterion's test mode).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use logto_desktop::auth::session::{RawIdToken, Session, Tokens, User};
use logto_desktop::auth::tokens::{CachedToken, TokenCache, TokenKey};
use logto_desktop::auth::{AuthService, Config, MemoryStore, SystemBrowser, TokenStore};
use openidconnect::{AccessToken, Nonce, RefreshToken};

/// A service restored from an entry whose default access token has an hour to live.
fn restored(runtime: &tokio::runtime::Runtime) -> AuthService {
    let config = Config::new("https://tenant.logto.app", "app1").expect("config");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut access = TokenCache::default();
    access.insert(
        TokenKey::default(),
        CachedToken {
            token: AccessToken::new("a".repeat(43)),
            expires_at: Some(now + 3600),
            lifetime: Some(3600),
            scope: Some("openid profile".into()),
        },
    );
    let session = Session {
        issuer: config.issuer(),
        client_id: config.app_id.clone(),
        user: User {
            sub: "u1".into(),
            name: Some("Alice".into()),
            username: None,
            email: None,
            picture: None,
            identities: Vec::new(),
        },
        tokens: Tokens {
            refresh_token: Some(RefreshToken::new("r".repeat(43))),
            id_token: Some(RawIdToken::new("h.p.s".into())),
            scope: None,
        },
        access,
        nonce: Some(Nonce::new("n".repeat(43))),
        id_claims: serde_json::json!({"iss": config.issuer(), "sub": "u1", "aud": "app1"}),
    };
    let store = Arc::new(MemoryStore::default());
    store
        .save(&session.encode().expect("an entry"))
        .expect("the store");
    let service = AuthService::new(config, store, Arc::new(SystemBrowser)).expect("service");
    runtime
        .block_on(service.restore())
        .expect("restore")
        .expect("a user");
    service
}

fn cached(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let service = restored(&runtime);
    c.bench_function("get_access_token, cached", |b| {
        b.to_async(&runtime).iter(|| async {
            let token = service
                .get_access_token(None, None)
                .await
                .expect("the cached token");
            std::hint::black_box(token);
        })
    });
}

criterion_group!(benches, cached);
criterion_main!(benches);
