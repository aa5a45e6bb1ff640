//! `cargo xtask ci`'s "terraform apply (emulator)": terraform/envs/dev
//! applied with the real hashicorp/aws provider (from the filesystem mirror
//! in `TF_PROVIDER_MIRROR`) against moto in server mode on 127.0.0.1,
//! which this stage starts and stops. It proves that what the emulated AWS
//! API then holds is what dist/manifest.json says (code hashes and sizes,
//! settings, layers in order, log retention, reserved concurrency) and
//! that a plan right after the apply is empty.
//!
//! Nothing lands in the work tree: Terraform runs on a copy of terraform/
//! in the tool's cache, with dist/ linked where envs/dev looks for it
//! (`../../../dist/manifest.json`), an override file pointing the provider
//! at moto and a variables file of made-up Cognito ids and secret ARNs.
//! moto lives in its own virtualenv, remade when
//! terraform/tests/emulator/requirements.txt changes.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use xshell::Shell;

use xtask::config::Config;
use xtask::python::installer::InstallerChoice;

/// moto and the packages that read its state, from the repository root.
pub const REQUIREMENTS: &str = "terraform/tests/emulator/requirements.txt";

/// Reads the emulated API's state as one JSON document.
const SCRIPT: &str = include_str!("../../py/deployed.py");

/// envs/dev's `name_prefix`, given explicitly so that the names compared are
/// the names deployed.
const NAME_PREFIX: &str = "lambda-app-dev";

/// The services envs/dev calls, each pointed at moto.
const SERVICES: &[&str] = &["apigatewayv2", "dynamodb", "iam", "lambda", "logs", "s3", "sts"];

/// moto's account (what its STS answers), in the made-up secret ARNs.
const ACCOUNT: &str = "123456789012";
const REGION: &str = xtask::facts::LOCAL_REGION;

/// How long moto may take to answer after it was started.
const MOTO_START: Duration = Duration::from_secs(60);

const STAGE: &str = "terraform apply (emulator)";

