//! The tenant check: which social sign-in methods the tenant's sign-in experience offers, read
//! from Logto's public `<endpoint>/api/.well-known/sign-in-exp` (the document Logto's own sign-in
//! page is drawn from). With `direct_sign_in=social:amazon`, a tenant without an Amazon
//! connector silently shows Logto's first screen instead, so the window asks first.
//!
//! It is advice, never a gate: a sign-in never waits for it, and when the document cannot be read
//! (an older Logto, no network, a proxy in the way) nothing is concluded and every button stays.
//! The last answer is kept in a small file in the cache folder (it holds nothing secret: the
//! document is public), so a later start draws the right first screen without waiting, and then
//! asks again.
//!
//! Of the document (up to 1 MiB, written by whoever runs the tenant) only the social connector
//! targets are kept, and only plain ones: at most [`MAX_TARGETS`], each at most
//! [`MAX_TARGET_LEN`] ASCII letters, digits, `-` or `_`. Anything else is dropped and only counted,
//! so neither the info log nor the cache file ever holds more than a couple of KiB of it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use url::Url;

use super::config::Config;
use super::error::AuthError;
use super::http::{get_json, Http};

/// How long an answer is trusted before the window asks again (on its next signed-out screen);
/// a new start always asks again.
pub const FRESH_FOR: Duration = Duration::from_secs(10 * 60);

/// The connector target of Amazon in Logto (its `direct_sign_in=social:amazon`).
pub const AMAZON: &str = "amazon";

/// The most connector targets kept. A sign-in page shows a handful of social buttons; a longer
/// list is cut, keeping [`AMAZON`] (the one the app asks about) so the cut never changes the
/// answer.
pub const MAX_TARGETS: usize = 32;

/// The longest connector target kept. Logto's are short names (`google`, `amazon`, `azure-ad`);
/// a longer one is nothing the app would ask about.
pub const MAX_TARGET_LEN: usize = 64;

/// The largest cache file read back; a kept answer is a few hundred bytes.
const MAX_CACHE_FILE: u64 = 64 * 1024;

/// The parts of the sign-in experience document this app reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    /// The connectors sign-in offers: Logto lists every connector whose target is in
    /// `socialSignInConnectorTargets`, with its id, target, name and logos. Read as plain JSON so
    /// that one odd entry is dropped rather than failing the whole answer.
    social_connectors: Vec<serde_json::Value>,
}

impl Document {
    /// The connectors' targets, as given (see [`plain_targets`] for what is kept).
    fn targets(&self) -> impl Iterator<Item = &str> {
        self.social_connectors
            .iter()
            .filter_map(|c| c.get("target")?.as_str())
    }
}

/// Whether `target` has the shape of a Logto connector target: 1 to [`MAX_TARGET_LEN`] ASCII
/// letters, digits, `-` or `_`.
fn is_plain_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= MAX_TARGET_LEN
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The targets kept of `given`: plain ones only, sorted, without repeats, at most
/// [`MAX_TARGETS`] with [`AMAZON`] kept whenever it was given. Also returns how many of `given`
/// were not kept (repeats included), which is all that may be said about them.
fn plain_targets<'a>(given: impl IntoIterator<Item = &'a str>) -> (Vec<String>, usize) {
    let mut seen = 0;
    let mut targets: Vec<String> = given
        .into_iter()
        .inspect(|_| seen += 1)
        .filter(|t| is_plain_target(t))
        .map(str::to_string)
        .collect();
    targets.sort();
    targets.dedup();
    if targets.len() > MAX_TARGETS {
        let amazon = targets.iter().any(|t| t == AMAZON);
        let others = MAX_TARGETS - usize::from(amazon);
        let mut kept: Vec<String> = targets
            .into_iter()
            .filter(|t| t != AMAZON)
            .take(others)
            .collect();
        if amazon {
            kept.push(AMAZON.to_string());
            kept.sort();
        }
        targets = kept;
    }
    let dropped = seen - targets.len();
    (targets, dropped)
}

/// What a tenant's sign-in offers, as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialOffer {
    /// Connector targets offered on the sign-in page (`amazon`, `google`, ...), sorted; at most
    /// [`MAX_TARGETS`] of at most [`MAX_TARGET_LEN`] plain characters each.
    pub targets: Vec<String>,
}

impl SocialOffer {
    /// Whether the sign-in page offers the connector with this target (e.g. `amazon`), exactly as
    /// Logto names it.
    pub fn offers(&self, target: &str) -> bool {
        self.targets.iter().any(|t| t == target)
    }
}

