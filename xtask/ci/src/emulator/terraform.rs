//! Terraform on a copy of terraform/ whose envs/dev talks to moto: the
//! copy, the provider override, the made-up variables, the mirror-only CLI
//! configuration, and terraform run in it with nothing of the machine's AWS
//! settings.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use xshell::Shell;

use super::moto::isolate;
use super::{tail, ACCOUNT, NAME_PREFIX, REGION};

/// The services envs/dev calls, each pointed at moto.
pub(super) const SERVICES: &[&str] = &[
    "apigatewayv2",
    "dynamodb",
    "ecr",
    "iam",
    "lambda",
    "logs",
    "s3",
    "sts",
];

/// Copies terraform/ without what a local run may have left in it
/// (.terraform/, state, variable files, override files), which would change
/// what is applied.
pub(super) fn copy_terraform(from: &Path, to: &Path) -> Result<()> {
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
pub(super) fn provider_override(endpoint: &str) -> String {
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

/// An override of lambda_app's functions for moto only: moto answers
/// every image function with an `ImageConfigResponse` of empty lists
/// (AWS leaves it out when none is set), which the provider reads as an
/// `image_config` block the configuration lacks: without this, the plan
/// after the apply would never be empty. The image's own CMD and
/// ENTRYPOINT are what runs, so nothing the stage checks is hidden.
pub(super) const LAMBDA_APP_OVERRIDE: &str =
    "# Written by `cargo xtask ci` (terraform apply (emulator)): moto's image_config quirk.
resource \"aws_lambda_function\" \"this\" {
  lifecycle {
    ignore_changes = [image_config]
  }
}
";

/// envs/dev's required variables, made up: moto checks none of them.
pub(super) fn variables() -> String {
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
pub(super) fn mirror_config(mirror: &str) -> String {
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path = {}\n  }}\n}}\n",
        Value::from(mirror)
    )
}

/// terraform in one directory with one environment.
pub(super) struct Terraform {
    dir: PathBuf,
    /// The shell's PATH (ci puts the tools it provisioned first).
    path: Option<OsString>,
    env: Vec<(String, OsString)>,
}

impl Terraform {
    /// terraform in `work`'s copy of envs/dev, talking to moto at
    /// `endpoint`, with providers from `mirror` only; and the file of
    /// envs/dev's variables.
    pub(super) fn against_moto(
        sh: &Shell,
        work: &Path,
        endpoint: &str,
        mirror: &str,
    ) -> Result<(Terraform, PathBuf)> {
        let env_dir = work.join("terraform/envs/dev");
        fs::write(env_dir.join("emulator_override.tf"), provider_override(endpoint))?;
        fs::write(
            work.join("terraform/modules/lambda_app/emulator_override.tf"),
            LAMBDA_APP_OVERRIDE,
        )?;
        let tfvars = work.join("emulator.tfvars");
        fs::write(&tfvars, variables())?;
        let cli_config = work.join("mirror.tfrc");
        fs::write(&cli_config, mirror_config(mirror))?;
        let terraform = Terraform {
            dir: env_dir,
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
        Ok((terraform, tfvars))
    }

    /// `terraform init`, held to envs/dev's committed lock file when there is one.
    pub(super) fn init(&self) -> Result<()> {
        let locked = self.dir.join(".terraform.lock.hcl").is_file();
        let init: &[&str] = if locked {
            &["init", "-input=false", "-no-color", "-lockfile=readonly"]
        } else {
            &["init", "-input=false", "-no-color"]
        };
        self.run(init).with_context(|| {
            if locked {
                "terraform init with envs/dev's committed .terraform.lock.hcl (-lockfile=readonly)"
            } else {
                "terraform init (envs/dev has no .terraform.lock.hcl)"
            }
        })?;
        Ok(())
    }

    /// `terraform ARGS`, whatever its exit status.
    pub(super) fn output(&self, args: &[&str]) -> Result<Output> {
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
    pub(super) fn run(&self, args: &[&str]) -> Result<Output> {
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

/// A plan's changes, without the lines that only say what was refreshed.
pub(super) fn plan_text(stdout: &[u8]) -> String {
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
