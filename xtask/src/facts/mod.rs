//! AWS Lambda facts the code depends on, each in exactly one place, with its
//! source: the page of AWS's documentation that states it, or the standard
//! or tool that defines it.

/// Function code and all its layers, unzipped: "250 MB", i.e. 250 MiB.
/// Source: AWS Lambda quotas, "Deployment package (.zip file archive) size",
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;

/// A ZIP uploaded directly (API, SDK, Terraform `filename`): "50 MB" zipped.
/// Larger packages must go through S3. Source: AWS Lambda quotas,
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_DIRECT_UPLOAD_BYTES: u64 = 52_428_800;

/// A container image function's image, uncompressed, all its layers
/// included: "10 GB", i.e. 10 GiB as the ZIP limit's "250 MB" is 250 MiB.
/// Source: AWS Lambda quotas, "Container image code package size",
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_IMAGE_BYTES: u64 = 10_737_418_240;

/// Where a container image function's own code is (`LAMBDA_TASK_ROOT`) and
/// where the content a ZIP function gets from layers goes in an image
/// (`/opt`, as the layers' ZIPs would be extracted). The entrypoint of AWS's
/// base images runs the handler given as the image's `CMD`. Source:
/// "Create a Lambda function using a container image" and "Working with
/// layers and extensions in container images",
/// https://docs.aws.amazon.com/lambda/latest/dg/images-create.html
pub fn default_image_base(runtime: Runtime) -> String {
    format!("public.ecr.aws/lambda/python:{}", runtime.python_version())
}

/// Layers a function may attach. Source: AWS Lambda quotas ("Function layers"),
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_LAYERS: usize = 5;

/// Distributions the Python runtime already ships in `/var/lang/lib/python3.X/site-packages`
/// and that are left out of layers unless the configuration says otherwise.
/// Source: "Building Lambda functions with Python" (the runtime includes the
/// SDK for Python, boto3, with its own dependencies),
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
pub const RUNTIME_PROVIDED: &[&str] = &["boto3", "botocore", "s3transfer", "jmespath"];

/// Top-level modules a handler can import without shipping them: the
/// runtime's boto3 and the packages it brings along in
/// `/var/lang/lib/python3.X/site-packages`, and the runtime interface client.
/// Source: https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
pub const RUNTIME_IMPORTABLE: &[&str] = &[
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
    "awslambdaric",
];

/// The boto3 the Lambda Python runtime ships in `/var/lang/lib/python3.X/site-packages`
/// (with botocore, s3transfer, jmespath and their dependencies). Handlers import it without
/// packaging it, so the tool installs this pin once into its cache. The runtimes update
/// theirs every few months; only its presence and its import time matter here.
/// AWS lists the boto3 each runtime includes in
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
pub const RUNTIME_BOTO3: &str = "boto3==1.44.5";

/// AWS's runtime interface client, which the Python runtime runs from `/var/runtime`:
/// it imports the handler and talks to the Runtime API. Source: "Using the
/// runtime interface client", https://docs.aws.amazon.com/lambda/latest/dg/python-image.html,
/// and its releases, https://pypi.org/project/awslambdaric/
pub const RUNTIME_INTERFACE_CLIENT: &str = "awslambdaric==4.2.2";

/// The runtimes the newest client no longer supports, and the last one that
/// does (awslambdaric 4.2 needs Python 3.10; 4.0.4 ships cp39 wheels).
/// Source: https://pypi.org/project/awslambdaric/#history
const OLDER_RUNTIME_INTERFACE_CLIENTS: &[((u8, u8), &str)] = &[((3, 9), "awslambdaric==4.0.4")];

/// The runtime interface client pinned for `runtime`.
pub fn runtime_interface_client(runtime: Runtime) -> &'static str {
    OLDER_RUNTIME_INTERFACE_CLIENTS
        .iter()
        .find(|(python, _)| *python == runtime.python)
        .map_or(RUNTIME_INTERFACE_CLIENT, |(_, pin)| pin)
}

/// Where Lambda extracts the function's ZIP (`LAMBDA_TASK_ROOT`), read-only.
/// Source: "Defined runtime environment variables",
/// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
pub const TASK_ROOT: &str = "/var/task";

/// Where the runtime interface client lives in the Python runtime
/// (`LAMBDA_RUNTIME_DIR`). Source: "Defined runtime environment variables",
/// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
pub const RUNTIME_DIR: &str = "/var/runtime";

/// The runtime's own site-packages, where its boto3 is.
pub fn runtime_site_packages(runtime: Runtime) -> String {
    format!("/var/lang/lib/python{}/site-packages", runtime.python_version())
}

