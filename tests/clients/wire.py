"""CloudStack wire helpers for the tests: request signing done by hand (fact sheet §2), so that
tests can forge bad requests, plus small helpers to send a request and unwrap a reply."""

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import requests

TIMEOUT = 10

#: The text of every authentication failure (core/src/api/error.rs UNAUTHORIZED_TEXT).
UNAUTHORIZED_TEXT = "unable to verify user credentials and/or request signature"

_JAVA_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-*_")


def java_urlencode(value: str) -> str:
    """java.net.URLEncoder.encode(value, "UTF-8").replace("+", "%20")."""
    out = []
    for b in str(value).encode("utf-8"):
        if b in _JAVA_SAFE:
            out.append(chr(b))
        elif b == 0x20:
            out.append("%20")
        else:
            out.append("%{:02X}".format(b))
    return "".join(out)


def canonical(params: dict) -> str:
    """The string CloudStack signs: names as sent, sorted case-sensitively (Python's code-point
    order equals Java's UTF-16 order for these names), values re-encoded, all lower-cased."""
    names = sorted(k for k in params if k.lower() != "signature")
    return "&".join("{}={}".format(k, java_urlencode(params[k])) for k in names).lower()


def sign(params: dict, secret: str) -> str:
    digest = hmac.new(secret.encode(), canonical(params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def expires_in(delta: timedelta) -> str:
    """An `expires` value in the `cs` client's format, e.g. 2030-01-01T00:00:00+0000."""
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%S+0000")


def signed(params: dict, apikey: str, secret: str, *, v3: bool = False, expires: str = None) -> dict:
    """`params` plus apiKey, response=json, optionally v3 fields, and a signature with `secret`."""
    p = {"response": "json", **{k: str(v) for k, v in params.items()}, "apiKey": apikey}
    if v3 or expires is not None:
        p["signatureVersion"] = "3"
        p["expires"] = expires if expires is not None else expires_in(timedelta(minutes=10))
    p["signature"] = sign(p, secret)
    return p


def encode_form(params: dict) -> str:
    """Percent-encodes every byte outside the unreserved set, names included."""
    return "&".join("{}={}".format(quote(str(k), safe=""), quote(str(v), safe="")) for k, v in params.items())


def send(endpoint: str, params: dict, method: str = "GET", *, query: dict = None, session=None) -> requests.Response:
    """Sends `params` as the query string (GET) or as a form body (POST, with `query` in the URL)."""
    http = session or requests
    if method == "GET":
        return http.get(endpoint + "?" + encode_form(params), timeout=TIMEOUT)
    url = endpoint + ("?" + encode_form(query) if query else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return http.request(method, url, data=encode_form(params).encode(), headers=headers, timeout=TIMEOUT)


def unwrap(response: requests.Response):
    """(wrapper key, inner object) of a JSON reply, checking CloudStack's envelope rules:
    a JSON content type (the `cs` client insists) and exactly one top-level key."""
    ctype = response.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), "content type {!r}, body {!r}".format(ctype, response.text[:300])
    data = json.loads(response.text)
    assert isinstance(data, dict) and len(data) == 1, "expected one top-level key: {!r}".format(response.text[:300])
    [(key, value)] = data.items()
    return key, value


class Api:
    """A caller with API keys, signing each request itself."""

    def __init__(self, endpoint: str, apikey: str, secret: str):
        self.endpoint = endpoint
        self.apikey = apikey
        self.secret = secret

    def raw(self, command: str, method: str = "GET", **params) -> requests.Response:
        return send(self.endpoint, signed({"command": command, **params}, self.apikey, self.secret), method)

    def __call__(self, command: str, **params):
        """The inner reply of a successful call; fails the test on any error status."""
        r = self.raw(command, **params)
        key, value = unwrap(r)
        assert r.status_code == 200, "{} -> {} {}".format(command, r.status_code, r.text[:500])
        assert key == command.lower() + "response"
        return value

    def wait_job(self, job_id: str, timeout: float = 20.0) -> dict:
        """Polls queryAsyncJobResult until the job leaves status 0; returns the flat reply."""
        deadline = time.monotonic() + timeout
        while True:
            j = self("queryAsyncJobResult", jobid=job_id)
            if j["jobstatus"] != 0:
                return j
            assert time.monotonic() < deadline, "job {} still pending after {} s".format(job_id, timeout)
            time.sleep(0.05)
