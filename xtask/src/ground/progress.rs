//! What a run tells people, decided once per run: the [`Printer`] (machine
//! output on stdout, human text on stderr, warnings that survive `--quiet`,
//! details at `-v`, a closed pipe that ends quietly) and [`Progress`], which
//! core code calls and only the printer decides how to draw (indicatif lines
//! on a terminal, plain lines otherwise, nothing with `--quiet`). Whatever
//! it prints, it prints with the credentials of URLs redacted.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ground::redact;

pub trait Progress: Sync {
    /// `item` entered a new phase (`installing`, `zipping`, …).
    fn phase(&self, item: &str, phase: &str);
    /// `item` is done; `outcome` is one short line.
    fn done(&self, item: &str, outcome: &str);
    /// A note that is not tied to one item.
    fn note(&self, message: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

/// The one printer of a run.
pub struct Printer {
    pub verbosity: Verbosity,
    progress: Box<dyn Progress>,
}

impl Printer {
    pub fn new(verbosity: Verbosity) -> Printer {
        Printer {
            verbosity,
            progress: Box::new(Redacted(for_terminal(verbosity == Verbosity::Quiet))),
        }
    }

    pub fn progress(&self) -> &dyn Progress {
        self.progress.as_ref()
    }

    /// Machine output (`--json`, plans) on stdout. A reader that went away
    /// (`| head`) ends the run quietly instead of a panic.
    pub fn out(&self, text: &str) {
        let text = redact::urls(text);
        let mut stdout = std::io::stdout().lock();
        let written = stdout
            .write_all(text.as_bytes())
            .and_then(|()| {
                if text.ends_with('\n') {
                    Ok(())
                } else {
                    stdout.write_all(b"\n")
                }
            })
            .and_then(|()| stdout.flush());
        if let Err(err) = written {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }

    /// Human text: results and summaries. Hidden by `--quiet`.
    pub fn info(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.progress.note(text);
        }
    }

    /// Details shown with `-v`: why each node runs.
    pub fn detail(&self, text: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.progress.note(text);
        }
    }

    /// Always printed, `--quiet` or not.
    pub fn warn(&self, text: &str) {
        if self.verbosity == Verbosity::Quiet {
            eprintln!("warning: {}", redact::urls(text));
        } else {
            self.progress.note(&format!("warning: {text}"));
        }
    }

    /// Always printed: what failed.
    pub fn error(&self, text: &str) {
        if self.verbosity == Verbosity::Quiet {
            eprintln!("error: {}", redact::urls(text));
        } else {
            self.progress.note(&format!("error: {text}"));
        }
    }
}

/// Every reporter's text, its URLs' credentials redacted: core code may
/// report what it was given (an index URL, an installer's stderr).
struct Redacted(Box<dyn Progress>);

impl Progress for Redacted {
    fn phase(&self, item: &str, phase: &str) {
        self.0.phase(&redact::urls(item), &redact::urls(phase));
    }
    fn done(&self, item: &str, outcome: &str) {
        self.0.done(&redact::urls(item), &redact::urls(outcome));
    }
    fn note(&self, message: &str) {
        self.0.note(&redact::urls(message));
    }
}

/// Picks the reporter for this invocation.
fn for_terminal(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::default())
    } else {
        Box::new(Lines)
    }
}

pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str, _: &str) {}
    fn done(&self, _: &str, _: &str) {}
    fn note(&self, _: &str) {}
}

/// Plain lines on stderr: logs and CI.
pub struct Lines;

impl Progress for Lines {
    fn phase(&self, _: &str, _: &str) {}
    fn done(&self, item: &str, outcome: &str) {
        eprintln!("  {item}: {outcome}");
    }
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// One live line per item on a terminal.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Bars {
    fn bar(&self, item: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("progress lock");
        bars.entry(item.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix:<12} {msg} {elapsed:>4}")
                        .expect("template"),
                );
                bar.set_prefix(item.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Progress for Bars {
    fn phase(&self, item: &str, phase: &str) {
        self.bar(item).set_message(phase.to_string());
    }
    fn done(&self, item: &str, outcome: &str) {
        let bar = self.bar(item);
        bar.set_style(ProgressStyle::with_template("  {prefix:<12} {msg}").expect("template"));
        bar.finish_with_message(outcome.to_string());
    }
    fn note(&self, message: &str) {
        let _ = self.multi.println(message);
    }
}

/// `2.1 MiB`-style sizes for people (MiB, as AWS counts them).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `+2.1 MiB`, `−300.0 KiB` (a minus sign), `±0 B`.
pub fn signed_bytes(delta: i64) -> String {
    match delta.signum() {
        0 => "±0 B".to_string(),
        1 => format!("+{}", human_bytes(delta.unsigned_abs())),
        _ => format!("\u{2212}{}", human_bytes(delta.unsigned_abs())),
    }
}

/// A duration in milliseconds for people.
pub fn ms(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{ms:.0} ms"),
        None => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(2_202_009), "2.1 MiB");
        assert_eq!(signed_bytes(2_202_009), "+2.1 MiB");
        assert_eq!(signed_bytes(-307_200), "\u{2212}300.0 KiB");
        assert_eq!(signed_bytes(0), "±0 B");
    }
}
