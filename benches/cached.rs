//! `make bench`, measure 7 (issue 9): `get_access_token` when the token is cached and fresh,
//! the path every API call of a signed-in app takes. No network and no keychain on this path;
//! criterion times it in microseconds. `make test` runs it once (criterion's test mode).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use logto_desktop::auth::{AuthService, Config, MemoryStore, SystemBrowser, TokenStore};

/// A service restored from an entry whose default access token has an hour to live. The entry
/// is written as the core writes it (format 1: the JSON of `session.rs`), since its types are
/// the core's own; a format the core stopped reading makes the restore below fail loudly.
fn restored(runtime: &tokio::runtime::Runtime) -> AuthService {
    let config = Config::new("https://tenant.logto.app", "app1").expect("config");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let entry = serde_json::json!({
        "v": 1,
        "iss": config.issuer(),
        "aud": config.app_id,
        "user": {"sub": "u1", "name": "Alice"},
        "at": "a".repeat(43),
        "at_exp": now + 3600,
        "rt": "r".repeat(43),
        "idt": "h.p.s",
        "nonce": "n".repeat(43),
        "scope": "openid profile",
    });
    let store = Arc::new(MemoryStore::default());
    store.save(&entry.to_string()).expect("the store");
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
