//! One running window per person and profile, on Linux: the first launch owns a name on the
//! session bus; a later launch asks that process to show its window, and exits. It is built on the
//! `dbus` crate the keychain already links (the single-instance plugin brings a second D-Bus stack,
//! about 0.6 MB of the binary, for the same two calls).

use std::time::Duration;

use dbus::blocking::stdintf::org_freedesktop_dbus::RequestNameReply;
use dbus::blocking::Connection;
use dbus::channel::{MatchingReceiver, Sender};
use dbus::message::MatchRule;

const PATH: &str = "/io/logto/desktop/Window";
const INTERFACE: &str = "io.logto.desktop.Window";
const SHOW: &str = "Show";

/// What a launch found.
pub enum Launch {
    /// This process owns the name: it runs the window and answers later launches.
    First(Owner),
    /// Another process runs the window and was asked to show it.
    HandedOver,
    /// Another process owns the name but did not answer.
    OwnerSilent(String),
    /// There is no session bus to ask (or it refused): the app runs without the guard.
    Unguarded(String),
}

/// The bus connection that owns the name, for [`Owner::serve`].
pub struct Owner {
    connection: Connection,
}

/// Takes `name` on the session bus, or asks its owner to show its window.
pub fn claim(name: &str) -> Launch {
    let connection = match Connection::new_session() {
        Ok(connection) => connection,
        Err(e) => return Launch::Unguarded(e.to_string()),
    };
    match connection.request_name(name, false, false, true) {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {
            Launch::First(Owner { connection })
        }
        Ok(RequestNameReply::Exists | RequestNameReply::InQueue) => {
            let owner = connection.with_proxy(name, PATH, Duration::from_secs(5));
            match owner.method_call::<(), _, _, _>(INTERFACE, SHOW, ()) {
                Ok(()) => Launch::HandedOver,
                Err(e) => Launch::OwnerSilent(e.to_string()),
            }
        }
        Err(e) => Launch::Unguarded(e.to_string()),
    }
}

impl Owner {
    /// Answers later launches, on a thread of its own for as long as the process runs: each
    /// `Show` call runs `show`.
    pub fn serve(self, show: impl Fn() + Send + 'static) {
        let connection = self.connection;
        let spawned = std::thread::Builder::new()
            .name("single-instance".into())
            .spawn(move || {
                connection.start_receive(
                    MatchRule::new_method_call(),
                    Box::new(move |call, connection| {
                        let ours = call.path().as_deref() == Some(PATH)
                            && call.interface().as_deref() == Some(INTERFACE)
                            && call.member().as_deref() == Some(SHOW);
                        let reply = if ours {
                            show();
                            call.method_return()
                        } else {
                            call.error(
                                &"org.freedesktop.DBus.Error.UnknownMethod".into(),
                                c"this object only has Show",
                            )
                        };
                        let _ = connection.send(reply);
                        true
                    }),
                );
                while connection.process(Duration::from_secs(3600)).is_ok() {}
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "later launches will not find this window");
        }
    }
}
