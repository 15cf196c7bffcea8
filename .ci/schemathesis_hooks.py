"""Signs webhook deliveries for .ci/schemathesis, as GitHub does, so that
schemathesis reaches the webhook's real logic instead of its signature check.

A request whose generated X-Hub-Signature-256 is well-formed gets the right
HMAC-SHA256 of the exact bytes sent, with the secret the server was given
(EPHEMERA_SCHEMATHESIS_WEBHOOK_SECRET). A missing or malformed signature is
left as generated: the server must refuse it.
"""

import hashlib
import hmac
import json
import os
import re

import schemathesis
from schemathesis.core import NotSet

SECRET = os.environ["EPHEMERA_SCHEMATHESIS_WEBHOOK_SECRET"].encode()
WEBHOOK = "/api/v1/github/webhook"
# As the description's pattern for the header.
WELL_FORMED = re.compile(r"sha256=[0-9a-fA-F]{64}")


def wire_bytes(body):
    """The bytes schemathesis would send for a JSON body, or None when it
    has no JSON spelling (then the request goes unsigned, as generated)."""
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError):
        return None


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != WEBHOOK or not case.headers:
        return
    signature = case.headers.get("X-Hub-Signature-256")
    if not isinstance(signature, str) or not WELL_FORMED.fullmatch(signature):
        return
    body = wire_bytes(case.body)
    if body is None:
        return
    # Sent as is: the bytes signed are the bytes the server reads.
    kwargs["data"] = body
    case.headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
