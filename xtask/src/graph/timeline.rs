//! When each node of a run was ready (its last dependency done), started
//! and ended: where a build spent its time, which `-v` prints. Knows
//! nodes only by their index, id and dependencies.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When each node that ran was ready (its last dependency settled),
/// started and ended, from the run's start: where a cold build spent its
/// time, printed with `-v`.
pub struct Timeline {
    start: Instant,
    spans: Mutex<BTreeMap<usize, Span>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Span {
    ready: Duration,
    started: Duration,
    ended: Duration,
    fetched: bool,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            start: Instant::now(),
            spans: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Timeline {
    /// Node `index` starts now.
    pub fn started(&self, index: usize) {
        let now = self.start.elapsed();
        let mut spans = self.spans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        spans.entry(index).or_default().started = now;
    }

    /// Node `index` ended now (`fetched`: from the remote cache).
    pub fn ended(&self, index: usize, fetched: bool) {
        let now = self.start.elapsed();
        let mut spans = self.spans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let span = spans.entry(index).or_default();
        span.ended = now;
        span.fetched = fetched;
    }

    /// Each node that ran, by when it started: how long it waited once
    /// ready, how long it ran, and how many nodes were cached.
    /// `nodes`: each node's id and dependencies, by index; `cached`: how
    /// many were up to date already.
    pub fn report(&self, nodes: &[(String, &[usize])], cached: usize, built: &[usize]) -> Vec<String> {
        let spans = self.spans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ended = |index: usize| spans.get(&index).map_or(Duration::ZERO, |span| span.ended);
        let mut ran: Vec<(Span, usize)> = built
            .iter()
            .filter_map(|&index| {
                let mut span = *spans.get(&index)?;
                span.ready = nodes[index]
                    .1
                    .iter()
                    .map(|&dep| ended(dep))
                    .max()
                    .unwrap_or(Duration::ZERO);
                Some((span, index))
            })
            .collect();
        ran.sort_by_key(|(span, index)| (span.started, *index));
        let mut lines = vec![format!(
            "timeline: {} node(s) ran, {cached} cached; seconds from the start: ready, started (waited), ended (ran)",
            ran.len()
        )];
        for (span, index) in ran {
            lines.push(format!(
                "  {:<24} ready {:>6.2}  started {:>6.2} (waited {:.2})  ended {:>6.2} (ran {:.2}){}",
                nodes[index].0,
                span.ready.as_secs_f64(),
                span.started.as_secs_f64(),
                span.started.saturating_sub(span.ready).as_secs_f64(),
                span.ended.as_secs_f64(),
                span.ended.saturating_sub(span.started).as_secs_f64(),
                if span.fetched { ", fetched" } else { "" }
            ));
        }
        lines
    }
}
