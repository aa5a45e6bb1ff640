"""deployed.py as xtask/src/emulator.rs runs it: `python -I -c <script> ENDPOINT PREFIX`
with moto's credentials and region, against moto in server mode on 127.0.0.1,
which these tests fill through the same AWS APIs Terraform would use.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_lambda.type_defs import FunctionConfigurationResponseTypeDef

SCRIPT = Path(__file__).resolve().parents[1] / "deployed.py"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}

# moto in server mode in its own process (as the emulator stage runs it): it
# prints its port, then serves until its stdin closes.
MOTO = """\
import sys
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def environment(home: Path) -> dict[str, str]:
    """This machine's variables without its AWS settings, with moto's credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {
        **env,
        **CREDENTIALS,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "HOME": str(home),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's endpoint; stopped when the module's tests are done."""
    env = environment(tmp_path_factory.mktemp("moto-home"))
    server = subprocess.Popen(
        [sys.executable, "-c", MOTO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        port = server.stdout.readline().strip()
        assert port.isdigit(), "moto printed no port"
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            yield f"http://127.0.0.1:{port}"
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def deployed(endpoint: str, prefix: str, home: Path) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-I", "-c", SCRIPT.read_text(), endpoint, prefix],
        capture_output=True,
        text=True,
        env=environment(home),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("\n")
    assert run.stdout.count("\n") == 1, "one line of JSON"
    document: dict[str, Any] = json.loads(run.stdout)
    return document


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def create_function(
    lambdas: LambdaClient, name: str, role: str, **settings: Any
) -> FunctionConfigurationResponseTypeDef:
    code = zipped({"app.py": "def handler(event, context):\n    return 1\n"})
    return lambdas.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code},
        **settings,
    )


def test_an_empty_account_has_no_api_and_no_functions(moto: str, tmp_path: Path) -> None:
    assert deployed(moto, "nothing", tmp_path) == {
        "api": None,
        "functions": {},
        "repositories": {},
    }


def test_functions_of_the_prefix_with_their_configuration_layers_and_log_groups(
    moto: str, tmp_path: Path
) -> None:
    lambdas = session().client("lambda", endpoint_url=moto)
    logs = session().client("logs", endpoint_url=moto)
    iam = session().client("iam", endpoint_url=moto)
    role = iam.create_role(RoleName="app-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    core = lambdas.publish_layer_version(
        LayerName="app-core", Content={"ZipFile": zipped({"python/core.py": "X = 1\n"})}
    )
    gone = lambdas.publish_layer_version(
        LayerName="app-gone", Content={"ZipFile": zipped({"python/gone.py": ""})}
    )
    users = create_function(
        lambdas,
        "app-users",
        role,
        MemorySize=256,
        Timeout=10,
        EphemeralStorage={"Size": 1024},
        Environment={"Variables": {"TABLE": "users"}},
        Layers=[core["LayerVersionArn"], gone["LayerVersionArn"]],
    )
    lambdas.put_function_concurrency(FunctionName="app-users", ReservedConcurrentExecutions=3)
    logs.create_log_group(logGroupName="/aws/lambda/app-users")
    logs.put_retention_policy(logGroupName="/aws/lambda/app-users", retentionInDays=14)
    # A layer version deleted since the function was made to use it.
    lambdas.delete_layer_version(LayerName="app-gone", VersionNumber=gone["Version"])
    create_function(lambdas, "app-plain", role)
    logs.create_log_group(logGroupName="/aws/lambda/app-plain")
    # Not "app-" functions: another prefix, the bare prefix, a longer word.
    for name in ("other-users", "app", "apple-users"):
        create_function(lambdas, name, role)

    document = deployed(moto, "app", tmp_path)

    assert document["api"] is None
    assert sorted(document["functions"]) == ["app-plain", "app-users"]
    found = document["functions"]["app-users"]
    assert found["configuration"] == {
        "Handler": "app.handler",
        "Runtime": "python3.11",
        "Architectures": ["x86_64"],
        "CodeSha256": users["CodeSha256"],
        "CodeSize": users["CodeSize"],
        "MemorySize": 256,
        "Timeout": 10,
        "EphemeralStorage": {"Size": 1024},
        "Environment": {"Variables": {"TABLE": "users"}},
        "Layers": users["Layers"],
        "PackageType": "Zip",
    }
    assert found["image_uri"] is None
    assert found["reserved_concurrency"] == 3
    assert found["log_group"] == {"retention_in_days": 14}
    kept, deleted = found["layers"]
    assert kept == {
        "arn": core["LayerVersionArn"],
        "content": {
            "CodeSha256": core["Content"]["CodeSha256"],
            "CodeSize": core["Content"]["CodeSize"],
        },
        "error": None,
    }
    assert deleted["arn"] == gone["LayerVersionArn"]
    assert deleted["content"] is None
    assert "GetLayerVersion" in deleted["error"]
    plain = document["functions"]["app-plain"]
    assert not plain["configuration"]["Layers"]  # AWS leaves it out; moto lists none
    assert plain["reserved_concurrency"] is None
    assert plain["log_group"] == {"retention_in_days": None}
    assert plain["layers"] == []


