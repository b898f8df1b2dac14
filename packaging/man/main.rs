//! Writes logto-desktop's man pages, in roff, into the folder it is given: `logto-desktop.1`, and
//! a page for each command (`logto-desktop-token.1`, ...), which the first page's COMMANDS section
//! names the way git's pages do. They are made with clap_mangen from `src-tauri/cli/args.rs`, the
//! definition the program parses its command line with, so they say what `--help` says.
//! `packaging/deb.sh` runs it: `cargo run -p logto-desktop-man -- FOLDER`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

// Only the definition is read here, never the values a parse fills in.
#[allow(dead_code)]
#[path = "../../src-tauri/cli/args.rs"]
mod args;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: logto-desktop-man FOLDER");
        return ExitCode::from(2);
    };
    // `logto-desktop help X` is `logto-desktop X --help`: it gets no page of its own.
    let mut command = args::command().disable_help_subcommand(true);
    command.build();
    // Every page's footer names the program and its version, as the first page's does.
    let source = format!(
        "{} {}",
        command.get_name(),
        command.get_version().unwrap_or_default()
    );
    match write_pages(&command, None, &source, Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logto-desktop-man: {}: {e}", Path::new(&dir).display());
            ExitCode::FAILURE
        }
    }
}

/// The preamble clap_mangen writes before each section it renders alone: kept once, at the top.
const PREAMBLE: &[u8] = b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// The page of `command` and those of its visible subcommands, each named after its display name
/// (`logto-desktop-token`), which `build()` set. `parent` is the page a command's page refers to.
fn write_pages(
    command: &clap::Command,
    parent: Option<&str>,
    source: &str,
    dir: &Path,
) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(command.clone()).source(source);
    let mut page = PREAMBLE.to_vec();
    let mut section = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut text = Vec::new();
        render(&mut text)?;
        page.extend_from_slice(text.strip_prefix(PREAMBLE).unwrap_or(&text));
        Ok::<_, std::io::Error>(())
    };
    section(&|w| man.render_title(w))?;
    section(&|w| man.render_name_section(w))?;
    section(&|w| man.render_synopsis_section(w))?;
    section(&|w| man.render_description_section(w))?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        section(&|w| man.render_options_section(w))?;
    }
    let subcommands: Vec<&clap::Command> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .collect();
    if !subcommands.is_empty() {
        section(&|w| man.render_subcommands_section(w))?;
    }
    if let Some(text) = command.get_after_help() {
        section(&|w| after_help(w, &text.to_string()))?;
    }
    if command.get_version().is_some() {
        section(&|w| man.render_version_section(w))?;
    }
    if let Some(parent) = parent {
        page.extend_from_slice(b".SH \"SEE ALSO\"\n");
        writeln!(page, "{}(1)", roff_escape(parent))?;
    }
    std::fs::write(dir.join(man.get_filename()), page)?;

    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name());
    for subcommand in subcommands {
        write_pages(subcommand, Some(name), source, dir)?;
    }
    Ok(())
}

/// The text after `--help`'s options, as a section of its own, its lines kept as they are (it is
/// laid out as a table); clap_mangen's EXTRA section would run them together into one paragraph.
/// A first line like `Exit codes:` is the section's heading.
fn after_help(page: &mut Vec<u8>, text: &str) -> std::io::Result<()> {
    let mut lines = text.lines().peekable();
    let heading = match lines.peek().and_then(|l| l.trim().strip_suffix(':')) {
        Some(heading) => {
            lines.next();
            heading.to_uppercase()
        }
        None => "NOTES".to_string(),
    };
    writeln!(page, ".SH \"{}\"", roff_escape(&heading))?;
    page.extend_from_slice(b".nf\n");
    for line in lines {
        writeln!(page, "{}", roff_escape(line))?;
    }
    page.extend_from_slice(b".fi\n");
    Ok(())
}

/// `text` as roff text: backslashes and hyphens escaped, and a leading `.` or `'` made literal, so
/// that no line is read as a request.
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
