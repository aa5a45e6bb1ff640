//! The smoke step: the init phase of one function, the way Lambda runs it:
//! laid out in a sandbox (`sandbox.rs`) and started under AWS's runtime
//! interface client, which imports the handler and either asks for an
//! event or reports Lambda's own error (`Runtime.ImportModuleError`,
//! `Runtime.HandlerNotFound`, `Runtime.UserCodeSyntaxError`…). Judges the
//! init duration against `import_budget` and, for a missing module, names
//! the layer that would provide it.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::manifest::BuiltView;
use crate::config::Config;
use crate::facts;
use crate::ground::progress::{ms, Progress};
use crate::lambda::function::{missing_module, missing_module_hint, plan};
use crate::lambda::launch::Start;
use crate::lambda::runtime_env::{FunctionPlan, Runner, RuntimeSite};
use crate::lambda::sandbox::{self, Init};

/// One function's verdict, as `--json` shows it. A `skipped` function is
/// neither ok nor failed: it could not be checked here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub import_ms: Option<f64>,
    pub budget_ms: u64,
    pub error: Option<String>,
    /// Lambda's name for the error (`Runtime.ImportModuleError`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    pub missing_module: Option<String>,
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceback: Option<String>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.ok && self.skipped.is_none()
    }
}

/// What smoking the functions of one platform needs: its configuration,
/// the runner and the runtime's site chosen for it, what is built (with
/// which layer provides each module), and where progress goes.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub runner: &'a Runner,
    pub site: &'a RuntimeSite,
    pub built: &'a BuiltView<'a>,
    pub progress: &'a dyn Progress,
}

/// Smokes the function `name`: lays it out, imports its handler and
/// judges the report. `Err` only when the smoke test itself could not run.
pub fn smoke_function(setup: &Setup, name: &str) -> Result<Outcome> {
    let budget_ms = setup.config.import_budget_ms;
    if let Runner::Skip(reason) = setup.runner {
        return Ok(Outcome {
            budget_ms,
            skipped: Some(reason.clone()),
            ..Outcome::default()
        });
    }
    if let Err(reason) = &setup.site.client {
        return Ok(Outcome {
            budget_ms,
            skipped: Some(reason.clone()),
            ..Outcome::default()
        });
    }
    let plan = plan(setup.built.manifest, name)?;
    let (init, notes) = smoke_one(setup, &plan)?;
    Ok(judge(setup, &plan, init, notes))
}

/// Lays out one function as Lambda would and runs its init phase.
fn smoke_one(setup: &Setup, plan: &FunctionPlan) -> Result<(Init, Vec<String>)> {
    let config = setup.config;
    setup.progress.phase(&plan.name, "extracting");
    let layout = crate::lambda::layout::lay_out(config, plan, &BTreeMap::new())?;
    setup.progress.phase(&plan.name, "starting");
    let start = Start {
        config,
        runner: setup.runner,
        site: setup.site,
        plan,
        env: &[],
        forward_logs: false,
        label_logs: false,
    };
    let init_once = || -> Result<(Init, Vec<String>)> {
        let mut running = sandbox::start(&start, &layout)?;
        let init = running.init();
        Ok((init, std::mem::take(&mut running.notes)))
    };
    let (mut init, notes) = init_once()?;
    // A busy machine slows an init down, it never speeds one up: an init
    // over the budget is timed again, and the fastest run counts.
    for _ in 1..BUDGET_ATTEMPTS {
        let over = matches!(init, Init::Ready { init_ms } if init_ms > config.import_budget_ms as f64);
        if !over {
            break;
        }
        if let (again @ Init::Ready { .. }, _) = init_once()? {
            if again_ms(&again) < again_ms(&init) {
                init = again;
            }
        }
    }
    Ok((init, notes))
}

fn again_ms(init: &Init) -> f64 {
    match init {
        Init::Ready { init_ms } => *init_ms,
        Init::Failed(_) => f64::INFINITY,
    }
}

/// How many times an import over its budget is timed before it fails.
const BUDGET_ATTEMPTS: usize = 3;

/// Turns an init into a verdict: the budget, and for a missing module what
/// would provide it.
fn judge(setup: &Setup, plan: &FunctionPlan, init: Init, notes: Vec<String>) -> Outcome {
    let budget_ms = setup.config.import_budget_ms;
    let mut outcome = Outcome {
        budget_ms,
        notes,
        ..Outcome::default()
    };
    let failure = match init {
        Init::Ready { init_ms } => {
            outcome.ok = true;
            outcome.import_ms = Some((init_ms * 10.0).round() / 10.0);
            if init_ms > budget_ms as f64 {
                outcome.ok = false;
                outcome.error = Some(format!(
                    "the fastest of {BUDGET_ATTEMPTS} inits took {}, over the budget of {budget_ms} ms (import_budget)",
                    ms(Some(init_ms))
                ));
            }
            return outcome;
        }
        Init::Failed(failure) => failure,
    };
    outcome.error_type = Some(failure.error_type.clone());
    let mut error = format!("{}: {}", failure.error_type, failure.message);
    if !failure.stack.is_empty() {
        outcome.traceback = Some(failure.stack.concat());
    }
    if let Some(place) = raised_in(&failure.stack) {
        error = format!("{error} (raised in {place})");
    }
    let Some(missing) = missing_module(&failure) else {
        outcome.error = Some(error);
        return outcome;
    };
    let (hint, skipped) = missing_module_hint(plan, &missing, &setup.built.providers, setup.site);
    outcome.missing_module = Some(missing);
    outcome.skipped = skipped;
    outcome.error = Some(format!("{error}; {hint}"));
    outcome
}

/// `module line N` of the innermost frame, from a stack as the runtime
/// formats it (`File "/var/task/plain.py", line 7, in <module>`).
fn raised_in(stack: &[String]) -> Option<String> {
    let frame = stack.last()?;
    let (_, rest) = frame.split_once("File \"")?;
    let (file, rest) = rest.split_once('"')?;
    let line = rest.trim_start_matches(", line ").split(',').next()?;
    let roots = [
        format!("{}/", facts::TASK_ROOT),
        format!("{}/python/", facts::LAYER_MOUNT),
    ];
    let mut module = file;
    for root in &roots {
        if let Some(inside) = module.strip_prefix(root.as_str()) {
            module = inside;
        }
    }
    if let Some((_, inside)) = module.split_once("/site-packages/") {
        module = inside;
    }
    let module = module
        .trim_end_matches(".py")
        .trim_end_matches("/__init__")
        .replace('/', ".");
    Some(format!("{module} line {line}"))
}
