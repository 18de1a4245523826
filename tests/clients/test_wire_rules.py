"""Wire rules from the fact sheet (§1, §2, §5) that some client depends on, checked with
hand-signed requests: accepted spellings, parameter decoding, reply format and headers."""

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests

import wire


def future(fmt: str) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime(fmt)


# The `expires` spellings CloudStack's DateUtil.parseTZDateString accepts (§2.1): cs sends +0000,
# cloudstack-go RFC 3339 with Z.
EXPIRES_FORMATS = {
    "offset-compact": "%Y-%m-%dT%H:%M:%S+0000",
    "rfc3339-z": "%Y-%m-%dT%H:%M:%SZ",
    "offset-colon": "%Y-%m-%dT%H:%M:%S+00:00",
    "fraction-z": "%Y-%m-%dT%H:%M:%S.123456Z",
    "fraction-offset": "%Y-%m-%dT%H:%M:%S.123456+0000",
    "literal-z-then-offset": "%Y-%m-%dT%H:%M:%SZ+0000",
}


@pytest.mark.parametrize("fmt", EXPIRES_FORMATS.values(), ids=EXPIRES_FORMATS.keys())
def test_v3_expires_formats(admin, fmt):
    p = wire.signed({"command": "listAccounts", "name": "admin"}, admin.apikey, admin.secret, expires=future(fmt))
    r = wire.send(admin.endpoint, p)
    assert r.status_code == 200, r.text


def test_parameter_name_spellings(admin):
    # `apikey`, `signature` and `signatureVersion` are found whatever their case.
    p = {"command": "listAccounts", "name": "admin", "response": "json", "apikey": admin.apikey}
    p["Signature"] = wire.sign(p, admin.secret)
    r = wire.send(admin.endpoint, p)
    assert r.status_code == 200, r.text
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    p = {"command": "listAccounts", "response": "json", "apiKey": admin.apikey, "SIGNATUREVERSION": "3", "Expires": past}
    p["signature"] = wire.sign(p, admin.secret)
    r = wire.send(admin.endpoint, p)
    assert r.status_code == 401, "a v3 request past its expiry must fail, whatever the names' case"


def test_query_decoding(admin):
    # `+` in the query string is a space (§1): signed as "admin x" and sent as admin+x, the
    # signature only matches if the server decodes it so (else 401).
    p = wire.signed({"command": "listAccounts", "name": "admin x"}, admin.apikey, admin.secret)
    query = wire.encode_form(p)
    assert "name=admin%20x" in query
    r = requests.get(admin.endpoint + "?" + query.replace("name=admin%20x", "name=admin+x"), timeout=wire.TIMEOUT)
    assert r.status_code == 200, r.text
    assert wire.unwrap(r) == ("listaccountsresponse", {})
    # The last of a repeated name wins, in the signature and in the command.
    p = wire.signed({"command": "listAccounts", "name": "admin"}, admin.apikey, admin.secret)
    r = requests.get(admin.endpoint + "?name=nobody&" + wire.encode_form(p), timeout=wire.TIMEOUT)
    assert r.status_code == 200, r.text
    assert [a["name"] for a in wire.unwrap(r)[1]["account"]] == ["admin"]


def test_post_form_with_query_parameters(admin):
    # cloudstack-go style: a POST form body, the rest in the query; both are merged and signed.
    p = wire.signed({"command": "listAccounts", "name": "admin"}, admin.apikey, admin.secret, v3=True)
    query = {k: p.pop(k) for k in ("command", "response")}
    r = wire.send(admin.endpoint, p, "POST", query=query)
    assert r.status_code == 200, r.text
    assert wire.unwrap(r)[1]["account"][0]["name"] == "admin"


def test_sub_path_and_headers(admin):
    p = wire.signed({"command": "listAccounts", "name": "admin", "response": "JSON"}, admin.apikey, admin.secret)
    r = wire.send(admin.endpoint + "/anything/below", p)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-XSS-Protection"] == "1;mode=block"
    assert r.json()["listaccountsresponse"]["count"] == 1


def test_xml_when_response_is_not_json(admin):
    for extra in ({}, {"response": "xml"}, {"response": "yaml"}):
        p = {"command": "listAccounts", "name": "admin", "apiKey": admin.apikey, **extra}
        p["signature"] = wire.sign(p, admin.secret)
        r = wire.send(admin.endpoint, p)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/xml; charset=UTF-8"
        assert re.match(r'^<\?xml version="1.0" encoding="UTF-8"\?><listaccountsresponse cloud-stack-version="[^"]+"><count>1</count><account>', r.text), r.text[:200]
    # Errors too: the code and text straight under the root.
    r = requests.get(admin.endpoint, params={"command": "listAccounts", "apiKey": admin.apikey, "signature": "x"}, timeout=wire.TIMEOUT)
    assert r.status_code == 401
    assert "<errorcode>401</errorcode>" in r.text and "<errortext>{}</errortext>".format(wire.UNAUTHORIZED_TEXT) in r.text


def test_no_command_no_credentials_is_400(server):
    r = requests.get(server.endpoint, params={"response": "json"}, timeout=wire.TIMEOUT)
    assert r.status_code == 400
    key, body = wire.unwrap(r)
    assert key == "errorresponse" and body["errorcode"] == 400


def test_string_length_limit(admin):
    # 255 characters pass, 256 are refused before anything is created (§4 string length).
    api = admin.api()
    r = api.raw("listAccounts", name="a" * 255)
    assert r.status_code == 200, r.text
    r = api.raw("listAccounts", name="a" * 256)
    assert r.status_code == 431, r.text
    body = wire.unwrap(r)[1]
    assert body["errortext"] == "Invalid value of parameter name: it is longer than the maximum of 255 characters"