/// The unprivileged user (and group) a function runs as in Lambda's
/// execution environment. AWS documents that a function runs as a
/// least-privileged user ("Container image requirements",
/// https://docs.aws.amazon.com/lambda/latest/dg/images-create.html); the uid
/// is the one the Lambda base images give that user, `sbx_user1051`
/// (https://gallery.ecr.aws/lambda/python).
pub const SANDBOX_UID: u32 = 993;

/// A function's timeout when none is configured, and the largest allowed,
/// seconds. Source: Lambda's `CreateFunction` API (`Timeout`: default 3),
/// https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html, and AWS Lambda quotas ("Function timeout"),
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const DEFAULT_TIMEOUT_S: u64 = 3;
pub const MAX_TIMEOUT_S: u64 = 900;

/// A function's memory when none is configured, and the range allowed, MB.
/// Source: Lambda's `CreateFunction` API (`MemorySize`: default 128, 128 to 10,240),
/// https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html
pub const DEFAULT_MEMORY_MB: u64 = 128;
pub const MIN_MEMORY_MB: u64 = 128;
pub const MAX_MEMORY_MB: u64 = 10_240;

/// A function's `/tmp` when none is configured, and the range allowed, MB.
/// Source: Lambda's `CreateFunction` API (`EphemeralStorage.Size`: default 512, 512 to 10,240),
/// https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html
pub const DEFAULT_EPHEMERAL_STORAGE_MB: u64 = 512;
pub const MAX_EPHEMERAL_STORAGE_MB: u64 = 10_240;

/// The retentions a CloudWatch Logs group accepts, days (`PutRetentionPolicy`);
/// no retention (never expire) is the service's default.
/// Source: CloudWatch Logs API, `PutRetentionPolicy`, `retentionInDays`,
/// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
pub const LOG_RETENTION_DAYS: &[u64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/// A function's environment variables together: 4 KB. Source: AWS Lambda quotas
/// ("Function environment variables"), https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_ENVIRONMENT_BYTES: usize = 4096;

/// Variables the Lambda runtime sets itself and `CreateFunction` refuses.
/// Source: AWS Lambda "Defined runtime environment variables" (reserved ones),
/// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
pub const RESERVED_ENVIRONMENT: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The account and region that a local invocation pretends to run in, for
/// the ARN the runtime hands the handler.
pub const LOCAL_ACCOUNT: &str = "000000000000";
pub const LOCAL_REGION: &str = "us-east-1";

/// The region S3 requests are signed for when nothing names one: the
/// service's own default (the SDKs fall back to it too). Source: "Amazon S3
/// endpoints and quotas" (us-east-1 is the global endpoint's),
/// https://docs.aws.amazon.com/general/latest/gr/s3.html
pub const S3_DEFAULT_REGION: &str = "us-east-1";

/// Where Lambda extracts the layers; `python/` inside a layer lands at `/opt/python`.
/// Source: "Packaging your layer content",
/// https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html
pub const LAYER_MOUNT: &str = "/opt";

/// `root` (an absolute path: [`TASK_ROOT`], [`LAYER_MOUNT`]) as a container
/// image layer's tar names what is under it: relative, ending in `/`.
pub fn in_image_layer(root: &str) -> String {
    format!("{}/", root.trim_matches('/'))
}

/// Lambda gives the init phase (which imports the handler) 10 s; an import
/// still running by then is reported as hung. Source: AWS Lambda execution
/// environment lifecycle, "Init phase",
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
pub const INIT_TIMEOUT_S: u64 = 10;

/// A synchronous invocation's event: "6 MB" is 6 MiB; a larger request is
/// refused with `RequestTooLargeException` ("Request must be smaller than
/// 6291456 bytes for the InvokeFunction operation"). Source: AWS Lambda
/// quotas ("Invocation payload (request and response)"),
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const MAX_SYNC_EVENT_BYTES: u64 = 6_291_456;

/// A synchronous invocation's response (or error) as Lambda measures it:
/// its error says "Response payload size exceeded maximum allowed payload
/// size (6291556 bytes)", 100 bytes above 6 MiB. Source: the 6 MB of AWS
/// Lambda quotas ("Invocation payload (request and response)"),
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html; the exact figure is the one in Lambda's
/// error above.
pub const MAX_SYNC_RESPONSE_BYTES: u64 = 6_291_556;

/// The error type Lambda reports for a response over
/// [`MAX_SYNC_RESPONSE_BYTES`].
pub const RESPONSE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";

/// An HTTP API's request payload: 10 MB; a larger request is answered 413.
/// Source: "Quotas for configuring and running an HTTP API in API Gateway"
/// ("Payload size", 10 MB),
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
pub const HTTP_API_MAX_PAYLOAD_BYTES: u64 = 10_485_760;

/// An HTTP API waits at most 30 s for an integration (less when the
/// function's timeout is shorter), then answers 503. Source: the same
/// quotas page ("Integration timeout", 30 seconds).
pub const HTTP_API_MAX_INTEGRATION_TIMEOUT_S: u64 = 30;

/// A Lambda authorizer's answer is cached at most an hour. Source:
/// "Working with AWS Lambda authorizers for HTTP APIs" (`authorizerResultTtlInSeconds`, 0 to 3600),
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
pub const HTTP_API_MAX_AUTHORIZER_TTL_S: u64 = 3600;

/// The methods a route key may name (`ANY` matches every one). Source:
/// "Working with routes for HTTP APIs",
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
pub const HTTP_API_METHODS: &[&str] = &["ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// What a Lambda authorizer's identity source may name, each followed by
/// the name: a header (matched in any case), a query string parameter, a
/// context variable, a stage variable. Source: "Working with AWS Lambda
/// authorizers for HTTP APIs" ("Identity sources"),
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
pub const HTTP_API_IDENTITY_SOURCE_PREFIXES: &[&str] = &[
    "$request.header.",
    "$request.querystring.",
    "$context.",
    "$stageVariables.",
];

/// The stage `serve` answers as: an HTTP API's automatically deployed one.
pub const HTTP_API_STAGE: &str = "$default";

/// The API id a local request names (`requestContext.apiId`, the ARNs the
/// authorizer sees): ten characters, as API Gateway's are.
pub const LOCAL_API_ID: &str = "local00api";

/// The cold-start goal of the team: import time per handler, milliseconds
/// (`import_budget` in docs/design.md).
pub const DEFAULT_IMPORT_BUDGET_MS: u64 = 3_000;

/// A supported Python runtime: its interpreter version, the glibc of the
/// Amazon Linux it runs on, which decides which manylinux wheels can load,
/// and where it stands in AWS's deprecation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    pub name: &'static str,
    pub python: (u8, u8),
    pub os: &'static str,
    pub glibc: (u32, u32),
    pub lifecycle: Lifecycle,
}

/// A calendar day, `(year, month, day)`: tuples compare in time order.
pub type Day = (u16, u8, u8);

/// A runtime's end of support as AWS's "Lambda runtimes" table schedules
/// it: from the deprecation date AWS no longer patches it; from the
/// block-create date no new function can use it; from the block-update
/// date no function on it can be updated (invocations go on). Each phase
/// starts on its day. `None`: not published when the table was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub deprecation: Option<Day>,
    pub block_create: Option<Day>,
    pub block_update: Option<Day>,
}

