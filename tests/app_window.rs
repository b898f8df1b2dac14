//! The real app binary under Xvfb, driven through its window with tauri-driver and
//! WebKitWebDriver, against the provider, with Chromium as the browser the app opens (an
//! `xdg-open` shim first on PATH hands each URL to the test) and the real Secret Service.

#[tokio::test(flavor = "current_thread")]
async fn placeholder_window() {}
