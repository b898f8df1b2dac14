//! What the benchmarks share: the provider's scripted browser, a browser seam that uses it, the
//! samples and comparisons they print, and the chart of every ratio against its goal.

#![allow(dead_code)] // each benchmark uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logto_desktop::auth::Browser;

/// The tests' provider launcher, shared as it is (each benchmark uses only part of it).
#[path = "../../tests/support/idp.rs"]
pub mod idp;

pub mod support {
    //! What the provider launcher expects of its crate (`crate::support::http`).
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client")
    }
}
use serde_json::{json, Value};
use url::Url;

/// Starts a script of `tests/idp` that answers each line it reads with one line.
pub fn node(args: &[&str]) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp");
    let mut child = Command::new("node")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("node tests/idp/{}: {e}", args.join(" ")));
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdin, stdout)
}

/// The provider's own sign-in page, driven by `tests/idp/support/browser-cli.js`: it returns the
/// callback URL the provider redirects to, untimed; the caller requests it, timed.
pub struct Scripted {
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    _child: Child,
}

impl Scripted {
    pub fn start() -> Scripted {
        let (child, stdin, stdout) = node(&["support/browser-cli.js"]);
        Scripted {
            io: Mutex::new((stdin, stdout)),
            _child: child,
        }
    }

    /// Signs in at `url` and returns where the provider sends the browser back.
    pub fn callback_for(&self, url: &str) -> Url {
        let mut io = self.io.lock().expect("browser lock");
        writeln!(io.0, "{url}").expect("to the browser");
        let mut line = String::new();
        io.1.read_line(&mut line).expect("from the browser");
        Url::parse(line.trim()).unwrap_or_else(|_| panic!("the browser said {line:?}"))
    }
}

/// The app's browser seam: records when it was asked to open, and (when `deliver`) comes back
/// to the loopback with the code, recording when the callback request left.
pub struct BenchBrowser {
    pub scripted: Arc<Scripted>,
    pub deliver: Mutex<bool>,
    pub opened_at: Arc<Mutex<Option<Instant>>>,
    pub callback_sent_at: Arc<Mutex<Option<Instant>>>,
}

impl BenchBrowser {
    pub fn new(scripted: &Arc<Scripted>) -> Arc<BenchBrowser> {
        Arc::new(BenchBrowser {
            scripted: scripted.clone(),
            deliver: Mutex::new(true),
            opened_at: Arc::new(Mutex::new(None)),
            callback_sent_at: Arc::new(Mutex::new(None)),
        })
    }
}

impl Browser for BenchBrowser {
    fn open(&self, url: &Url) -> Result<(), String> {
        *self.opened_at.lock().expect("lock") = Some(Instant::now());
        if !url.query_pairs().any(|(k, _)| k == "redirect_uri")
            || !*self.deliver.lock().expect("lock")
        {
            return Ok(());
        }
        let callback = self.scripted.callback_for(url.as_str());
        let sent = self.callback_sent_at.clone();
        std::thread::spawn(move || {
            let host = format!("127.0.0.1:{}", callback.port().unwrap_or(80));
            let target = callback[url::Position::BeforePath..].to_string();
            let mut stream = std::net::TcpStream::connect(&host).expect("the loopback");
            *sent.lock().expect("lock") = Some(Instant::now());
            write!(
                stream,
                "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .expect("the callback");
            let mut page = Vec::new();
            let _ = stream.read_to_end(&mut page);
        });
        Ok(())
    }
}

/// What a sample measures.
#[derive(Clone, Copy)]
pub enum Unit {
    Ms,
    Mb,
    /// A process's peak resident memory: the kernel counts it in KiB, so goals are in MiB.
    Mib,
}

impl Unit {
    fn tag(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Mb => "MB",
            Unit::Mib => "MiB",
        }
    }
}

pub struct Samples {
    pub name: &'static str,
    pub unit: Unit,
    pub values: Vec<f64>,
}