/// The day the lifecycle dates of [`RUNTIMES`] were read from AWS's
/// "Lambda runtimes" table,
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html: AWS
/// moves them (python3.9's block dates moved after they were announced),
/// so a date is only as good as this reading, which the build's messages name.
pub const RUNTIME_LIFECYCLE_READ: Day = (2026, 12, 7);

/// Source: AWS "Lambda runtimes" table (Python: AL2 for 3.9–3.11, AL2023 from 3.12),
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html; the
/// glibc of each OS (AL2 2.26, AL2023 2.34),
/// https://docs.aws.amazon.com/linux/al2023/ug/glibc-gcc-and-binutils.html.
/// The lifecycle dates: the same table's deprecation, block function create
/// and block function update dates, as read on [`RUNTIME_LIFECYCLE_READ`]. python3.9's
/// block dates are the table's as quoted in an answer on AWS re:Post
/// (https://repost.aws/questions/QUwvZZcO78S2iFe9UF6rK4nw/aws-lambda-python-runtime-3-9-eol:
/// "the block-create date is 2027-02-01 and block-update is 2027-03-03",
/// after AWS had moved them from early 2026); docs/design.md lists them all
/// and a test keeps that list equal to this one.
pub const RUNTIMES: &[Runtime] = &[
    Runtime {
        name: "python3.9",
        python: (3, 9),
        os: "Amazon Linux 2",
        glibc: (2, 26),
        lifecycle: Lifecycle {
            deprecation: Some((2025, 12, 15)),
            block_create: Some((2027, 2, 1)),
            block_update: Some((2027, 3, 3)),
        },
    },
    Runtime {
        name: "python3.10",
        python: (3, 10),
        os: "Amazon Linux 2",
        glibc: (2, 26),
        lifecycle: Lifecycle {
            deprecation: Some((2026, 10, 31)),
            block_create: Some((2026, 11, 30)),
            block_update: Some((2027, 1, 15)),
        },
    },
    Runtime {
        name: "python3.11",
        python: (3, 11),
        os: "Amazon Linux 2",
        glibc: (2, 26),
        lifecycle: Lifecycle {
            deprecation: Some((2027, 6, 30)),
            block_create: None,
            block_update: None,
        },
    },
    Runtime {
        name: "python3.12",
        python: (3, 12),
        os: "Amazon Linux 2023",
        glibc: (2, 34),
        lifecycle: Lifecycle {
            deprecation: Some((2028, 10, 31)),
            block_create: None,
            block_update: None,
        },
    },
    Runtime {
        name: "python3.13",
        python: (3, 13),
        os: "Amazon Linux 2023",
        glibc: (2, 34),
        lifecycle: Lifecycle {
            deprecation: Some((2029, 6, 30)),
            block_create: None,
            block_update: None,
        },
    },
    Runtime {
        name: "python3.14",
        python: (3, 14),
        os: "Amazon Linux 2023",
        glibc: (2, 34),
        lifecycle: Lifecycle {
            deprecation: Some((2029, 6, 30)),
            block_create: None,
            block_update: None,
        },
    },
];