def test_an_image_function_and_its_repository(moto: str, tmp_path: Path) -> None:
    lambdas = session().client("lambda", endpoint_url=moto)
    iam = session().client("iam", endpoint_url=moto)
    ecr = session().client("ecr", endpoint_url=moto)
    role = iam.create_role(RoleName="app-image", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    repository = ecr.create_repository(
        repositoryName="app/img",
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
    )["repository"]
    selection = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}
    rule = {"rulePriority": 1, "selection": selection, "action": {"type": "expire"}}
    policy = {"rules": [rule]}
    ecr.put_lifecycle_policy(repositoryName="app/img", lifecyclePolicyText=json.dumps(policy))
    ecr.create_repository(repositoryName="bare")
    uri = repository["repositoryUri"] + "@sha256:" + "a" * 64
    lambdas.create_function(
        FunctionName="app-img", Role=role, PackageType="Image", Code={"ImageUri": uri}
    )

    document = deployed(moto, "app", tmp_path)

    found = document["functions"]["app-img"]
    assert found["configuration"]["PackageType"] == "Image"
    assert found["image_uri"] == uri
    kept = {"tag_mutability": "IMMUTABLE", "scan_on_push": True, "lifecycle_policy": policy}
    bare = {"tag_mutability": "MUTABLE", "scan_on_push": False, "lifecycle_policy": None}
    assert document["repositories"] == {"app/img": kept, "bare": bare}


def test_the_http_api_and_its_access_log(moto: str, tmp_path: Path) -> None:
    apis = session().client("apigatewayv2", endpoint_url=moto)
    logs = session().client("logs", endpoint_url=moto)
    group = "/aws/apigateway/logged-api"
    logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName=group, retentionInDays=30)
    for prefix, destination in [
        # The ARN Terraform's aws_cloudwatch_log_group gives, with ":*".
        ("logged", f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*"),
        ("lost", f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/apigateway/lost-api"),
        ("quiet", None),
    ]:
        api = apis.create_api(Name=f"{prefix}-api", ProtocolType="HTTP")
        if destination is None:
            apis.create_stage(ApiId=api["ApiId"], StageName="$default")
        else:
            apis.create_stage(
                ApiId=api["ApiId"],
                StageName="$default",
                AccessLogSettings={"DestinationArn": destination, "Format": "$context.requestId"},
            )

    no_routes: dict[str, Any] = {"routes": {}, "integrations": {}, "authorizers": {}}
    assert deployed(moto, "logged", tmp_path)["api"] == {
        "access_log": {"log_group_name": group, "log_group": {"retention_in_days": 30}},
        **no_routes,
    }
    assert deployed(moto, "lost", tmp_path)["api"] == {
        "access_log": {"log_group_name": "/aws/apigateway/lost-api", "log_group": None},
        **no_routes,
    }
    assert deployed(moto, "quiet", tmp_path)["api"] == {"access_log": None, **no_routes}


def test_the_routes_their_integrations_and_the_authorizer(moto: str, tmp_path: Path) -> None:
    apis = session().client("apigatewayv2", endpoint_url=moto)
    api_id = apis.create_api(Name="routed-api", ProtocolType="HTTP")["ApiId"]
    apis.create_stage(ApiId=api_id, StageName="$default")
    uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:123456789012:function:routed-users/invocations"
    )
    integration = apis.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationMethod="POST",
        IntegrationUri=uri,
        PayloadFormatVersion="1.0",
    )["IntegrationId"]
    authorizer = apis.create_authorizer(
        ApiId=api_id,
        Name="routed-authorizer",
        AuthorizerType="REQUEST",
        AuthorizerUri=uri,
        AuthorizerPayloadFormatVersion="2.0",
        EnableSimpleResponses=True,
        IdentitySource=["$request.header.Authorization"],
        AuthorizerResultTtlInSeconds=300,
    )["AuthorizerId"]
    # An authorizer no route names is not read (moto has no GetAuthorizers).
    apis.create_authorizer(
        ApiId=api_id,
        Name="unused",
        AuthorizerType="REQUEST",
        AuthorizerUri=uri,
        AuthorizerPayloadFormatVersion="2.0",
        IdentitySource=["$request.header.Authorization"],
    )
    target = f"integrations/{integration}"
    apis.create_route(
        ApiId=api_id,
        RouteKey="GET /users/{user_id}",
        Target=target,
        AuthorizationType="CUSTOM",
        AuthorizerId=authorizer,
    )
    apis.create_route(ApiId=api_id, RouteKey="OPTIONS /{proxy+}", Target=target)

    api = deployed(moto, "routed", tmp_path)["api"]

    assert api["routes"] == {
        "GET /users/{user_id}": {
            "target": target,
            "authorization_type": "CUSTOM",
            "authorizer_id": authorizer,
        },
        "OPTIONS /{proxy+}": {
            "target": target,
            "authorization_type": "NONE",
            "authorizer_id": None,
        },
    }
    assert api["integrations"] == {integration: {"uri": uri, "payload_format_version": "1.0"}}
    assert api["authorizers"] == {
        authorizer: {
            "type": "REQUEST",
            "uri": uri,
            "payload_format_version": "2.0",
            "enable_simple_responses": True,
            "identity_sources": ["$request.header.Authorization"],
            "result_ttl_in_seconds": 300,
        }
    }