/// Applies terraform/envs/dev against moto and checks the result (see the
/// module's documentation). The provider comes from `TF_PROVIDER_MIRROR`.
pub fn apply_against_emulator(sh: &Shell, config: &Config) -> Result<()> {
    let started = Instant::now();
    let manifest = read_manifest(config)?;
    let emulated = Emulated::prepare(sh, config)?;
    emulated.apply()?;
    emulated.verify(&manifest)?;
    emulated.finish();
    eprintln!("{STAGE}: passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn read_manifest(config: &Config) -> Result<Value> {
    let path = config.manifest_path();
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// A copy of terraform/ initialised against a running moto.
struct Emulated {
    /// The copy, the variables, moto's log; removed when all went well.
    work: PathBuf,
    python: PathBuf,
    terraform: Terraform,
    var_file: String,
    /// Dropped last: moto is stopped on every way out.
    moto: Moto,
}

impl Emulated {
    /// moto's virtualenv, the copy of terraform/ with the override and the
    /// variables, moto started, `terraform init` done.
    fn prepare(sh: &Shell, config: &Config) -> Result<Emulated> {
        let mirror = sh
            .var("TF_PROVIDER_MIRROR")
            .ok()
            .filter(|dir| !dir.is_empty())
            .context(
                "TF_PROVIDER_MIRROR is not set: the stage needs a filesystem mirror holding hashicorp/aws",
            )?;
        let python = xtask::lambda::dev_env::venv_python(
            sh,
            config,
            &config.root.join(REQUIREMENTS),
            &config.cache_dir().join("tools").join("emulator-venv"),
            InstallerChoice::Uv,
        )
        .with_context(|| format!("making moto's virtualenv from {REQUIREMENTS}"))?;

        let work = config.cache_dir().join("ci-emulator");
        if work.exists() {
            fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
        }
        copy_terraform(&config.root.join("terraform"), &work.join("terraform"))?;
        // envs/dev reads ../../../dist/manifest.json and the ZIPs it names.
        std::os::unix::fs::symlink(config.dist_dir(), work.join("dist"))
            .with_context(|| format!("linking dist/ into {}", work.display()))?;
        let env_dir = work.join("terraform/envs/dev");

        let moto = Moto::start(&python, &work.join("moto.log"))?;
        let endpoint = moto.endpoint();
        eprintln!("{STAGE}: moto answers on {endpoint}");

        fs::write(env_dir.join("emulator_override.tf"), provider_override(&endpoint))?;
        let tfvars = work.join("emulator.tfvars");
        fs::write(&tfvars, variables())?;
        let cli_config = work.join("mirror.tfrc");
        fs::write(&cli_config, mirror_config(&mirror))?;

        let terraform = Terraform {
            dir: env_dir.clone(),
            path: sh.var_os("PATH"),
            env: vec![
                ("TF_CLI_CONFIG_FILE".into(), cli_config.into_os_string()),
                ("TF_DATA_DIR".into(), work.join("tf-data").into_os_string()),
                ("TF_IN_AUTOMATION".into(), "1".into()),
                ("CHECKPOINT_DISABLE".into(), "1".into()),
                // A service the override does not name still goes to moto.
                ("AWS_ENDPOINT_URL".into(), endpoint.into()),
                ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ],
        };
        let locked = env_dir.join(".terraform.lock.hcl").is_file();
        let init: &[&str] = if locked {
            &["init", "-input=false", "-no-color", "-lockfile=readonly"]
        } else {
            &["init", "-input=false", "-no-color"]
        };
        terraform.run(init).with_context(|| {
            if locked {
                "terraform init with envs/dev's committed .terraform.lock.hcl (-lockfile=readonly)"
            } else {
                "terraform init (envs/dev has no .terraform.lock.hcl)"
            }
        })?;
        Ok(Emulated {
            work,
            python,
            terraform,
            var_file: format!("-var-file={}", tfvars.display()),
            moto,
        })
    }

    fn apply(&self) -> Result<()> {
        let applying = Instant::now();
        self.terraform
            .run(&[
                "apply",
                "-input=false",
                "-no-color",
                "-auto-approve",
                &self.var_file,
            ])
            .with_context(|| {
                format!(
                    "terraform apply of envs/dev against moto (its log: {})",
                    self.work.join("moto.log").display()
                )
            })?;
        let resources = self.terraform.run(&["state", "list"])?;
        let count = String::from_utf8_lossy(&resources.stdout).lines().count();
        eprintln!(
            "{STAGE}: {count} resources applied in {:.1} s",
            applying.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// What the API holds against `manifest`, then an empty plan: every
    /// failure in one error.
    fn verify(&self, manifest: &Value) -> Result<()> {
        let deployed = read_deployed(&self.python, &self.moto.endpoint())?;
        let differences = differences(manifest, &deployed, NAME_PREFIX);
        if differences.is_empty() {
            eprintln!(
                "{STAGE}: {} functions and their layers, and the API's access log, hold what dist/manifest.json says",
                manifest["functions"]
                    .as_object()
                    .map_or(0, |functions| functions.len())
            );
        }
        let plan = self.terraform.output(&[
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            &self.var_file,
        ])?;
        let plan_problem = match plan.status.code() {
            Some(0) => {
                eprintln!("{STAGE}: the plan right after the apply is empty");
                None
            }
            Some(2) => Some(format!(
                "`terraform plan` right after the apply is not empty:\n{}",
                plan_text(&plan.stdout)
            )),
            _ => Some(format!(
                "`terraform plan` after the apply failed:\n{}",
                tail(&[plan.stdout.as_slice(), plan.stderr.as_slice()].concat(), 40)
            )),
        };
        let mut problems = Vec::new();
        if !differences.is_empty() {
            problems.push(report(&differences));
        }
        problems.extend(plan_problem);
        if problems.is_empty() {
            return Ok(());
        }
        bail!(
            "{}\n(the applied copy is kept in {})",
            problems.join("\n\n"),
            self.work.display()
        )
    }

    /// Stops moto and removes the copy.
    fn finish(self) {
        let work = self.work.clone();
        drop(self);
        let _ = fs::remove_dir_all(work);
    }
}

/// One way the emulated API differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs: "function `<manifest name>`" (the deployed name for a
    /// function the manifest does not have), or "HTTP API `<name>`".
    pub subject: String,
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            out,
            "{}: {}: expected {}, found {}",
            self.subject, self.field, self.expected, self.found
        )
    }
}

/// All differences as one message.
pub fn report(differences: &[Difference]) -> String {
    let mut text = format!(
        "the emulated AWS API differs from dist/manifest.json in {} place(s):",
        differences.len()
    );
    for difference in differences {
        text.push_str("\n  ");
        text.push_str(&difference.to_string());
    }
    text
}

/// What `deployed` (the document xtask/py/deployed.py prints) holds that
/// `manifest` (dist/manifest.json) does not say, for the functions named
/// `<prefix>-<manifest name>`.
pub fn differences(manifest: &Value, deployed: &Value, prefix: &str) -> Vec<Difference> {
    let mut found = Vec::new();
    let empty = serde_json::Map::new();
    let functions = manifest["functions"].as_object().unwrap_or(&empty);
    let deployed_functions = deployed["functions"].as_object().unwrap_or(&empty);
    for (name, entry) in functions {
        let deployed_name = format!("{prefix}-{name}");
        let mut check = Checker {
            function: name,
            found: &mut found,
        };
        let Some(function) = deployed_functions.get(&deployed_name) else {
            check.push(
                "function",
                format!("deployed as {deployed_name}"),
                "no such function".into(),
            );
            continue;
        };
        let configuration = &function["configuration"];
        check.equal("Handler", entry.get("handler"), &configuration["Handler"]);
        check.equal("Runtime", entry.get("runtime"), &configuration["Runtime"]);
        let architectures = entry
            .get("architecture")
            .map(|architecture| Value::Array(vec![architecture.clone()]));
        check.equal(
            "Architectures",
            architectures.as_ref(),
            &configuration["Architectures"],
        );
        check.equal(
            "CodeSha256",
            entry.get("base64sha256"),
            &configuration["CodeSha256"],
        );
        check.equal("CodeSize", entry.get("zipped_bytes"), &configuration["CodeSize"]);
        check.equal("MemorySize", entry.get("memory_mb"), &configuration["MemorySize"]);
        check.equal("Timeout", entry.get("timeout_s"), &configuration["Timeout"]);
        check.equal(
            "EphemeralStorage.Size",
            entry.get("ephemeral_storage_mb"),
            &configuration["EphemeralStorage"]["Size"],
        );
        match entry.get("environment").map(Value::as_object) {
            Some(Some(variables)) => {
                for (key, value) in variables {
                    check.equal(
                        &format!("Environment.Variables.{key}"),
                        Some(value),
                        &configuration["Environment"]["Variables"][key],
                    );
                }
            }
            Some(None) => check.push(
                "environment",
                "an object in dist/manifest.json".into(),
                show(&entry["environment"]),
            ),
            None => check.missing_key("environment"),
        }
        // Absent means no reserved concurrency: GetFunctionConcurrency has none.
        check.equal(
            "reserved concurrency",
            Some(entry.get("reserved_concurrency").unwrap_or(&Value::Null)),
            &function["reserved_concurrency"],
        );
        let log_group = format!("log group /aws/lambda/{deployed_name}");
        match (entry.get("log_retention_days"), function["log_group"].as_object()) {
            (_, None) => check.push(&log_group, "to exist".into(), "no such log group".into()),
            (None, Some(_)) => check.missing_key("log_retention_days"),
            (Some(days), Some(group)) => {
                // 0 = never expire: the group has no retention.
                let expected = if days == 0 { Value::Null } else { days.clone() };
                let retention = group.get("retention_in_days").unwrap_or(&Value::Null);
                check.equal(
                    &format!("{log_group} retention (days)"),
                    Some(&expected),
                    retention,
                );
            }
        }
        check.layers(manifest, entry, function, prefix);
    }
    for deployed_name in deployed_functions.keys() {
        let name = deployed_name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or(deployed_name);
        if !functions.contains_key(name) {
            found.push(Difference {
                subject: format!("function `{deployed_name}`"),
                field: "function".into(),
                expected: "no such function (dist/manifest.json has none of that name)".into(),
                found: "a deployed function".into(),
            });
        }
    }
    access_log(manifest, &deployed["api"], prefix, &mut found);
    found
}

/// The HTTP API's access log against the manifest's top-level
/// `log_retention_days` (Cargo.toml's): the stage logs to a log group that
/// keeps its logs that long.
fn access_log(manifest: &Value, api: &Value, prefix: &str, found: &mut Vec<Difference>) {
    let subject = format!("HTTP API `{prefix}-api`");
    let mut push = |field: &str, expected: String, found_here: String| {
        found.push(Difference {
            subject: subject.clone(),
            field: field.to_string(),
            expected,
            found: found_here,
        });
    };
    if api.is_null() {
        return push("API", "to exist".into(), "no such API".into());
    }
    let settings = &api["access_log"];
    let Some(group_name) = settings["log_group_name"].as_str() else {
        return push("$default stage access log", "to be on".into(), show(settings));
    };
    let log_group = format!("access log group {group_name}");
    let Some(group) = settings["log_group"].as_object() else {
        return push(&log_group, "to exist".into(), "no such log group".into());
    };
    let Some(days) = manifest.get("log_retention_days") else {
        return push(
            "log_retention_days",
            "`log_retention_days` at the top of dist/manifest.json".into(),
            "no such key (a manifest from before it existed?)".into(),
        );
    };
    // 0 = never expire: the group has no retention.
    let expected = if days == 0 { Value::Null } else { days.clone() };
    let retention = group.get("retention_in_days").unwrap_or(&Value::Null);
    if &expected != retention {
        push(
            &format!("{log_group} retention (days)"),
            show(&expected),
            show(retention),
        );
    }
}

/// Collects one function's differences.
struct Checker<'a> {
    function: &'a str,
    found: &'a mut Vec<Difference>,
}