impl Samples {
    pub fn new(name: &'static str) -> Self {
        Samples::of(name, Unit::Ms)
    }
    pub fn of(name: &'static str, unit: Unit) -> Self {
        Samples {
            name,
            unit,
            values: Vec::new(),
        }
    }
    pub fn push(&mut self, d: Duration) {
        self.values.push(d.as_secs_f64() * 1e3);
    }
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }
    fn json(&self) -> Value {
        let unit = self.unit.tag();
        json!({
            "name": self.name,
            "n": self.values.len(),
            "unit": unit,
            "median": round2(self.median()),
            "p10": round2(self.quantile(0.1)),
            "p90": round2(self.quantile(0.9)),
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What a comparison must reach.
#[derive(Clone, Copy)]
pub enum Goal {
    /// Gives scale only.
    None,
    /// The ratio of the medians at most this.
    Ratio(f64),
    /// The measure at most this much above its baseline, in the samples' unit.
    Plus(f64),
    /// The ratio of the 10th percentiles at most this: for a baseline whose launches sometimes
    /// stall for reasons of its own, so that its median says more about the stalls than about it.
    FastRatio(f64),
    /// The measure's median at most this, in the samples' unit, whatever the baseline: for a
    /// budget of its own (the command line's peak memory).
    AtMost(f64),
}

/// One comparison: a measure, its baseline, and the goal.
pub struct Comparison {
    pub title: &'static str,
    pub measure: Samples,
    pub baseline: Samples,
    pub goal: Goal,
}

impl Comparison {
    pub fn ratio(&self) -> f64 {
        let base = self.baseline.median();
        if base == 0.0 {
            return f64::NAN;
        }
        self.measure.median() / base
    }
    /// The ratio of the 10th percentiles (the undisturbed runs of each).
    pub fn fast_ratio(&self) -> f64 {
        let base = self.baseline.quantile(0.1);
        if base == 0.0 {
            return f64::NAN;
        }
        self.measure.quantile(0.1) / base
    }
    /// The ratio the goal is judged on, and the chart shows.
    fn judged_ratio(&self) -> f64 {
        match self.goal {
            Goal::FastRatio(_) => self.fast_ratio(),
            _ => self.ratio(),
        }
    }
    /// The goal as a ratio, where the chart puts its mark.
    fn goal_ratio(&self) -> Option<f64> {
        match self.goal {
            Goal::None => None,
            Goal::Ratio(r) | Goal::FastRatio(r) => Some(r),
            Goal::Plus(d) => Some((self.baseline.median() + d) / self.baseline.median()),
            Goal::AtMost(m) => Some(m / self.baseline.median()),
        }
    }
    fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::None => None,
            Goal::Ratio(r) => Some(self.ratio() <= r),
            Goal::FastRatio(r) => Some(self.fast_ratio() <= r),
            Goal::Plus(d) => Some(self.measure.median() - self.baseline.median() <= d),
            Goal::AtMost(m) => Some(self.measure.median() <= m),
        }
    }
    fn goal_text(&self) -> String {
        let unit = self.measure.unit.tag();
        match self.goal {
            Goal::None => "for scale".into(),
            Goal::Ratio(r) => format!("goal at most {r:.2}x"),
            Goal::FastRatio(r) => format!("goal at most {r:.2}x of the p10s"),
            Goal::Plus(d) => format!("goal at most +{d:.1} {unit}"),
            Goal::AtMost(m) => format!("goal at most {m:.1} {unit}"),
        }
    }
    pub fn print(&self) {
        let unit = self.measure.unit.tag();
        println!("\n{}", self.title);
        println!(
            "  {:<44} {:>10} {:>10} {:>10} {:>4}",
            "", "median", "p10", "p90", "n"
        );
        for s in [&self.measure, &self.baseline] {
            println!(
                "  {:<44} {:>8.2}{unit} {:>8.2}{unit} {:>8.2}{unit} {:>4}",
                s.name,
                s.median(),
                s.quantile(0.1),
                s.quantile(0.9),
                s.values.len()
            );
        }
        let ratio = self.ratio();
        let diff = self.measure.median() - self.baseline.median();
        let verdict = match self.met() {
            None => String::new(),
            Some(true) => ": met".into(),
            Some(false) => ": MISSED".into(),
        };
        println!(
            "  ratio {ratio:.2}x ({diff:+.2} {unit}; of the p10s {:.2}x), {}{verdict}",
            self.fast_ratio(),
            self.goal_text()
        );
    }
    pub fn json(&self) -> Value {
        json!({
            "title": self.title,
            "measure": self.measure.json(),
            "baseline": self.baseline.json(),
            "ratio": round2(self.judged_ratio()),
            "median_ratio": round2(self.ratio()),
            "p10_ratio": round2(self.fast_ratio()),
            "goal": self.goal_text(),
            "goal_ratio": self.goal_ratio().map(round2),
            "met": self.met(),
        })
    }
}

/// A bar per comparison (as written by [`Comparison::json`]): its ratio, with its goal as a
/// mark, on one scale.
pub fn chart(comparisons: &[Value], machine: &str) -> String {
    let (width, left, bar, gap) = (1000.0, 390.0, 22.0, 18.0);
    let top = 48.0;
    let ratio_of = |c: &Value| c["ratio"].as_f64().unwrap_or(f64::NAN);
    let goal_of = |c: &Value| c["goal_ratio"].as_f64();
    let scale_max = comparisons
        .iter()
        .map(|c| ratio_of(c).max(goal_of(c).unwrap_or(0.0)))
        .filter(|r| r.is_finite())
        .fold(1.5_f64, f64::max)
        .ceil();
    // Room on the right for the ratio and the goal written after the longest bar.
    let x = |ratio: f64| left + (width - left - 270.0) * (ratio / scale_max);
    let height = top + comparisons.len() as f64 * (bar + gap) + 40.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Ratio to the baseline measured in the same run (lower is better; | is the goal)</text>\n\
         <text x=\"12\" y=\"38\" fill=\"#555\">{}</text>\n",
        html_escape(machine)
    );
    for (i, c) in comparisons.iter().enumerate() {
        let y = top + i as f64 * (bar + gap);
        let ratio = ratio_of(c);
        let color = match c["met"].as_bool() {
            Some(true) => "#2e7d32",
            Some(false) => "#c62828",
            None => "#757575",
        };
        svg.push_str(&format!(
            "<text x=\"12\" y=\"{ty}\">{label}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{color}\"/>\n",
            ty = y + bar * 0.7,
            label = html_escape(c["title"].as_str().unwrap_or("")),
            w = (x(ratio) - left).max(1.0),
        ));
        let mark = goal_of(c).unwrap_or(0.0);
        if goal_of(c).is_some() {
            svg.push_str(&format!(
                "<line x1=\"{gx:.1}\" x2=\"{gx:.1}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#000\" stroke-width=\"2\"/>\n",
                gx = x(mark),
                y0 = y - 3.0,
                y1 = y + bar + 3.0,
            ));
        }
        let said = format!("{ratio:.2}x ({})", c["goal"].as_str().unwrap_or(""));
        svg.push_str(&format!(
            "<text x=\"{tx:.1}\" y=\"{ty}\">{}</text>\n",
            html_escape(&said),
            tx = x(ratio.max(mark)) + 6.0,
            ty = y + bar * 0.7,
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The CPU and core count, printed with every result.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

/// The value after `--name` on the command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