/// The address of the document for `config`'s tenant and app (Logto applies an app's own
/// sign-in experience when told the app id).
pub fn document_url(config: &Config) -> Result<Url, AuthError> {
    let base = config.endpoint.as_str().trim_end_matches('/');
    let mut url = Url::parse(&format!("{base}/api/.well-known/sign-in-exp"))
        .map_err(|_| AuthError::Config("the endpoint does not form a sign-in-exp URL".into()))?;
    url.query_pairs_mut().append_pair("appId", &config.app_id);
    Ok(url)
}

/// Reads the tenant's sign-in experience, keeping only its plain connector targets (see the
/// module's notes).
pub async fn fetch(http: &Http, config: &Config) -> Result<SocialOffer, AuthError> {
    let url = document_url(config)?;
    let document: Document = get_json(http, &url).await.map_err(|e| match e {
        AuthError::BadAnswer(m) => {
            AuthError::BadAnswer(format!("the sign-in experience could not be read ({m})"))
        }
        other => other,
    })?;
    let (targets, dropped) = plain_targets(document.targets());
    if dropped > 0 {
        // Only the count: what was dropped is the tenant's text, of any size.
        tracing::debug!(
            dropped,
            "connector entries of the sign-in experience were not kept"
        );
    }
    Ok(SocialOffer { targets })
}

/// The last answer, in memory and in a file, for one tenant and app.
pub struct OfferCache {
    /// `<endpoint> <app id>`: a file written for another tenant is not this one's answer.
    key: String,
    file: Option<PathBuf>,
    known: Mutex<Option<Known>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Known {
    key: String,
    /// Seconds since the Unix epoch.
    checked_at: u64,
    offer: SocialOffer,
}

impl OfferCache {
    /// A cache for `config`'s tenant, kept in `file` across starts (memory only without one).
    pub fn new(config: &Config, file: Option<PathBuf>) -> Self {
        let key = format!("{} {}", config.endpoint, config.app_id);
        // A kept answer draws the first screen but is asked again at once: whoever just fixed
        // the tenant and restarts the app should not wait out a stale answer.
        let known = file
            .as_deref()
            .and_then(read_file)
            .filter(|known| known.key == key)
            .map(|known| Known {
                checked_at: 0,
                ..known
            });
        OfferCache {
            key,
            file,
            known: Mutex::new(known),
        }
    }

    // Only `AuthService::on_this_system` keeps the answer in the system's cache folder.
    #[cfg(all(feature = "os-keychain", feature = "system-browser"))]
    /// Where the answer is kept across starts: `<cache dir>/<program>/sign-in-exp.json`, the
    /// program's folder named as for the signed-out marks.
    pub fn default_path(keychain_service: &str) -> Option<PathBuf> {
        let folder = crate::config::folder_of(keychain_service);
        dirs::cache_dir().map(|d| d.join(folder).join("sign-in-exp.json"))
    }

    /// The last answer, however old; None when none was ever read.
    pub fn offer(&self) -> Option<SocialOffer> {
        self.lock().as_ref().map(|k| k.offer.clone())
    }

    /// Whether the last answer is recent enough not to ask again.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        let now = seconds(now);
        self.lock()
            .as_ref()
            .is_some_and(|k| now.saturating_sub(k.checked_at) < FRESH_FOR.as_secs())
    }