impl Checker<'_> {
    fn push(&mut self, field: &str, expected: String, found: String) {
        self.found.push(Difference {
            subject: format!("function `{}`", self.function),
            field: field.to_string(),
            expected,
            found,
        });
    }

    /// The manifest's `expected` (None: the manifest lacks the key) against
    /// what the API holds.
    fn equal(&mut self, field: &str, expected: Option<&Value>, found: &Value) {
        match expected {
            Some(expected) if expected == found => {}
            Some(expected) => self.push(field, show(expected), show(found)),
            None => self.push(
                field,
                "a value from dist/manifest.json, which has none".into(),
                show(found),
            ),
        }
    }

    fn missing_key(&mut self, key: &str) {
        self.push(
            key,
            format!("`{key}` in dist/manifest.json"),
            "no such key (a manifest from before it existed?)".into(),
        );
    }

    /// The deployed layers, in order, against the manifest's: a built
    /// layer's version holds its ZIP (hash and size) under its Terraform
    /// name; an external layer is its ARN.
    fn layers(&mut self, manifest: &Value, entry: &Value, function: &Value, prefix: &str) {
        let no_layers = Vec::new();
        let expected = entry["layers"].as_array().unwrap_or(&no_layers);
        let deployed = function["layers"].as_array().unwrap_or(&no_layers);
        for index in 0..expected.len().max(deployed.len()) {
            let name = expected.get(index).and_then(Value::as_str);
            let field = match name {
                Some(name) => format!("Layers[{index}] ({name})"),
                None => format!("Layers[{index}]"),
            };
            let Some(layer) = deployed.get(index) else {
                self.push(
                    &field,
                    format!("layer `{}`", name.unwrap_or("?")),
                    "no layer".into(),
                );
                continue;
            };
            let arn = layer["arn"].as_str().unwrap_or_default();
            let Some(name) = name else {
                self.push(
                    &field,
                    "no layer (dist/manifest.json lists fewer)".into(),
                    arn.to_string(),
                );
                continue;
            };
            let Some(layer_entry) = manifest["layers"].get(name) else {
                self.push(
                    &field,
                    format!("layer `{name}` in dist/manifest.json's layers"),
                    "none".into(),
                );
                continue;
            };
            if layer_entry["kind"] == "external" {
                self.equal(&format!("{field} ARN"), layer_entry.get("arn"), &layer["arn"]);
                continue;
            }
            let wanted_name = format!("{prefix}-{}", name.replace('@', "-").replace('.', ""));
            // arn:aws:lambda:<region>:<account>:layer:<name>:<version>
            let deployed_name = arn.split(':').nth(6).unwrap_or_default();
            if deployed_name != wanted_name {
                self.push(
                    &format!("{field} layer name"),
                    wanted_name,
                    format!("{deployed_name} ({arn})"),
                );
            }
            if layer["content"].is_null() {
                let why = layer["error"].as_str().unwrap_or("no content");
                self.push(
                    &format!("{field} content"),
                    "a readable layer version".into(),
                    format!("{arn}: {why}"),
                );
                continue;
            }
            self.equal(
                &format!("{field} CodeSha256"),
                layer_entry.get("base64sha256"),
                &layer["content"]["CodeSha256"],
            );
            self.equal(
                &format!("{field} CodeSize"),
                layer_entry.get("zipped_bytes"),
                &layer["content"]["CodeSize"],
            );
        }
    }
}

