//! Opening the system browser (RFC 8252: never an embedded web view), behind a seam so tests can
//! hand the URL to a browser they drive.

use url::Url;

/// Opens a URL in a browser the person trusts: the system browser in the app
/// ([`SystemBrowser`]), a browser a test drives, or a program's own. The sign-in hands it the
/// authorization URL.
pub trait Browser: Send + Sync {
    /// Opens `url`; the error text is shown to the person, so it must not contain the URL.
    fn open(&self, url: &Url) -> Result<(), String>;
}

/// The desktop's default browser, through the `open` crate (`xdg-open` on Linux). With the
/// `system-browser` feature (a default one).
#[cfg(feature = "system-browser")]
pub struct SystemBrowser;

#[cfg(feature = "system-browser")]
impl Browser for SystemBrowser {
    fn open(&self, url: &Url) -> Result<(), String> {
        // Detached: xdg-open may stay in the foreground for as long as a new browser runs.
        open::that_detached(url.as_str()).map_err(|e| e.kind().to_string())
    }
}