    /// Keeps a new answer; returns whether it differs from the last one.
    pub fn put(&self, offer: SocialOffer, now: SystemTime) -> bool {
        let known = Known {
            key: self.key.clone(),
            checked_at: seconds(now),
            offer,
        };
        if let Some(file) = &self.file {
            if let Err(e) = write_file(file, &known) {
                // Only the next start's first screen is affected: it asks again.
                tracing::debug!(error = %e, "the sign-in experience was not cached on disk");
            }
        }
        let mut current = self.lock();
        let changed = current.as_ref().map(|k| &k.offer) != Some(&known.offer);
        *current = Some(known);
        changed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A file that cannot be read or parsed, or is larger than any answer this app writes, is as good
/// as none. Fields it does not know (of another version) are ignored, and its targets are kept
/// as a fresh answer's would be.
fn read_file(path: &Path) -> Option<Known> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_CACHE_FILE + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_CACHE_FILE {
        return None;
    }
    let mut known: Known = serde_json::from_slice(&bytes).ok()?;
    let (targets, _) = plain_targets(known.offer.targets.iter().map(String::as_str));
    known.offer.targets = targets;
    Some(known)
}

fn write_file(path: &Path, known: &Known) -> std::io::Result<()> {
    let json = serde_json::to_vec(known).map_err(std::io::Error::other)?;
    crate::config::write_atomically(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> Config {
        Config::new(endpoint, "app-1").unwrap()
    }

    #[test]
    fn the_document_is_asked_for_this_app_under_the_endpoint() {
        let url = document_url(&config("https://tenant.example.com")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://tenant.example.com/api/.well-known/sign-in-exp?appId=app-1"
        );
    }

    #[test]
    fn a_target_counts_only_when_its_connector_is_listed() {
        // The shape of Logto 1.x's answer, cut down: the sign-in experience names `amazon` and
        // `google`, but only Google's connector is installed, so only it is listed (Logto leaves
        // out targets without a connector), and Amazon's button would lead nowhere.
        let document: Document = serde_json::from_value(serde_json::json!({
            "socialSignInConnectorTargets": ["amazon", "google"],
            "socialConnectors": [
                { "id": "p2m1", "target": "google", "name": { "en": "Google" }, "logo": "" }
            ],
            "signIn": { "methods": [] }
        }))
        .unwrap();
        let targets: Vec<_> = document.targets().collect();
        assert_eq!(targets, ["google"]);
        assert!(serde_json::from_value::<Document>(serde_json::json!({ "signIn": {} })).is_err());
    }

    #[test]
    fn an_endpoint_with_a_path_keeps_it() {
        let url = document_url(&config("https://example.com/logto/")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.com/logto/api/.well-known/sign-in-exp?appId=app-1"
        );
    }

    const DOCUMENT: &str = "/api/.well-known/sign-in-exp";

    #[tokio::test]
    async fn a_tenant_without_amazon_is_told_apart_and_asked_once_while_fresh() {
        let stand = crate::tests::stand::Stand::start();
        let body = serde_json::json!({
            "socialSignInConnectorTargets": ["google"],
            "socialConnectors": [{ "id": "g1", "target": "google", "name": { "en": "Google" } }],
        });
        stand.serve_file(DOCUMENT, "application/json", body.to_string().into_bytes());
        let (service, _) = stand.service();
        assert!(!service.amazon_missing(), "nothing known: the button stays");
        assert!(service.check_sign_in_experience().await.unwrap());
        assert!(service.amazon_missing());
        assert!(!service.check_sign_in_experience().await.unwrap());
        assert_eq!(
            stand.count(&format!("GET {DOCUMENT}")),
            1,
            "asked once while fresh"
        );
    }

    #[tokio::test]
    async fn an_older_logto_without_the_document_changes_nothing() {
        let stand = crate::tests::stand::Stand::start();
        let (service, _) = stand.service();
        let error = service.check_sign_in_experience().await.unwrap_err();
        assert!(error.to_string().contains("404"), "{error}");
        assert!(!service.amazon_missing(), "the button stays");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_the_document_changes_nothing() {
        let stand = crate::tests::stand::Stand::start();
        stand.serve_file(
            DOCUMENT,
            "text/html",
            b"<html>a proxy's page</html>".to_vec(),
        );
        let (service, _) = stand.service();
        assert!(service.check_sign_in_experience().await.is_err());
        assert!(!service.amazon_missing());
    }

    #[test]
    fn an_answer_survives_a_restart_for_the_same_tenant_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("sign-in-exp.json");
        let now = SystemTime::now();
        let first = OfferCache::new(&config("https://a.example.com"), Some(file.clone()));
        assert_eq!(first.offer(), None);
        assert!(!first.is_fresh(now));
        let offer = SocialOffer { targets: vec![] };
        assert!(first.put(offer.clone(), now));
        assert!(
            !first.put(offer.clone(), now),
            "the same answer is no change"
        );

        assert!(first.is_fresh(now));
        assert!(!first.is_fresh(now + FRESH_FOR));

        let again = OfferCache::new(&config("https://a.example.com"), Some(file.clone()));
        assert_eq!(again.offer(), Some(offer));
        assert!(!again.is_fresh(now), "a new start asks again");

        let other = OfferCache::new(&config("https://b.example.com"), Some(file.clone()));
        assert_eq!(
            other.offer(),
            None,
            "another tenant's answer is not this one's"
        );

        std::fs::write(&file, b"{not json").unwrap();
        let broken = OfferCache::new(&config("https://a.example.com"), Some(file));
        assert_eq!(broken.offer(), None);
    }

    /// A document as a tenant could write it: 150 plain targets that all sort before `amazon`,
    /// each with a 1.5 KiB name and logos, then `amazon`, `google`, and entries that are not
    /// plain, one of them a 200 KiB target.
    fn a_large_document() -> serde_json::Value {
        let big = "x".repeat(1536);
        let mut connectors: Vec<serde_json::Value> = (0..150)
            .map(|i| {
                serde_json::json!({
                    "id": format!("id{i}"), "target": format!("a{i:03}"),
                    "name": { "en": big }, "logo": big, "logoDark": big,
                })
            })
            .collect();
        connectors.extend([
            serde_json::json!({ "target": "amazon", "name": { "en": big } }),
            serde_json::json!({ "target": "google" }),
            serde_json::json!({ "target": "google" }),
            serde_json::json!({ "target": "y".repeat(MAX_TARGET_LEN + 1) }),
            serde_json::json!({ "target": "y".repeat(200 * 1024) }),
            serde_json::json!({ "target": "<script>alert(1)</script>" }),
            serde_json::json!({ "target": "two words" }),
            serde_json::json!({ "target": "" }),
            serde_json::json!({ "target": 42 }),
            serde_json::json!({ "target": { "nested": big } }),
            serde_json::json!({ "id": "no-target", "name": big }),
            serde_json::json!("not a connector"),
        ]);
        serde_json::json!({ "socialConnectors": connectors, "signIn": { "methods": [] } })
    }

    /// Parts of [`a_large_document`] that must not be kept: its fields other than targets, its
    /// targets that are not plain, and the plain ones past the cap.
    const NOT_KEPT: [&str; 8] = [
        "xxxx",
        "yyyy",
        "script",
        "two words",
        "google",
        "a031",
        "id0",
        "nested",
    ];

    #[tokio::test]
    async fn a_large_document_leaves_only_capped_plain_targets_in_the_cache_and_the_log() {
        let stand = crate::tests::stand::Stand::start();
        let body = a_large_document().to_string().into_bytes();
        assert!(
            body.len() > 768 * 1024,
            "close to the 1 MiB the client reads"
        );
        stand.serve_file(DOCUMENT, "application/json", body);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sign-in-exp.json");
        let service = stand.service_with(Default::default(), |s| s.with_offer_file(file.clone()));
        service.check_sign_in_experience().await.unwrap();
        assert!(!service.amazon_missing(), "the cut keeps amazon");

        let cached = std::fs::read_to_string(&file).unwrap();
        assert!(cached.len() < 1024, "{} bytes cached", cached.len());
        for rest in NOT_KEPT {
            assert!(!cached.contains(rest), "{rest} cached");
        }

        // What the service logs is `?offer.targets` of this same call.
        let http = crate::http::client().unwrap();
        let offer = fetch(&http, &stand.config()).await.unwrap();
        let logged = format!("{:?}", offer.targets);
        assert!(logged.len() < 512, "{} bytes logged", logged.len());
        for rest in NOT_KEPT {
            assert!(!logged.contains(rest), "{rest} logged");
        }

        let mut expected: Vec<String> = (0..MAX_TARGETS - 1).map(|i| format!("a{i:03}")).collect();
        expected.push(AMAZON.into());
        assert_eq!(offer.targets, expected);
        let cached: serde_json::Value = serde_json::from_str(&cached).unwrap();
        assert_eq!(cached["offer"], serde_json::json!({ "targets": expected }));
    }

    #[test]
    fn targets_are_plain_capped_and_keep_amazon() {
        let (targets, dropped) = plain_targets(["google", "azure-ad", "x_1", "google", "a.b", "é"]);
        assert_eq!(targets, ["azure-ad", "google", "x_1"]);
        assert_eq!(dropped, 3);
        let long = "z".repeat(MAX_TARGET_LEN);
        let (targets, _) = plain_targets([long.as_str()]);
        assert_eq!(targets, [long], "exactly the longest kept");
        let many: Vec<String> = (0..100).map(|i| format!("t{i:02}")).collect();
        let (targets, dropped) = plain_targets(many.iter().map(String::as_str));
        assert_eq!(targets.len(), MAX_TARGETS);
        assert_eq!(dropped, 100 - MAX_TARGETS);
        assert!(!targets.iter().any(|t| t == AMAZON));
    }

    #[test]
    fn an_older_cache_file_with_other_fields_still_loads_and_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sign-in-exp.json");
        let config = config("https://a.example.com");
        let key = format!("{} {}", config.endpoint, config.app_id);
        // As another version could have written it: fields this one does not know, and more
        // targets than it keeps.
        let mut targets: Vec<String> = (0..40).map(|i| format!("a{i:02}")).collect();
        targets.extend(["amazon".into(), "<b>".into(), "w".repeat(100)]);
        let old = serde_json::json!({
            "key": key, "checked_at": 1_700_000_000u64, "version": 0,
            "offer": { "targets": targets, "names": { "amazon": "Amazon" } },
        });
        std::fs::write(&file, old.to_string()).unwrap();
        let cache = OfferCache::new(&config, Some(file.clone()));
        let offer = cache.offer().expect("the old file loads");
        assert_eq!(offer.targets.len(), MAX_TARGETS);
        assert!(offer.offers(AMAZON));
        assert!(
            offer.targets.iter().all(|t| is_plain_target(t)),
            "{offer:?}"
        );
        assert!(!cache.is_fresh(SystemTime::now()));

        // A file larger than any answer written is not read at all.
        let mut huge = old.clone();
        huge["padding"] = serde_json::json!("p".repeat(MAX_CACHE_FILE as usize));
        std::fs::write(&file, huge.to_string()).unwrap();
        assert_eq!(OfferCache::new(&config, Some(file)).offer(), None);
    }
}
