//! `cargo xtask audit [FUNCTION...] [--deny SEVERITY]`: every distribution
//! the functions ship (brought up to date first, as `check-limits` does)
//! checked against OSV's advisories for PyPI, from a local export
//! (`XTASK_OSV_DB`) or OSV's API. Findings at or above the threshold fail
//! (exit 1); no advisory database to ask is a named skip (exit 3), never a pass.

use anyhow::Result;

use crate::cli::args::AuditArgs;
use crate::commands::graph_run::Repo;
use crate::config::audit::{Date, Severity};
use crate::graph::Kind;
use crate::ground::atomic;
use crate::ground::error::{Failed, NoVerdict, UsageError};
use crate::report::{self, audit as shown, render};
use crate::steps::osv::{self, Answer, Source};
use crate::steps::{audit, audit::Outcome};

pub fn run(args: AuditArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let (config, printer) = (&repo.config, &repo.printer);
    let deny = match &args.deny {
        None => config.audit.deny,
        Some(text) => Some(Severity::parse(text).ok_or_else(|| {
            UsageError::new(format!(
                "--deny: unknown severity `{text}` (use {})",
                Severity::NAMES
            ))
        })?),
    };
    if let Some(unknown) = args
        .functions
        .iter()
        .find(|name| !config.functions.contains_key(*name))
    {
        let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
        let message = format!("unknown function `{unknown}` (configured: {})", known.join(", "));
        return Err(UsageError::new(message).into());
    }
    let functions: Vec<String> = if args.functions.is_empty() {
        config.functions.keys().cloned().collect()
    } else {
        args.functions.clone()
    };
    let source = Source::from_env();
    let opened = repo.open()?;
    // What each function ships: its ZIP or image and its layers, the
    // dependencies of its check (which itself need not run).
    let mut targets: Vec<usize> = Vec::new();
    for name in &functions {
        if let Some(check) = opened.graph.find(Kind::Check, name) {
            targets.extend(opened.graph.nodes[check].deps.iter().copied());
        }
    }
    targets.sort_unstable();
    targets.dedup();
    if args.common.dry_run {
        printer.out(&format!(
            "audit: would check what {} function(s) ship against {}",
            functions.len(),
            source.describe(&config.root)
        ));
    }
    let Some(ran) = opened.run(&targets)? else {
        return Ok(());
    };
    if !ran.outcome.failures().is_empty() {
        return ran.finish(true);
    }
    let shipped = audit::shipped(&ran.outcome.manifest, &functions);
    let answer = osv::load(&source, &audit::wanted(&shipped))?;
    let loaded = match answer {
        Answer::Loaded(loaded) => loaded,
        Answer::Unreachable(why) => {
            let line = shown::skipped(&source, &why);
            if args.common.json {
                let value = serde_json::json!({ "ok": false, "skipped": line });
                printer.out(&serde_json::to_string_pretty(&value)?);
            }
            printer.warn(&line);
            ran.finish(false)?;
            return Err(NoVerdict.into());
        }
    };
    // One day for the whole run, as the runtime lifecycle judges it.
    let today = Date::from_day(crate::config::lifecycle::today()?);
    let (findings, unused_ignores) = audit::judge(&shipped, &loaded.advisories, &config.audit, deny, today);
    let outcome = Outcome {
        ok: findings.iter().all(|finding| !finding.fails),
        source: source.describe(&config.root),
        checked_on: today.to_string(),
        deny: deny.map(|deny| deny.name().to_string()),
        functions: functions.clone(),
        distributions: shipped.len(),
        shipped_sha256: audit::shipped_sha256(&shipped),
        findings,
        unused_ignores,
    };
    let bytes = serde_json::to_vec_pretty(&outcome)?;
    atomic::write_atomic(&config.audit_path(), &bytes)?;
    if ran.outcome.missing.is_empty() {
        // The page shows what was just found.
        let (checks, smokes) = render::verdicts(&ran.graph, &ran.outcome.statuses);
        report::write(config, &ran.outcome.manifest, &checks, &smokes)?;
    }
    if args.common.json {
        printer.out(&String::from_utf8_lossy(&bytes));
    }
    for id in &outcome.unused_ignores {
        printer.warn(&format!(
            "audit: the ignore of `{id}` in [{}.audit] matches no finding: remove it",
            crate::config::TABLE
        ));
    }
    let text = shown::findings(&outcome, loaded.records, loaded.withdrawn);
    if outcome.ok {
        printer.info(&text);
    } else {
        eprint!("{text}");
    }
    ran.finish(false)?;
    if !outcome.ok {
        return Err(Failed::default().into());
    }
    Ok(())
}
