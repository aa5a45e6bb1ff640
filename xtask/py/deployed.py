"""Prints, as one JSON document, what an AWS API holds for the functions whose
names start with a prefix, and for the HTTP API "<prefix>-api": what `cargo
xtask ci` compares with dist/manifest.json after applying terraform/envs/dev
against moto.

argv[1] is the API's endpoint URL, argv[2] the name prefix (functions named
"<prefix>-*"). Credentials and the region come from the environment. Output:

    {"api": null (no such HTTP API) or
             {"access_log": null (its $default stage logs nothing) or
                            {"log_group_name": ...,
                             "log_group": {"retention_in_days": <int> or null}
                                          or null (no such group)},
              "routes": {"<route key>": {"target", "authorization_type", "authorizer_id"}},
              "integrations": {"<integration id>": {"uri", "payload_format_version"}},
              "authorizers": {"<id a route names>": {"type", "uri", "payload_format_version",
                              "enable_simple_responses", "identity_sources",
                              "result_ttl_in_seconds"}}},
     "functions": {"<function name>": {
        "configuration": {Handler, Runtime, Architectures, CodeSha256, CodeSize,
                          MemorySize, Timeout, EphemeralStorage, Environment, Layers,
                          PackageType},
        "image_uri": GetFunction's Code.ImageUri, or null (a ZIP function),
        "reserved_concurrency": <int> or null,
        "log_group": {"retention_in_days": <int> or null} or null (no such group),
        "layers": [{"arn": ..., "content": {"CodeSha256", "CodeSize"} or null,
                    "error": null or why the version could not be read}]}},
     "repositories": {"<ECR repository name>": {"tag_mutability", "scan_on_push",
                      "lifecycle_policy": the policy's JSON, parsed, or null}}}

Layer versions are read with GetLayerVersion (name and version from the ARN):
moto has no GetLayerVersionByArn. Authorizers are those the routes name, each
read with GetAuthorizer: moto has no GetAuthorizers.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_boto3_apigatewayv2.client import ApiGatewayV2Client
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_logs.client import CloudWatchLogsClient

CONFIGURATION_KEYS = (
    "Handler",
    "Runtime",
    "Architectures",
    "CodeSha256",
    "CodeSize",
    "MemorySize",
    "Timeout",
    "EphemeralStorage",
    "Environment",
    "Layers",
    "PackageType",
)


def function_names(client: LambdaClient, prefix: str) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_functions").paginate():
        names.extend(
            function["FunctionName"]
            for function in page["Functions"]
            if function["FunctionName"].startswith(prefix + "-")
        )
    return sorted(names)


def layer(client: LambdaClient, arn: str) -> dict[str, Any]:
    # arn:aws:lambda:<region>:<account>:layer:<name>:<version>
    layer_arn, _, version = arn.rpartition(":")
    try:
        answer = client.get_layer_version(LayerName=layer_arn, VersionNumber=int(version))
    except (ClientError, ValueError) as error:
        return {"arn": arn, "content": None, "error": str(error)}
    content = answer.get("Content", {})
    return {
        "arn": arn,
        "content": {key: content.get(key) for key in ("CodeSha256", "CodeSize")},
        "error": None,
    }


def log_group(client: CloudWatchLogsClient, name: str) -> dict[str, Any] | None:
    for page in client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page["logGroups"]:
            if group["logGroupName"] == name:
                return {"retention_in_days": group.get("retentionInDays")}
    return None


def repositories(client: Any) -> dict[str, Any]:
    # Any: the ECR client's stubs (types-boto3-ecr) are not among the dev requirements.
    found: dict[str, Any] = {}
    for page in client.get_paginator("describe_repositories").paginate():
        for item in page["repositories"]:
            name = item["repositoryName"]
            try:
                text = client.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
                policy = json.loads(text)
            except client.exceptions.LifecyclePolicyNotFoundException:
                policy = None
            found[name] = {
                "tag_mutability": item.get("imageTagMutability"),
                "scan_on_push": (item.get("imageScanningConfiguration") or {}).get("scanOnPush"),
                "lifecycle_policy": policy,
            }
    return found


def http_api(
    client: ApiGatewayV2Client, logs: CloudWatchLogsClient, name: str
) -> dict[str, Any] | None:
    apis = [
        api
        for page in client.get_paginator("get_apis").paginate()
        for api in page["Items"]
        if api["Name"] == name
    ]
    if not apis:
        return None
    api_id = apis[0]["ApiId"]
    stage = client.get_stage(ApiId=api_id, StageName="$default")
    destination = (stage.get("AccessLogSettings") or {}).get("DestinationArn")
    access_log = None
    if destination:
        # arn:aws:logs:<region>:<account>:log-group:<name>, maybe with ":*".
        group_name = destination.partition(":log-group:")[2].removesuffix(":*")
        access_log = {"log_group_name": group_name, "log_group": log_group(logs, group_name)}
    return {"access_log": access_log, **routing(client, api_id)}


def routing(client: ApiGatewayV2Client, api_id: str) -> dict[str, Any]:
    """The API's routes, the integrations they target and its authorizers."""
    routes = {
        route["RouteKey"]: {
            "target": route.get("Target"),
            "authorization_type": route.get("AuthorizationType"),
            "authorizer_id": route.get("AuthorizerId"),
        }
        for page in client.get_paginator("get_routes").paginate(ApiId=api_id)
        for route in page["Items"]
    }
    integrations = {
        item["IntegrationId"]: {
            "uri": item.get("IntegrationUri"),
            "payload_format_version": item.get("PayloadFormatVersion"),
        }
        for page in client.get_paginator("get_integrations").paginate(ApiId=api_id)
        for item in page["Items"]
    }
    named = sorted({route["authorizer_id"] for route in routes.values() if route["authorizer_id"]})
    authorizers: dict[str, Any] = {}
    for authorizer_id in named:
        item = client.get_authorizer(ApiId=api_id, AuthorizerId=authorizer_id)
        authorizers[authorizer_id] = {
            "type": item.get("AuthorizerType"),
            "uri": item.get("AuthorizerUri"),
            "payload_format_version": item.get("AuthorizerPayloadFormatVersion"),
            "enable_simple_responses": item.get("EnableSimpleResponses"),
            "identity_sources": item.get("IdentitySource"),
            "result_ttl_in_seconds": item.get("AuthorizerResultTtlInSeconds"),
        }
    return {"routes": routes, "integrations": integrations, "authorizers": authorizers}


def main() -> None:
    endpoint, prefix = sys.argv[1], sys.argv[2]
    lambdas = boto3.client("lambda", endpoint_url=endpoint)
    logs = boto3.client("logs", endpoint_url=endpoint)
    apis = boto3.client("apigatewayv2", endpoint_url=endpoint)
    functions: dict[str, Any] = {}
    for name in function_names(lambdas, prefix):
        function = lambdas.get_function(FunctionName=name)
        configuration = function["Configuration"]
        concurrency = lambdas.get_function_concurrency(FunctionName=name)
        functions[name] = {
            "configuration": {key: configuration.get(key) for key in CONFIGURATION_KEYS},
            "image_uri": (function.get("Code") or {}).get("ImageUri"),
            "reserved_concurrency": concurrency.get("ReservedConcurrentExecutions"),
            "log_group": log_group(logs, "/aws/lambda/" + name),
            "layers": [layer(lambdas, item["Arn"]) for item in configuration.get("Layers") or []],
        }
    document = {
        "api": http_api(apis, logs, prefix + "-api"),
        "functions": functions,
        "repositories": repositories(boto3.client("ecr", endpoint_url=endpoint)),
    }
    json.dump(document, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
