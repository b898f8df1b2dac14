//! Captures everything logged in this test process, from every thread and every crate, at
//! TRACE, with the `log` crate bridged into `tracing` (reqwest and others log through `log`), so
//! a test can grep what the core logged for the secrets of its run. Logs of every test in the
//! process land in the same capture; each test greps for its own run's values.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURED: OnceLock<Captured> = OnceLock::new();

/// The process-wide capture, installed on first use as the global subscriber.
pub fn capture() -> Captured {
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            // `try_init` also installs the `log` bridge (tracing-subscriber's tracing-log feature).
            let installed = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init();
            assert!(
                installed.is_ok(),
                "another global subscriber was installed first"
            );
            captured
        })
        .clone()
}
