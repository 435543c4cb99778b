"""Whether a gateway route is served yet, so that tests of routes still being built skip by
themselves (and turn on when the route lands) instead of failing."""

import json
import urllib.error
import urllib.request


def route_missing(base, path, body):
    """None when POST `path` answers anything but 404; else why it counts as missing."""
    if not base:
        return "SWITCHYARD_URL not set"
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30):
            return None
    except urllib.error.HTTPError as e:
        if e.code != 404:
            return None
        return f"POST {path} answered 404: {e.read().decode(errors='replace')[:200]}"