/// A JSON value as the report shows it: null as "none".
fn show(value: &Value) -> String {
    match value {
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

/// Copies terraform/ without what a local run may have left in it
/// (.terraform/, state, variable files, override files), which would change
/// what is applied.
fn copy_terraform(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for item in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        let left_locally = name == ".terraform"
            || name.contains(".tfstate")
            || name.ends_with(".tfvars")
            || name.ends_with(".tfvars.json")
            || name == "override.tf"
            || name == "override.tf.json"
            || name.ends_with("_override.tf")
            || name.ends_with("_override.tf.json");
        if left_locally {
            continue;
        }
        let target = to.join(&name);
        if item.file_type()?.is_dir() {
            copy_terraform(&item.path(), &target)?;
        } else {
            fs::copy(item.path(), &target).with_context(|| format!("copying {}", item.path().display()))?;
        }
    }
    Ok(())
}

/// The override of envs/dev's `provider "aws"`: moto's endpoint for every
/// service, its fixed credentials, no retries worth waiting for.
fn provider_override(endpoint: &str) -> String {
    let endpoint = Value::from(endpoint);
    let mut text = String::from(
        "# Written by `cargo xtask ci` (terraform apply (emulator)): the provider talks to moto.\n",
    );
    text.push_str("provider \"aws\" {\n");
    text.push_str(&format!("  region                      = \"{REGION}\"\n"));
    text.push_str("  access_key                  = \"testing\"\n");
    text.push_str("  secret_key                  = \"testing\"\n");
    text.push_str("  skip_credentials_validation = true\n");
    text.push_str("  skip_metadata_api_check     = true\n");
    text.push_str("  skip_region_validation      = true\n");
    // The account id comes from moto's STS, so ARNs are whole.
    text.push_str("  skip_requesting_account_id  = false\n");
    text.push_str("  s3_use_path_style           = true\n");
    // A call moto does not implement fails fast instead of being retried.
    text.push_str("  max_retries                 = 2\n\n");
    text.push_str("  endpoints {\n");
    for service in SERVICES {
        text.push_str(&format!("    {service:<12} = {endpoint}\n"));
    }
    text.push_str("  }\n}\n");
    text
}

/// envs/dev's required variables, made up: moto checks none of them.
fn variables() -> String {
    let secret =
        |name: &str| format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{NAME_PREFIX}/{name}-AbCdEf");
    let values = [
        ("region", REGION.to_string()),
        ("name_prefix", NAME_PREFIX.to_string()),
        ("cognito_user_pool_id", format!("{REGION}_Emulator1")),
        ("cognito_client_id", "emulatorclient1234567890".to_string()),
        (
            "cognito_domain",
            format!("{NAME_PREFIX}.auth.{REGION}.amazoncognito.com"),
        ),
        ("post_login_redirect_url", "http://localhost:3000/".to_string()),
        ("twilio_auth_token_secret_arn", secret("twilio-auth-token")),
        ("openai_api_key_secret_arn", secret("openai-api-key")),
    ];
    let mut text = String::new();
    for (name, value) in values {
        text.push_str(&format!("{name} = {}\n", Value::from(value)));
    }
    text
}

/// A CLI configuration that installs providers from the mirror only.
fn mirror_config(mirror: &str) -> String {
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path = {}\n  }}\n}}\n",
        Value::from(mirror)
    )
}