impl Runtime {
    pub fn find(name: &str) -> Option<Runtime> {
        RUNTIMES.iter().copied().find(|runtime| runtime.name == name)
    }

    /// `3.11`, as installers and interpreters spell it.
    pub fn python_version(&self) -> String {
        format!("{}.{}", self.python.0, self.python.1)
    }

    /// The SAM build image for this runtime, the default `image`. Source:
    /// https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-image-repositories.html
    pub fn default_image(&self, arch: Arch) -> String {
        format!("public.ecr.aws/sam/build-{}:latest-{}", self.name, arch.name())
    }

    /// pip's `--platform` values: every manylinux tag the runtime's glibc
    /// allows, newest first. pip takes a `manylinux_2_X` tag literally (it
    /// does not widen it to older ones), so each is given: with
    /// `manylinux_2_26` alone, a wheel tagged `manylinux_2_17` (most binary
    /// wheels, cryptography's among them) would not be found. Sources: the
    /// manylinux tags, https://peps.python.org/pep-0600/; pip's `--platform`,
    /// https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform; AWS's
    /// own recipe, https://docs.aws.amazon.com/lambda/latest/dg/python-package.html
    pub fn pip_platforms(&self, arch: Arch) -> Vec<String> {
        let machine = arch.machine();
        let oldest = match arch {
            Arch::X86_64 => 5,
            Arch::Arm64 => 17,
        };
        let mut tags: Vec<String> = (oldest..=self.glibc.1)
            .rev()
            .map(|minor| format!("manylinux_2_{minor}_{machine}"))
            .collect();
        // The legacy names of manylinux_2_17, _2_12 and _2_5.
        tags.push(format!("manylinux2014_{machine}"));
        if arch == Arch::X86_64 {
            tags.push(format!("manylinux2010_{machine}"));
            tags.push(format!("manylinux1_{machine}"));
        }
        tags
    }

    /// uv's `--python-platform` value: uv knows only some glibc versions, so
    /// take the newest one the runtime's glibc still satisfies.
    pub fn uv_platform(&self, arch: Arch) -> String {
        let glibc = UV_MANYLINUX_GLIBC
            .iter()
            .copied()
            .filter(|&version| version <= self.glibc)
            .max()
            .expect("every runtime's glibc is at least 2.17");
        format!("{}-manylinux_{}_{}", arch.machine(), glibc.0, glibc.1)
    }
}

/// The manylinux glibc versions uv's `--python-platform` accepts (uv 0.13).
/// Source: https://docs.astral.sh/uv/reference/cli/#uv-pip-install--python-platform
const UV_MANYLINUX_GLIBC: &[(u32, u32)] = &[
    (2, 17),
    (2, 28),
    (2, 31),
    (2, 32),
    (2, 33),
    (2, 34),
    (2, 35),
    (2, 36),
    (2, 37),
    (2, 38),
    (2, 39),
    (2, 40),
];

