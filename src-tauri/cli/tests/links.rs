//! The command line is a small program (issue 17): none of the window's libraries (GTK,
//! WebKitGTK and what they bring) is loaded when a script runs `logto-desktop token`. Read from
//! what the dynamic loader resolves for the binary this build made.

#[cfg(target_os = "linux")]
#[test]
fn the_command_line_loads_no_library_of_the_window() {
    let out = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_logto-desktop"))
        .output()
        .expect("ldd (libc-bin) runs");
    assert!(out.status.success(), "ldd failed: {out:?}");
    let libraries = String::from_utf8_lossy(&out.stdout);
    let window: Vec<&str> = libraries
        .lines()
        .filter(|line| {
            [
                "gtk",
                "gdk",
                "webkit",
                "javascriptcore",
                "soup",
                "cairo",
                "glib",
            ]
            .iter()
            .any(|name| line.contains(name))
        })
        .collect();
    assert!(window.is_empty(), "the window's libraries: {window:#?}");
    // The keychain's D-Bus client and what it brings, and libc's own: about a dozen, where the
    // window loads about 170.
    assert!(
        libraries.lines().count() < 20,
        "{} libraries: {libraries}",
        libraries.lines().count()
    );
}
