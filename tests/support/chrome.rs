//! Debian's Chromium, headless, driven through chromedriver: the "system browser" of the core's
//! end-to-end tests. [`ChannelBrowser`] is the core's `Browser` seam: it hands each URL the core
//! opens to the test, which then drives Chromium there.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use logto_desktop::auth::Browser;
use tokio::sync::mpsc;
use url::Url;

use super::free_port;

/// Hands every URL the core wants opened to the test.
pub struct ChannelBrowser(pub mpsc::UnboundedSender<Url>);

impl Browser for ChannelBrowser {
    fn open(&self, url: &Url) -> Result<(), String> {
        self.0
            .send(url.clone())
            .map_err(|_| "the test browser is gone".to_string())
    }
}

pub fn channel_browser() -> (ChannelBrowser, mpsc::UnboundedReceiver<Url>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ChannelBrowser(tx), rx)
}

/// Opens a WebDriver session over plain HTTP (drivers listen on loopback; no TLS needed).
pub async fn webdriver_client(
    port: u16,
    caps: serde_json::Map<String, serde_json::Value>,
) -> Result<Client, String> {
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(caps);
    super::bounded("opening a WebDriver session", builder.connect(&url))
        .await
        .map_err(|e| e.to_string())
}

/// chromedriver plus one Chromium session with a fresh profile.
pub struct Chrome {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub async fn start() -> Chrome {
        let profile = tempfile::tempdir().expect("a Chromium profile folder");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let mut last_error = String::new();
        // A busy machine can be slow to start chromedriver, and the free port can be taken by
        // another test before chromedriver binds it (it then exits): wait longer, and start it
        // again on another port when it has gone.
        for _ in 0..3 {
            let port = free_port();
            let mut driver = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting chromedriver (apt-get install chromium-driver)");
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(status)) = driver.try_wait() {
                    last_error = format!("chromedriver ended ({status})");
                    break;
                }
                match webdriver_client(port, caps.clone()).await {
                    Ok(client) => {
                        return Chrome {
                            client,
                            driver,
                            _profile: profile,
                        }
                    }
                    Err(e) => last_error = e,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
        panic!("could not start a Chromium session: {last_error}");
    }

    pub async fn goto(&self, url: &str) {
        super::bounded("navigating Chromium", self.client.goto(url))
            .await
            .expect("navigating Chromium");
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let element = self.wait_for(id).await;
        super::bounded("typing in Chromium", element.send_keys(text))
            .await
            .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
    }

    pub async fn click(&self, id: &str) {
        let element = self.wait_for(id).await;
        super::bounded("clicking in Chromium", element.click())
            .await
            .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
    }

    pub async fn wait_for(&self, id: &str) -> fantoccini::elements::Element {
        let wait = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id(id));
        match super::bounded("waiting in Chromium", wait).await {
            Ok(element) => element,
            Err(e) => {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let source = self.client.source().await.unwrap_or_default();
                panic!("#{id} did not appear ({e}) at {url}:\n{source}");
            }
        }
    }

    /// Signs in on the provider's own page.
    pub async fn sign_in_with_password(&self, url: &str, username: &str, password: &str) {
        self.goto(url).await;
        self.fill("username", username).await;
        self.fill("password", password).await;
        self.click("submit").await;
    }

    /// Signs in on the Amazon stand-in (where `direct_sign_in=social:amazon` sends the browser).
    /// Checks the browser really is on the stand-in's origin, not a page of the provider's.
    pub async fn sign_in_with_amazon(
        &self,
        url: &str,
        amazon_origin: &str,
        email: &str,
        password: &str,
    ) {
        self.goto(url).await;
        self.wait_for("ap_email").await;
        let here = self.client.current_url().await.expect("current URL");
        assert_eq!(
            here.origin().ascii_serialization(),
            amazon_origin,
            "the browser is at Amazon's stand-in"
        );
        self.fill("ap_email", email).await;
        self.fill("ap_password", password).await;
        self.click("signInSubmit").await;
    }

    /// The loopback page's `<main id=...>`: `ok`, `refused`, `failed`, `unrelated`.
    pub async fn landed_on(&self, id: &str) {
        self.wait_for(id).await;
    }

    /// Ends the browser session; the driver itself stops on drop.
    pub async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(20), self.client.clone().close()).await;
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
