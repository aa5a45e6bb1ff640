//! Progress reporting, kept apart from results: core code calls a
//! [`Progress`]; only the command layer picks how it is drawn (indicatif
//! lines on a terminal, plain lines otherwise, nothing with `--quiet`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub trait Progress: Sync {
    /// `item` entered a new phase (`installing`, `zipping`, …).
    fn phase(&self, item: &str, phase: &str);
    /// `item` is done; `outcome` is one short line.
    fn done(&self, item: &str, outcome: &str);
    /// A note that is not tied to one item.
    fn note(&self, message: &str);
}

/// Picks the reporter for this invocation.
pub fn for_terminal(quiet: bool) -> Box<dyn Progress> {
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