/// terraform in one directory with one environment.
struct Terraform {
    dir: PathBuf,
    /// The shell's PATH (ci puts the tools it provisioned first).
    path: Option<std::ffi::OsString>,
    env: Vec<(String, std::ffi::OsString)>,
}

impl Terraform {
    /// `terraform ARGS`, whatever its exit status.
    fn output(&self, args: &[&str]) -> Result<Output> {
        let mut command = Command::new("terraform");
        command.arg(format!("-chdir={}", self.dir.display())).args(args);
        if let Some(path) = &self.path {
            command.env("PATH", path);
        }
        isolate(&mut command);
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        command
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running terraform {}", args.join(" ")))
    }

    /// `terraform ARGS`, which must succeed; its output's end in the error.
    fn run(&self, args: &[&str]) -> Result<Output> {
        let output = self.output(args)?;
        if !output.status.success() {
            bail!(
                "terraform {} failed ({}):\n{}",
                args.first().copied().unwrap_or_default(),
                output.status,
                tail(&[output.stdout.as_slice(), output.stderr.as_slice()].concat(), 40)
            );
        }
        Ok(output)
    }
}

/// The last `count` lines of a command's output, indented.
fn tail(output: &[u8], count: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    lines[start..]
        .iter()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A plan's changes, without the lines that only say what was refreshed.
fn plan_text(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .filter(|line| {
            !line.contains(": Refreshing state...")
                && !line.contains(": Reading...")
                && !line.contains(": Read complete after")
        })
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// xtask/py/deployed.py against the endpoint, parsed.
fn read_deployed(python: &Path, endpoint: &str) -> Result<Value> {
    let stdout =
        run_python(python, SCRIPT, &[endpoint, NAME_PREFIX]).context("running xtask/py/deployed.py")?;
    serde_json::from_slice(&stdout).context("reading what xtask/py/deployed.py printed")
}

/// Leaves out of a command's environment what would point it elsewhere
/// than moto or change what is applied or emulated: the machine's AWS
/// settings (profiles, credentials, endpoints), moto's own settings and
/// Terraform's variables and extra arguments.
fn isolate(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("AWS_")
            || key_text.starts_with("MOTO_")
            || key_text.starts_with("TF_VAR_")
            || key_text.starts_with("TF_CLI_ARGS")
            || key_text == "TF_WORKSPACE"
        {
            command.env_remove(&key);
        }
    }
    command.env("AWS_CONFIG_FILE", "/dev/null");
    command.env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
}

/// `python -I -c SCRIPT ARGS` with moto's credentials and region; its stdout.
fn run_python(python: &Path, script: &str, args: &[&str]) -> Result<Vec<u8>> {
    let mut command = Command::new(python);
    isolate(&mut command);
    let output = command
        .args(["-I", "-c", script])
        .args(args)
        .envs([
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", REGION),
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", python.display()))?;
    ensure!(
        output.status.success(),
        "python failed ({}):\n{}",
        output.status,
        tail(&output.stderr, 20)
    );
    Ok(output.stdout)
}

/// moto in server mode on a free port of 127.0.0.1; killed and waited for
/// when dropped, whatever happened in between.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts `python -m moto.server` and waits until it answers HTTP.
    fn start(python: &Path, log: &Path) -> Result<Moto> {
        let port = free_port()?;
        let log_file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(python);
        isolate(&mut command);
        let child = command
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting moto (python -m moto.server)")?;
        // From here on the guard stops moto on every way out.
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + MOTO_START;
        loop {
            if let Some(status) = moto.child.try_wait()? {
                let said = fs::read(log).unwrap_or_default();
                bail!("moto exited ({status}) before answering:\n{}", tail(&said, 20));
            }
            if answers(port) {
                return Ok(moto);
            }
            if Instant::now() > deadline {
                let said = fs::read(log).unwrap_or_default();
                bail!(
                    "moto did not answer on 127.0.0.1:{port} within {} s:\n{}",
                    MOTO_START.as_secs(),
                    tail(&said, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Everything moto holds is in memory: nothing to shut down cleanly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 that nothing listens on now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Whether an HTTP server answers on the port.
fn answers(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut start = [0u8; 5];
    stream.read_exact(&mut start).is_ok() && &start == b"HTTP/"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Value {
        json!({
            "runtime": "python3.11",
            "architecture": "x86_64",
            "log_retention_days": 7,
            "layers": {
                "core": {"kind": "requirements", "base64sha256": "Y29yZQ==", "zipped_bytes": 1000},
                "core@python3.12-arm64": {"kind": "requirements", "base64sha256": "YXJt", "zipped_bytes": 900},
                "ext": {"kind": "external", "arn": "arn:aws:lambda:us-east-1:999999999999:layer:ext:3"}
            },
            "functions": {
                "sms": {
                    "handler": "sms_handler.lambda_handler",
                    "runtime": "python3.11",
                    "architecture": "x86_64",
                    "base64sha256": "c21z",
                    "zipped_bytes": 100,
                    "memory_mb": 256,
                    "timeout_s": 15,
                    "ephemeral_storage_mb": 512,
                    "environment": {"HTTP_TIMEOUT_SECONDS": "10"},
                    "reserved_concurrency": 5,
                    "log_retention_days": 14,
                    "layers": ["core", "ext"]
                },
                "arm": {
                    "handler": "arm.handler",
                    "runtime": "python3.12",
                    "architecture": "arm64",
                    "base64sha256": "YXJtZg==",
                    "zipped_bytes": 50,
                    "memory_mb": 128,
                    "timeout_s": 3,
                    "ephemeral_storage_mb": 512,
                    "environment": {},
                    "log_retention_days": 0,
                    "layers": ["core@python3.12-arm64"]
                }
            }
        })
    }

    /// What the API would hold after a faithful deployment of `manifest()`.
    fn deployed() -> Value {
        json!({"api": {"access_log": {
            "log_group_name": "/aws/apigateway/app-api/access",
            "log_group": {"retention_in_days": 7}
        }}, "functions": {
            "app-sms": {
                "configuration": {
                    "Handler": "sms_handler.lambda_handler",
                    "Runtime": "python3.11",
                    "Architectures": ["x86_64"],
                    "CodeSha256": "c21z",
                    "CodeSize": 100,
                    "MemorySize": 256,
                    "Timeout": 15,
                    "EphemeralStorage": {"Size": 512},
                    "Environment": {"Variables": {"HTTP_TIMEOUT_SECONDS": "10", "LOG_LEVEL": "INFO"}}
                },
                "reserved_concurrency": 5,
                "log_group": {"retention_in_days": 14},
                "layers": [
                    {"arn": "arn:aws:lambda:us-east-1:123456789012:layer:app-core:1",
                     "content": {"CodeSha256": "Y29yZQ==", "CodeSize": 1000}, "error": null},
                    {"arn": "arn:aws:lambda:us-east-1:999999999999:layer:ext:3",
                     "content": null, "error": "Cannot find layer"}
                ]
            },
            "app-arm": {
                "configuration": {
                    "Handler": "arm.handler",
                    "Runtime": "python3.12",
                    "Architectures": ["arm64"],
                    "CodeSha256": "YXJtZg==",
                    "CodeSize": 50,
                    "MemorySize": 128,
                    "Timeout": 3,
                    "EphemeralStorage": {"Size": 512},
                    "Environment": null
                },
                "reserved_concurrency": null,
                "log_group": {"retention_in_days": null},
                "layers": [
                    {"arn": "arn:aws:lambda:us-east-1:123456789012:layer:app-core-python312-arm64:2",
                     "content": {"CodeSha256": "YXJt", "CodeSize": 900}, "error": null}
                ]
            }
        }})
    }

    #[test]
    fn a_faithful_deployment_has_no_differences() {
        assert_eq!(differences(&manifest(), &deployed(), "app"), Vec::new());
    }

    #[test]
    fn every_difference_is_found_and_named() {
        let mut deployed = deployed();
        let sms = &mut deployed["functions"]["app-sms"];
        sms["configuration"]["MemorySize"] = json!(128);
        sms["configuration"]["Timeout"] = json!(3);
        sms["configuration"]["EphemeralStorage"]["Size"] = json!(1024);
        sms["configuration"]["CodeSha256"] = json!("b2xk");
        sms["configuration"]["Environment"]["Variables"]
            .as_object_mut()
            .unwrap()
            .remove("HTTP_TIMEOUT_SECONDS");
        sms["reserved_concurrency"] = Value::Null;
        sms["log_group"]["retention_in_days"] = json!(30);
        // The layers in the wrong order.
        let layers = sms["layers"].as_array_mut().unwrap();
        layers.swap(0, 1);
        let arm = &mut deployed["functions"]["app-arm"];
        arm["configuration"]["Architectures"] = json!(["x86_64"]);
        arm["log_group"] = Value::Null;
        arm["layers"][0]["content"]["CodeSize"] = json!(901);
        deployed["functions"]["app-stale"] = json!({"configuration": {}, "layers": []});
        deployed["api"]["access_log"]["log_group"]["retention_in_days"] = json!(30);

        let found = differences(&manifest(), &deployed, "app");
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        let expected = [
            "function `arm`: Architectures: expected [\"arm64\"], found [\"x86_64\"]",
            "function `arm`: log group /aws/lambda/app-arm: expected to exist, found no such log group",
            "function `arm`: Layers[0] (core@python3.12-arm64) CodeSize: expected 900, found 901",
            "function `sms`: CodeSha256: expected \"c21z\", found \"b2xk\"",
            "function `sms`: MemorySize: expected 256, found 128",
            "function `sms`: Timeout: expected 15, found 3",
            "function `sms`: EphemeralStorage.Size: expected 512, found 1024",
            "function `sms`: Environment.Variables.HTTP_TIMEOUT_SECONDS: expected \"10\", found none",
            "function `sms`: reserved concurrency: expected 5, found none",
            "function `sms`: log group /aws/lambda/app-sms retention (days): expected 14, found 30",
            "function `sms`: Layers[0] (core) layer name: expected app-core, found ext (arn:aws:lambda:us-east-1:999999999999:layer:ext:3)",
            "function `sms`: Layers[0] (core) content: expected a readable layer version, found arn:aws:lambda:us-east-1:999999999999:layer:ext:3: Cannot find layer",
            "function `sms`: Layers[1] (ext) ARN: expected \"arn:aws:lambda:us-east-1:999999999999:layer:ext:3\", found \"arn:aws:lambda:us-east-1:123456789012:layer:app-core:1\"",
            "function `app-stale`: function: expected no such function (dist/manifest.json has none of that name), found a deployed function",
            "HTTP API `app-api`: access log group /aws/apigateway/app-api/access retention (days): expected 7, found 30",
        ];
        assert_eq!(lines, expected);
        let message = report(&found);
        assert!(message.starts_with(
            "the emulated AWS API differs from dist/manifest.json in 15 place(s):\n  function `arm`"
        ));
    }

    #[test]
    fn a_missing_function_and_an_older_manifest_are_reported() {
        let mut manifest = manifest();
        let sms = manifest["functions"]["sms"].as_object_mut().unwrap();
        sms.remove("memory_mb");
        sms.remove("environment");
        let mut deployed = deployed();
        deployed["functions"].as_object_mut().unwrap().remove("app-arm");
        let lines: Vec<String> = differences(&manifest, &deployed, "app")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "function `arm`: function: expected deployed as app-arm, found no such function",
                "function `sms`: MemorySize: expected a value from dist/manifest.json, which has none, found 256",
                "function `sms`: environment: expected `environment` in dist/manifest.json, found no such key (a manifest from before it existed?)",
            ]
        );
    }

    #[test]
    fn the_access_log_is_checked_against_the_manifests_retention() {
        let check = |manifest: &Value, api: Value| -> Vec<String> {
            let mut deployed = deployed();
            deployed["api"] = api;
            differences(manifest, &deployed, "app")
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let group = |retention: Value| {
            json!({"access_log": {
                "log_group_name": "/aws/apigateway/app-api/access",
                "log_group": {"retention_in_days": retention}
            }})
        };
        let mut never = manifest();
        never["log_retention_days"] = json!(0);
        assert_eq!(check(&never, group(Value::Null)), Vec::<String>::new());
        assert_eq!(
            check(&never, group(json!(7))),
            ["HTTP API `app-api`: access log group /aws/apigateway/app-api/access retention (days): expected none, found 7"]
        );
        assert_eq!(
            check(&manifest(), Value::Null),
            ["HTTP API `app-api`: API: expected to exist, found no such API"]
        );
        assert_eq!(
            check(&manifest(), json!({"access_log": null})),
            ["HTTP API `app-api`: $default stage access log: expected to be on, found none"]
        );
        assert_eq!(
            check(
                &manifest(),
                json!({"access_log": {"log_group_name": "/aws/apigateway/app-api/access", "log_group": null}})
            ),
            ["HTTP API `app-api`: access log group /aws/apigateway/app-api/access: expected to exist, found no such log group"]
        );
        let mut older = manifest();
        older.as_object_mut().unwrap().remove("log_retention_days");
        assert_eq!(
            check(&older, group(json!(7))),
            ["HTTP API `app-api`: log_retention_days: expected `log_retention_days` at the top of dist/manifest.json, found no such key (a manifest from before it existed?)"]
        );
    }

    /// The stage's tests share its folder in the cache: one at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The turn of one such test, the repository's configuration and a
    /// shell at its root.
    fn stage_world() -> (std::sync::MutexGuard<'static, ()>, Config, Shell) {
        let alone = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = Config::load(&Default::default()).expect("the repository's configuration");
        let sh = Shell::new().expect("a shell");
        sh.change_dir(&config.root);
        (alone, config, sh)
    }

    /// The whole stage, as `cargo xtask ci` runs it: `TF_PROVIDER_MIRROR`
    /// set, terraform and uv on PATH, dist/ built.
    #[test]
    #[ignore = "applies envs/dev against moto: needs terraform, TF_PROVIDER_MIRROR, uv and dist/manifest.json"]
    fn applies_envs_dev_against_moto() {
        let (_alone, config, sh) = stage_world();
        if let Err(err) = apply_against_emulator(&sh, &config) {
            panic!("{err:#}");
        }
    }

    /// A deployment changed behind Terraform's back fails the stage's
    /// checks, each change named, and moto is gone afterwards.
    #[test]
    #[ignore = "applies envs/dev against moto: needs terraform, TF_PROVIDER_MIRROR, uv and dist/manifest.json"]
    fn a_deployment_changed_by_hand_is_caught() {
        let (_alone, config, sh) = stage_world();
        let manifest = read_manifest(&config).expect("dist/manifest.json");
        let emulated = Emulated::prepare(&sh, &config).expect("moto and terraform init");
        emulated.apply().expect("terraform apply");
        let changes = r#"
import sys, boto3
endpoint, prefix = sys.argv[1], sys.argv[2]
functions = boto3.client("lambda", endpoint_url=endpoint)
functions.put_function_concurrency(FunctionName=prefix + "-cors", ReservedConcurrentExecutions=7)
functions.update_function_configuration(FunctionName=prefix + "-users", Timeout=99)
logs = boto3.client("logs", endpoint_url=endpoint)
logs.put_retention_policy(logGroupName="/aws/lambda/" + prefix + "-auth", retentionInDays=30)
logs.put_retention_policy(logGroupName="/aws/apigateway/" + prefix + "-api/access", retentionInDays=60)
"#;
        run_python(
            &emulated.python,
            changes,
            &[&emulated.moto.endpoint(), NAME_PREFIX],
        )
        .expect("the changes");
        let pid = emulated.moto.child.id();
        let error = format!(
            "{:#}",
            emulated.verify(&manifest).expect_err("the changes go unnoticed")
        );
        drop(emulated);
        let functions = &manifest["functions"];
        for expected in [
            "function `cors`: reserved concurrency: expected none, found 7".to_string(),
            format!("function `users`: Timeout: expected {}, found 99", functions["users"]["timeout_s"]),
            format!(
                "function `auth`: log group /aws/lambda/lambda-app-dev-auth retention (days): expected {}, found 30",
                functions["auth"]["log_retention_days"]
            ),
            format!(
                "HTTP API `lambda-app-dev-api`: access log group /aws/apigateway/lambda-app-dev-api/access retention (days): expected {}, found 60",
                manifest["log_retention_days"]
            ),
            "`terraform plan` right after the apply is not empty".to_string(),
        ] {
            assert!(error.contains(&expected), "{expected}\nnot in:\n{error}");
        }
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "moto (pid {pid}) still runs"
        );
        eprintln!("{error}");
    }

    #[test]
    fn the_override_points_every_service_at_the_endpoint() {
        let text = provider_override("http://127.0.0.1:4566");
        for service in SERVICES {
            assert!(
                text.contains(&format!("{service:<12} = \"http://127.0.0.1:4566\"")),
                "{service}"
            );
        }
        assert!(variables().contains("name_prefix = \"lambda-app-dev\""));
        assert!(mirror_config("/a \"b\"").contains(r#"path = "/a \"b\"""#));
    }
}
