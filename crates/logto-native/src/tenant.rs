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

/// The parts of the sign-in experience document this app reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    /// The connectors sign-in offers: Logto lists every connector whose target is in
    /// `socialSignInConnectorTargets`, with its id, target, name and logos.
    social_connectors: Vec<Connector>,
}

#[derive(Debug, Deserialize)]
struct Connector {
    target: String,
}

/// What a tenant's sign-in offers, as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialOffer {
    /// Connector targets offered on the sign-in page (`amazon`, `google`, ...), sorted.
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

/// Reads the tenant's sign-in experience.
pub async fn fetch(http: &Http, config: &Config) -> Result<SocialOffer, AuthError> {
    let url = document_url(config)?;
    let document: Document = get_json(http, &url).await.map_err(|e| match e {
        AuthError::BadAnswer(m) => {
            AuthError::BadAnswer(format!("the sign-in experience could not be read ({m})"))
        }
        other => other,
    })?;
    let mut targets: Vec<String> = document
        .social_connectors
        .into_iter()
        .map(|c| c.target)
        .collect();
    targets.sort();
    targets.dedup();
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

    /// Where the answer is kept across starts.
    pub fn default_path() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("logto-desktop").join("sign-in-exp.json"))
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

/// A file that cannot be read or parsed is as good as none.
fn read_file(path: &Path) -> Option<Known> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
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
    fn only_connectors_listed_for_sign_in_count() {
        // The shape of Logto 1.x's answer, cut down.
        let document: Document = serde_json::from_value(serde_json::json!({
            "socialSignInConnectorTargets": ["amazon", "google"],
            "socialConnectors": [
                { "id": "k3x9", "target": "amazon", "name": { "en": "Amazon" }, "logo": "", "platform": "Web" },
                { "id": "p2m1", "target": "google", "name": { "en": "Google" }, "logo": "" }
            ],
            "signIn": { "methods": [] }
        }))
        .unwrap();
        let targets: Vec<_> = document
            .social_connectors
            .iter()
            .map(|c| c.target.as_str())
            .collect();
        assert_eq!(targets, ["amazon", "google"]);
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
        let stand = crate::stand::Stand::start();
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
        let stand = crate::stand::Stand::start();
        let (service, _) = stand.service();
        let error = service.check_sign_in_experience().await.unwrap_err();
        assert!(error.to_string().contains("404"), "{error}");
        assert!(!service.amazon_missing(), "the button stays");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_the_document_changes_nothing() {
        let stand = crate::stand::Stand::start();
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
}
