"""Application code shared by the Lambda functions (the `shared` layer).

Deployed as its own layer at ``/opt/python/shared/`` and imported by the
handlers as ``from shared import …``. It uses only the standard library and
boto3 (provided by the Lambda runtime), so every function that attaches the
layer can import every module here without pulling in other dependencies.
"""