/// An instruction set Lambda runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    pub fn parse(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|arch| arch.name() == name)
    }

    /// Lambda's spelling (`architectures` in the API and in Terraform).
    /// Source: https://docs.aws.amazon.com/lambda/latest/dg/foundation-arch.html
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The machine name used in wheel tags and by `uname -m`.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The container engine's `--platform`.
    pub fn container_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "linux/amd64",
            Arch::Arm64 => "linux/arm64",
        }
    }

    /// The OCI image config's `architecture` (Go's GOARCH names).
    /// Source: https://github.com/opencontainers/image-spec/blob/main/config.md
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// `e_machine` of an ELF file built for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Arm64 => 183,
        }
    }

    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// Normalises a distribution name as PEP 503 does, so `PyJWT`, `pyjwt` and
/// `py_jwt` compare equal. Source: https://peps.python.org/pep-0503/#normalized-names
pub fn normalize_dist_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut last_was_separator = false;
    for ch in name.chars() {
        if matches!(ch, '-' | '_' | '.') {
            if !last_was_separator {
                normalized.push('-');
            }
            last_was_separator = true;
        } else {
            normalized.push(ch.to_ascii_lowercase());
            last_was_separator = false;
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits live here only: Terraform reads the decisions they lead
    /// to (`upload`, the settings) from the manifest and must not carry a
    /// copy that could disagree. Comments may mention them; code may not.
    #[test]
    fn terraform_holds_no_aws_limit() {
        let limits = [
            MAX_UNZIPPED_BYTES,
            MAX_DIRECT_UPLOAD_BYTES,
            MAX_TIMEOUT_S,
            MAX_MEMORY_MB,
            MAX_EPHEMERAL_STORAGE_MB,
            MAX_ENVIRONMENT_BYTES as u64,
        ];
        let terraform = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform");
        let mut files = vec![terraform.clone()];
        let mut found = Vec::new();
        let mut read = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
                if name == ".terraform" {
                    continue;
                }
                for item in std::fs::read_dir(&path).unwrap() {
                    files.push(item.unwrap().path());
                }
                continue;
            }
            if path.extension().and_then(|ext| ext.to_str()) != Some("tf") {
                continue;
            }
            read += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, line) in text.lines().enumerate() {
                let code = line.split('#').next().unwrap_or("");
                let code = code.split("//").next().unwrap_or("");
                let numbers = code
                    .split(|ch: char| !ch.is_ascii_digit())
                    .filter_map(|token| token.parse::<u64>().ok());
                for number in numbers {
                    if limits.contains(&number) {
                        found.push(format!("{}:{}: {}", path.display(), at + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            read > 5,
            "the Terraform modules were not found under {}",
            terraform.display()
        );
        assert!(
            found.is_empty(),
            "AWS limits copied into Terraform (read the decision from dist/manifest.json instead):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn platforms_follow_the_runtime_glibc() {
        let al2 = Runtime::find("python3.11").unwrap();
        assert_eq!(al2.uv_platform(Arch::X86_64), "x86_64-manylinux_2_17");
        let arm = al2.pip_platforms(Arch::Arm64);
        assert_eq!(arm.first().unwrap(), "manylinux_2_26_aarch64");
        assert!(arm.contains(&"manylinux_2_17_aarch64".to_string()), "{arm:?}");
        assert!(arm.contains(&"manylinux2014_aarch64".to_string()), "{arm:?}");
        assert!(
            !arm.iter().any(|tag| tag.contains("2_27") || tag.contains("2_16")),
            "{arm:?}"
        );
        let x86 = al2.pip_platforms(Arch::X86_64);
        assert!(x86.contains(&"manylinux1_x86_64".to_string()), "{x86:?}");
        let al2023 = Runtime::find("python3.12").unwrap();
        assert_eq!(al2023.uv_platform(Arch::Arm64), "aarch64-manylinux_2_34");
        assert_eq!(
            al2023.default_image(Arch::Arm64),
            "public.ecr.aws/sam/build-python3.12:latest-arm64"
        );
    }

    #[test]
    fn every_runtime_has_a_runtime_interface_client() {
        let old = Runtime::find("python3.9").unwrap();
        assert_eq!(runtime_interface_client(old), "awslambdaric==4.0.4");
        for name in ["python3.10", "python3.11", "python3.14"] {
            let runtime = Runtime::find(name).unwrap();
            assert_eq!(runtime_interface_client(runtime), RUNTIME_INTERFACE_CLIENT);
        }
    }

    #[test]
    fn dist_names_normalise() {
        assert_eq!(normalize_dist_name("PyJWT"), "pyjwt");
        assert_eq!(normalize_dist_name("charset_normalizer"), "charset-normalizer");
        assert_eq!(normalize_dist_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_dist_name("a__b"), "a-b");
    }
}
