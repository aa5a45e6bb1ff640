//! `cargo xtask check-limits`: every function together with its layers,
//! checked before deploy against AWS's limits, the team's budgets and its
//! own imports, from `dist/manifest.json`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;
use xshell::Shell;

use crate::archive;
use crate::build_layers::human_bytes;
use crate::cli::Options;
use crate::config::Config;
use crate::facts;
use crate::import_check::{self, Provider};
use crate::manifest::{LayerKind, Manifest};
use crate::Failed;

#[derive(Debug, Serialize)]
struct FunctionReport {
    layers: Vec<LayerShare>,
    function_unzipped_bytes: u64,
    total_unzipped_bytes: u64,
    limit_bytes: u64,
    headroom_bytes: i64,
    budget_bytes: Option<u64>,
    budget_headroom_bytes: Option<i64>,
    zipped_bytes: u64,
    upload: String,
    largest: Vec<(String, u64)>,
    imports: import_check::Report,
    warnings: Vec<String>,
    errors: Vec<String>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct LayerShare {
    name: String,
    unzipped_bytes: u64,
}

pub fn run(options: &Options) -> Result<()> {
    let config = Config::load(&options.overrides)?;
    let manifest = crate::freshness::load_fresh_manifest(&config)?;
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    let analysis = import_check::analyse_sources(&sh, &config)?;
    let listings = layer_listings(&config, &manifest)?;

    let mut reports = BTreeMap::new();
    for function in config.functions.values() {
        let entry = &manifest.functions[&function.name];
        let mut report = FunctionReport {
            layers: Vec::new(),
            function_unzipped_bytes: entry.zip.unzipped_bytes,
            total_unzipped_bytes: entry.zip.unzipped_bytes,
            limit_bytes: facts::MAX_UNZIPPED_BYTES,
            headroom_bytes: 0,
            budget_bytes: config.budget_for(function),
            budget_headroom_bytes: None,
            zipped_bytes: entry.zip.zipped_bytes,
            upload: entry.upload.clone(),
            largest: Vec::new(),
            imports: import_check::Report::default(),
            warnings: Vec::new(),
            errors: Vec::new(),
            ok: true,
        };
        for name in &entry.layers {
            let layer = &manifest.layers[name];
            report.total_unzipped_bytes += layer.unzipped_bytes;
            report.layers.push(LayerShare {
                name: name.clone(),
                unzipped_bytes: layer.unzipped_bytes,
            });
        }
        check_sizes(&mut report, &manifest, &entry.layers);
        check_overlaps(&mut report, &entry.layers, &listings);

        // What the function's code may import from: attached layers, or
        // the layers bundled into its ZIP.
        let reachable_layers = if entry.bundled.is_empty() {
            &entry.layers
        } else {
            &entry.bundled
        };
        let mut providers = Vec::new();
        let mut packages = Vec::new();
        for name in reachable_layers {
            let layer = &manifest.layers[name];
            if layer.kind == LayerKind::Requirements {
                providers.push(Provider {
                    layer: name,
                    packages: &layer.packages,
                });
                packages.extend(
                    layer
                        .packages
                        .iter()
                        .map(|package| (package.name.clone(), package.unzipped_bytes)),
                );
            }
        }
        packages.sort_by_key(|package| std::cmp::Reverse(package.1));
        report.largest = packages.into_iter().take(3).collect();
        let code = import_check::function_code(&config, &function.name, reachable_layers, &analysis)?;
        report.imports = import_check::check(&code, &providers, &analysis.stdlib);
        judge_imports(&mut report, &config, &manifest, &function.name);
        report.ok = report.errors.is_empty();
        reports.insert(function.name.clone(), report);
    }

    let ok = reports.values().all(|report| report.ok);
    if options.json {
        let value = serde_json::json!({ "ok": ok, "functions": reports });
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    if !options.quiet || !ok {
        print_reports(&config, &reports);
    }
    if ok {
        Ok(())
    } else {
        Err(Failed.into())
    }
}

fn check_sizes(report: &mut FunctionReport, manifest: &Manifest, layers: &[String]) {
    let total = report.total_unzipped_bytes;
    report.headroom_bytes = facts::MAX_UNZIPPED_BYTES as i64 - total as i64;
    if report.headroom_bytes < 0 {
        report.errors.push(format!(
            "unzipped size {total} bytes exceeds Lambda's limit of {} bytes by {} bytes ({})",
            facts::MAX_UNZIPPED_BYTES,
            -report.headroom_bytes,
            human_bytes(report.headroom_bytes.unsigned_abs())
        ));
    }
    if let Some(budget) = report.budget_bytes {
        let headroom = budget as i64 - total as i64;
        report.budget_headroom_bytes = Some(headroom);
        if headroom < 0 {
            report.errors.push(format!(
                "unzipped size {} is over the budget of {} by {}",
                human_bytes(total),
                human_bytes(budget),
                human_bytes(headroom.unsigned_abs())
            ));
        }
    }
    if layers.len() > facts::MAX_LAYERS {
        report.errors.push(format!(
            "{} layers attached; Lambda allows {}",
            layers.len(),
            facts::MAX_LAYERS
        ));
    }
    if report.zipped_bytes > facts::MAX_DIRECT_UPLOAD_BYTES {
        report.warnings.push(format!(
            "the function ZIP is {} zipped, over the {} direct upload limit: it must be deployed through S3 (the manifest says upload = \"s3\")",
            human_bytes(report.zipped_bytes),
            human_bytes(facts::MAX_DIRECT_UPLOAD_BYTES)
        ));
    }
    for name in layers {
        let zipped = manifest.layers[name].zipped_bytes.unwrap_or(0);
        if zipped > facts::MAX_DIRECT_UPLOAD_BYTES {
            report.warnings.push(format!(
                "layer `{name}` is {} zipped, over the direct upload limit: publish it through S3",
                human_bytes(zipped)
            ));
        }
    }
}

/// The files of every built layer, for overlap checks.
fn layer_listings(config: &Config, manifest: &Manifest) -> Result<BTreeMap<String, Vec<String>>> {
    let mut listings = BTreeMap::new();
    for (name, entry) in &manifest.layers {
        if let Some(zip) = &entry.zip {
            let files = archive::list_zip(&config.root.join(zip))?
                .into_iter()
                .map(|listed| listed.path)
                .collect();
            listings.insert(name.clone(), files);
        }
    }
    Ok(listings)
}

/// Files two attached layers both ship: the later layer's copy wins at
/// run time, and the earlier one is dead weight (or a version clash).
fn check_overlaps(report: &mut FunctionReport, layers: &[String], listings: &BTreeMap<String, Vec<String>>) {
    for (index, earlier) in layers.iter().enumerate() {
        for later in &layers[index + 1..] {
            let (Some(a), Some(b)) = (listings.get(earlier), listings.get(later)) else {
                continue;
            };
            let a: BTreeSet<&String> = a.iter().collect();
            let shared: Vec<&String> = b.iter().filter(|path| a.contains(path)).collect();
            if shared.is_empty() {
                continue;
            }
            let mut tops: BTreeSet<&str> = BTreeSet::new();
            for path in &shared {
                let inner = path.strip_prefix("python/").unwrap_or(path);
                let top = inner.split('/').next().unwrap_or(inner);
                if !top.ends_with(".dist-info") {
                    tops.insert(top);
                }
            }
            let tops: Vec<&str> = tops.into_iter().take(8).collect();
            report.warnings.push(format!(
                "layers `{earlier}` and `{later}` both ship {} file(s) ({}{}): `{later}`'s copy wins at run time",
                shared.len(),
                tops.join(", "),
                if tops.len() == 8 { ", …" } else { "" }
            ));
        }
    }
}

fn judge_imports(report: &mut FunctionReport, config: &Config, manifest: &Manifest, function: &str) {
    // Which configured layer would provide a missing import, if any.
    let providers = manifest.providers(config);
    for missing in &report.imports.missing {
        let hint = providers
            .get(&missing.name)
            .and_then(|layers| layers.first().cloned());
        let hint = match hint {
            Some(layer) => format!("layer `{layer}` provides it but is not attached to `{function}`"),
            None => {
                "no layer provides it and it is neither standard library nor runtime-provided".to_string()
            }
        };
        let message = format!(
            "imports `{}` ({}, line {}): {hint}",
            missing.name, missing.module, missing.line
        );
        if missing.guarded {
            report
                .warnings
                .push(format!("{message} (guarded by except ImportError)"));
        } else {
            report.errors.push(message);
        }
    }
    for unused in &report.imports.unused {
        report.warnings.push(format!(
            "{} {} in layer `{}` is unused: nothing `{function}` reaches imports it ({})",
            unused.distribution,
            unused.version,
            unused.layer,
            human_bytes(unused.unzipped_bytes)
        ));
    }
    for shadow in &report.imports.shadowing {
        report.warnings.push(shadow.clone());
    }
    for error in &report.imports.unparsable {
        report.errors.push(format!("cannot parse {error}"));
    }
}

fn print_reports(config: &Config, reports: &BTreeMap<String, FunctionReport>) {
    let budget = config
        .budget
        .map(|budget| format!(", budget {}", human_bytes(budget)))
        .unwrap_or_default();
    eprintln!(
        "check-limits: {} {}, limit {} bytes unzipped per function with its layers{budget}",
        config.runtime.name,
        config.arch.name(),
        facts::MAX_UNZIPPED_BYTES
    );
    for (name, report) in reports {
        let layers: Vec<&str> = report.layers.iter().map(|layer| layer.name.as_str()).collect();
        eprintln!(
            "\n  {name}  [{}]",
            if layers.is_empty() {
                "no layers".to_string()
            } else {
                layers.join(" → ")
            }
        );
        eprintln!(
            "    {:<14} {:>10}",
            "function",
            human_bytes(report.function_unzipped_bytes)
        );
        for layer in &report.layers {
            eprintln!("    {:<14} {:>10}", layer.name, human_bytes(layer.unzipped_bytes));
        }
        let mut headroom = format!(
            "headroom {} to {}",
            signed_bytes(report.headroom_bytes),
            human_bytes(facts::MAX_UNZIPPED_BYTES)
        );
        if let (Some(budget), Some(left)) = (report.budget_bytes, report.budget_headroom_bytes) {
            headroom.push_str(&format!(
                ", {} to the {} budget",
                signed_bytes(left),
                human_bytes(budget)
            ));
        }
        eprintln!(
            "    {:<14} {:>10}   {headroom}",
            "total",
            human_bytes(report.total_unzipped_bytes)
        );
        if !report.largest.is_empty() {
            let largest: Vec<String> = report
                .largest
                .iter()
                .map(|(name, size)| format!("{name} {}", human_bytes(*size)))
                .collect();
            eprintln!("    {:<14} {}", "largest", largest.join(", "));
        }
        let mut imports: Vec<String> = report
            .imports
            .provided
            .iter()
            .map(|(module, layer)| format!("{module} ← {layer}"))
            .collect();
        imports.extend(
            report
                .imports
                .runtime
                .iter()
                .map(|module| format!("{module} ← runtime")),
        );
        if !imports.is_empty() {
            eprintln!("    {:<14} {}", "imports", imports.join(", "));
        }
        for warning in &report.warnings {
            eprintln!("    warning: {warning}");
        }
        for error in &report.errors {
            eprintln!("    error: {error}");
        }
        eprintln!("    {}", if report.ok { "ok" } else { "FAILED" });
    }
    let failed = reports.values().filter(|report| !report.ok).count();
    let warnings: usize = reports.values().map(|report| report.warnings.len()).sum();
    if failed == 0 {
        eprintln!(
            "\ncheck-limits: {} function(s) ok, {warnings} warning(s)",
            reports.len()
        );
    } else {
        eprintln!("\ncheck-limits: {failed} of {} function(s) FAILED", reports.len());
    }
}

fn signed_bytes(value: i64) -> String {
    if value < 0 {
        format!("-{}", human_bytes(value.unsigned_abs()))
    } else {
        human_bytes(value as u64)
    }
}
