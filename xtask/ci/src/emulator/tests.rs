use std::path::Path;

use serde_json::{json, Value};
use xshell::Shell;

use super::deployed::{differences, report};
use super::moto::run_python;
use super::terraform::{mirror_config, provider_override, variables, SERVICES};
use super::*;

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
        },
        "api": {
            "payload_format_version": "1.0",
            "routes": {
                "POST /sms": {"function": "sms", "authorize": true},
                "GET /arm/{id}": {"function": "arm", "authorize": false}
            },
            "authorizer": {
                "function": "arm",
                "payload_format_version": "2.0",
                "enable_simple_responses": true,
                "identity_sources": ["$request.header.Authorization"],
                "result_ttl_in_seconds": 300
            }
        }
    })
}

/// The invoke ARN API Gateway calls the deployed `name` by.
fn invoke_arn(name: &str) -> String {
    format!(
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:{name}/invocations"
    )
}

/// What the API would hold after a faithful deployment of `manifest()`.
fn deployed() -> Value {
    json!({"api": {
        "access_log": {
            "log_group_name": "/aws/apigateway/app-api/access",
            "log_group": {"retention_in_days": 7}
        },
        "routes": {
            "POST /sms": {"target": "integrations/isms", "authorization_type": "CUSTOM", "authorizer_id": "auth1"},
            "GET /arm/{id}": {"target": "integrations/iarm", "authorization_type": "NONE", "authorizer_id": null}
        },
        "integrations": {
            "isms": {"uri": invoke_arn("app-sms"), "payload_format_version": "1.0"},
            "iarm": {"uri": invoke_arn("app-arm"), "payload_format_version": "1.0"}
        },
        "authorizers": {
            "auth1": {
                "type": "REQUEST",
                "uri": invoke_arn("app-arm"),
                "payload_format_version": "2.0",
                "enable_simple_responses": true,
                "identity_sources": ["$request.header.Authorization"],
                "result_ttl_in_seconds": 300
            }
        }
    }, "functions": {
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

/// Routes, the functions their integrations invoke, their payload
/// format and authorization, and the authorizer: each difference named.
#[test]
fn every_difference_of_the_api_is_found_and_named() {
    let mut deployed = deployed();
    let api = &mut deployed["api"];
    // A route of the manifest missing, one it does not have.
    let routes = api["routes"].as_object_mut().unwrap();
    let sms = routes.remove("POST /sms").unwrap();
    routes.insert("POST /sms/v2".into(), sms);
    // arm's route open in the manifest, behind the authorizer here.
    api["routes"]["GET /arm/{id}"]["authorization_type"] = json!("CUSTOM");
    api["routes"]["GET /arm/{id}"]["authorizer_id"] = json!("auth1");
    api["integrations"]["iarm"]["uri"] = json!(invoke_arn("app-sms"));
    api["integrations"]["iarm"]["payload_format_version"] = json!("2.0");
    let authorizer = &mut api["authorizers"]["auth1"];
    authorizer["enable_simple_responses"] = Value::Null;
    authorizer["identity_sources"] = Value::Null;
    authorizer["result_ttl_in_seconds"] = json!(0);
    authorizer["payload_format_version"] = json!("1.0");

    let lines: Vec<String> = differences(&manifest(), &deployed, "app")
        .iter()
        .map(ToString::to_string)
        .collect();
    let invoke_sms = format!("{:?}", invoke_arn("app-sms"));
    assert_eq!(
        lines,
        [
            "HTTP API `app-api`: authorizer payload format: expected \"2.0\", found \"1.0\"".to_string(),
            "HTTP API `app-api`: authorizer simple responses: expected true, found false".to_string(),
            "HTTP API `app-api`: authorizer identity sources: expected [\"$request.header.Authorization\"], found []".to_string(),
            "HTTP API `app-api`: authorizer result TTL (s): expected 300, found 0".to_string(),
            format!("HTTP API `app-api`: route `GET /arm/{{id}}` integration function: expected app-arm, found {invoke_sms}"),
            "HTTP API `app-api`: route `GET /arm/{id}` integration payload format: expected \"1.0\", found \"2.0\"".to_string(),
            "HTTP API `app-api`: route `GET /arm/{id}` authorization: expected NONE, found CUSTOM by authorizer \"auth1\"".to_string(),
            "HTTP API `app-api`: route `POST /sms`: expected to invoke `sms`, found no such route".to_string(),
            "HTTP API `app-api`: route `POST /sms/v2`: expected no such route (dist/manifest.json has none), found a deployed route".to_string(),
        ]
    );

    // No authorizer in the manifest, one deployed; a manifest without api.
    let mut open = manifest();
    open["api"]["authorizer"] = Value::Null;
    open["api"]["routes"]["POST /sms"]["authorize"] = json!(false);
    let lines: Vec<String> = differences(&open, &self::deployed(), "app")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "HTTP API `app-api`: authorizer: expected none (dist/manifest.json has none), found 1 deployed",
            "HTTP API `app-api`: route `POST /sms` authorization: expected NONE, found CUSTOM by authorizer \"auth1\"",
        ]
    );
    let mut older = manifest();
    older.as_object_mut().unwrap().remove("api");
    let lines: Vec<String> = differences(&older, &self::deployed(), "app")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        ["HTTP API `app-api`: api: expected `api` in dist/manifest.json, found no such key (a manifest from before it existed?)"]
    );
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
        match api {
            Value::Null => deployed["api"] = Value::Null,
            api => deployed["api"]["access_log"] = api["access_log"].clone(),
        }
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
    if let Err(err) = apply_against_emulator(&sh, &config, &config.dist_dir()) {
        panic!("{err:#}");
    }
}

/// A deployment changed behind Terraform's back fails the stage's
/// checks, each change named, and moto is gone afterwards.
#[test]
#[ignore = "applies envs/dev against moto: needs terraform, TF_PROVIDER_MIRROR, uv and dist/manifest.json"]
fn a_deployment_changed_by_hand_is_caught() {
    let (_alone, config, sh) = stage_world();
    let mut manifest = read_manifest(&config.dist_dir()).expect("dist/manifest.json");
    let emulated = Emulated::prepare(&sh, &config, &config.dist_dir()).expect("moto and terraform init");
    emulated.apply(&mut manifest).expect("terraform apply");
    let changes = r#"
import sys, boto3
endpoint, prefix = sys.argv[1], sys.argv[2]
functions = boto3.client("lambda", endpoint_url=endpoint)
functions.put_function_concurrency(FunctionName=prefix + "-cors", ReservedConcurrentExecutions=7)
functions.update_function_configuration(FunctionName=prefix + "-users", Timeout=99)
logs = boto3.client("logs", endpoint_url=endpoint)
logs.put_retention_policy(logGroupName="/aws/lambda/" + prefix + "-auth", retentionInDays=30)
logs.put_retention_policy(logGroupName="/aws/apigateway/" + prefix + "-api/access", retentionInDays=60)
apis = boto3.client("apigatewayv2", endpoint_url=endpoint)
api_id = next(api["ApiId"] for api in apis.get_apis()["Items"] if api["Name"] == prefix + "-api")
webhook = next(route for route in apis.get_routes(ApiId=api_id)["Items"] if route["RouteKey"] == "POST /sms/webhook")
apis.delete_route(ApiId=api_id, RouteId=webhook["RouteId"])
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
        "HTTP API `lambda-app-dev-api`: route `POST /sms/webhook`: expected to invoke `sms`, found no such route".to_string(),
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

#[test]
fn only_a_create_the_provider_missed_is_applied_again() {
    let missed = anyhow::anyhow!(
        "Error: creating Lambda Function (lambda-app-dev-auth): operation error Lambda: CreateFunction, https response error StatusCode: 409, ResourceConflictException: Function already exist: lambda-app-dev-auth"
    )
    .context("terraform apply of envs/dev against moto");
    assert!(lost_create(&missed));
    let wrong = anyhow::anyhow!("Error: Invalid value for variable")
        .context("terraform apply of envs/dev against moto");
    assert!(!lost_create(&wrong));
}

/// `manifest()` with `img`, an image function pushed to
/// `lambda-app/img`, and what a faithful deployment of it holds.
fn with_image_function() -> (Value, Value) {
    let uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app/img@sha256:aaaa";
    let mut manifest = manifest();
    manifest["functions"]["img"] = json!({
        "handler": "img.handler",
        "runtime": "python3.11",
        "architecture": "arm64",
        "base64sha256": "aW1n",
        "zipped_bytes": 70,
        "memory_mb": 1024,
        "timeout_s": 30,
        "ephemeral_storage_mb": 512,
        "environment": {"MODEL": "small"},
        "log_retention_days": 7,
        "layers": [],
        "package_type": "Image",
        "image": {
            "digest": "sha256:aaaa",
            "layout": "dist/images/img",
            "repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app/img",
            "uri": uri
        }
    });
    let mut deployed = deployed();
    deployed["functions"]["app-img"] = json!({
        "configuration": {
            "Handler": null,
            "Runtime": null,
            "Architectures": ["arm64"],
            "CodeSha256": "c3R1Yg==",
            "CodeSize": 0,
            "MemorySize": 1024,
            "Timeout": 30,
            "EphemeralStorage": {"Size": 512},
            "Environment": {"Variables": {"MODEL": "small", "LOG_LEVEL": "INFO"}},
            "PackageType": "Image"
        },
        "image_uri": uri,
        "reserved_concurrency": null,
        "log_group": {"retention_in_days": 7},
        "layers": []
    });
    deployed["functions"]["app-sms"]["configuration"]["PackageType"] = json!("Zip");
    deployed["repositories"] = json!({"lambda-app/img": {
        "tag_mutability": "IMMUTABLE",
        "scan_on_push": true,
        "lifecycle_policy": {"rules": [{
            "rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
            "action": {"type": "expire"}
        }]}
    }});
    (manifest, deployed)
}

/// An image function is its image by digest, in its repository: the ZIP
/// keys of its entry (handler, runtime, hash) are not what is deployed.
#[test]
fn an_image_function_is_checked_by_its_image() {
    let (manifest, deployed) = with_image_function();
    assert_eq!(differences(&manifest, &deployed, "app"), Vec::new());

    let mut changed = deployed.clone();
    let img = &mut changed["functions"]["app-img"];
    img["image_uri"] = json!("123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app/img@sha256:0ld");
    img["configuration"]["Handler"] = json!("img.handler");
    img["configuration"]["MemorySize"] = json!(128);
    img["layers"] = json!([{"arn": "arn:aws:lambda:us-east-1:123456789012:layer:app-core:1"}]);
    changed["functions"]["app-sms"]["configuration"]["PackageType"] = json!("Image");
    changed["repositories"]["lambda-app/img"]["tag_mutability"] = json!("MUTABLE");
    changed["repositories"]["lambda-app/img"]["lifecycle_policy"] = Value::Null;
    let lines: Vec<String> = differences(&manifest, &changed, "app")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "function `img`: ImageUri: expected \"123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app/img@sha256:aaaa\", found \"123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app/img@sha256:0ld\"",
            "function `img`: Handler: expected none (an image function), found \"img.handler\"",
            "function `img`: Layers: expected none (an image function), found 1 attached",
            "function `img`: ECR repository `lambda-app/img` tag mutability: expected \"IMMUTABLE\", found \"MUTABLE\"",
            "function `img`: ECR repository `lambda-app/img` lifecycle policy: expected to expire all but the last images pushed, found none",
            "function `img`: MemorySize: expected 1024, found 128",
            "function `sms`: PackageType: expected \"Zip\", found \"Image\"",
        ]
    );

    // Not pushed; no repository.
    let mut unpushed = manifest.clone();
    unpushed["functions"]["img"]["image"]["uri"] = Value::Null;
    let mut bare = deployed.clone();
    bare["repositories"] = json!({});
    let lines: Vec<String> = differences(&unpushed, &deployed, "app")
        .iter()
        .chain(differences(&manifest, &bare, "app").iter())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "function `img`: image.uri: expected the pushed image's uri in dist/manifest.json, found none (not pushed)",
            "function `img`: ECR repository `lambda-app/img`: expected to exist, found no such repository",
        ]
    );
}

#[test]
fn image_functions_are_those_of_package_type_image() {
    let (manifest, _) = with_image_function();
    assert_eq!(image::image_functions(&manifest), ["img"]);
    assert!(image::image_functions(&self::manifest()).is_empty());
}
