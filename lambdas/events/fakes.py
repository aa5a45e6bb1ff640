"""The local world the sample events in lambdas/events run against.

    python lambdas/events/fakes.py      # a Python with lambdas/requirements-dev.txt

starts, on 127.0.0.1 only and on free ports, the fakes of world.py:

* moto in server mode (DynamoDB and Secrets Manager), with the tables and
  secrets the functions use and the items the events address;
* Cognito: the user pool's JWKS (the public half of test-signing-key.pem)
  and the hosted UI's token endpoint, which issues tokens signed with it;
* OpenAI's chat completions endpoint, answering a canned reply;

then prints ONE line of JSON on stdout, ``{"env": {<function>: {<name>: <value>}}}``,
the environment each function needs to use these fakes (no AWS credentials
or region: the caller sets fake ones and us-east-1), and serves until stdin
reaches EOF. Logs go to stderr.

The world is set up once per run: an event that consumes something (the
delete of the seeded user) succeeds once per run of this script.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

import world
from world import HttpFake

FUNCTIONS = ("sms", "auth", "users", "authorizer", "cors")

log = logging.getLogger("fakes")


def environment(
    aws: str, arns: dict[str, str], idp: str, hosted_ui: str, openai: str
) -> dict[str, dict[str, str]]:
    common = {
        "ALLOWED_ORIGINS": world.ALLOWED_ORIGIN,
        "LOG_LEVEL": "INFO",
        "AWS_ENDPOINT_URL": aws,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    cognito = {
        "COGNITO_USER_POOL_ID": world.USER_POOL_ID,
        "COGNITO_CLIENT_ID": world.CLIENT_ID,
        # The issuer stays Cognito's (it is in the tokens); only the keys are fetched locally.
        "JWKS_URL": f"{idp}{world.JWKS_PATH}",
    }
    env = {
        "sms": {
            "CONVERSATIONS_TABLE": world.CONVERSATIONS_TABLE,
            "TWILIO_WEBHOOK_URL": world.TWILIO_WEBHOOK_URL,
            "TWILIO_AUTH_TOKEN_SECRET_ARN": arns["twilio-auth-token"],
            "OPENAI_API_KEY_SECRET_ARN": arns["openai-api-key"],
            "OPENAI_API_URL": f"{openai}/v1/chat/completions",
        },
        "auth": {
            **cognito,
            "COGNITO_CLIENT_SECRET_ARN": arns["cognito-client-secret"],
            "COGNITO_DOMAIN": hosted_ui,
            "COGNITO_REDIRECT_URI": world.REDIRECT_URI,
            "POST_LOGIN_REDIRECT_URL": world.POST_LOGIN_REDIRECT_URL,
            "USERS_TABLE": world.USERS_TABLE,
        },
        "users": {"USERS_TABLE": world.USERS_TABLE},
        "authorizer": cognito,
        "cors": {},
    }
    return {name: dict(sorted({**common, **env[name]}.items())) for name in FUNCTIONS}


def isolate_from_host() -> None:
    """Keep this process's own boto3 and HTTP off the developer's AWS config and proxies."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="fakes %(levelname)s %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    # Only the env line may reach stdout: anything a library prints goes to stderr.
    stdout, sys.stdout = sys.stdout, sys.stderr
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    isolate_from_host()
    started = time.monotonic()

    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        log.error("%s: install lambdas/requirements-dev.txt (moto's server needs flask)", error)
        return 1

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    fakes: list[HttpFake] = []
    try:
        host, port = moto.get_host_and_port()
        aws = f"http://{host}:{port}"
        arns = world.seed_aws(aws)
        keys = world.jwks()
        idp = HttpFake("cognito-idp", {f"GET {world.JWKS_PATH}": lambda request: (200, keys)})
        hosted_ui = HttpFake("cognito-hosted-ui", {"POST /oauth2/token": world.token_endpoint})
        openai = HttpFake("openai", {"POST /v1/chat/completions": world.chat_completions})
        fakes = [idp, hosted_ui, openai]
        env = environment(aws, arns, idp.url(), hosted_ui.url(), openai.url())
        stdout.write(json.dumps({"env": env}) + "\n")
        stdout.flush()
        log.info(
            "ready in %.2f s: moto %s, JWKS %s, token endpoint %s, OpenAI %s; close stdin to stop",
            time.monotonic() - started,
            aws,
            idp.url(),
            hosted_ui.url(),
            openai.url(),
        )
        while sys.stdin.buffer.read(65536):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for fake in fakes:
            fake.stop()
        moto.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
