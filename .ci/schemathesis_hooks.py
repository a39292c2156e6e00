"""Schemathesis hooks for the API contract check in .ci/run."""

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    # The document describes an NDJSON body as the text it is: send that text as UTF-8.
    # Non-string values only come from negative generation; their JSON text is what a
    # client sending them would put on the wire.
    if isinstance(value, str):
        return value.encode("utf-8")
    import json

    return json.dumps(value).encode("utf-8")
