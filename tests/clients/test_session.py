"""Session login over plain HTTP, as the UI and CloudMonkey's password mode do it (fact sheet §3):
a form POST, JSESSIONID and sessionkey cookies, and the session key sent back as a parameter."""

import re
import secrets

import pytest
import requests

import wire
from conftest import ADMIN_PASSWORD

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
LOGIN = {"command": "login", "username": "admin", "password": ADMIN_PASSWORD, "response": "json"}


def set_cookies(response):
    """name -> full Set-Cookie header, for every cookie the reply sets."""
    headers = response.raw.headers.getlist("Set-Cookie")
    return {h.split("=", 1)[0].strip(): h for h in headers}


def test_login_use_logout(server):
    s = requests.Session()
    r = s.post(server.endpoint, data=LOGIN, timeout=wire.TIMEOUT)
    assert r.status_code == 200, r.text
    key, lr = wire.unwrap(r)
    assert key == "loginresponse"
    # Flat fields with CloudStack's types: timeout an int, type a string.
    assert lr["username"] == "admin" and lr["account"] == "admin"
    assert type(lr["timeout"]) is int and lr["timeout"] > 0
    assert lr["type"] == "1"
    assert lr["registered"] == "false"
    assert lr["managementserverid"] == server.server_id()
    for field in ("userid", "domainid"):
        assert re.match(UUID_RE, lr[field]), lr
    # 20 random bytes, URL-safe base64 without padding.
    assert re.match(r"^[A-Za-z0-9_-]{27}$", lr["sessionkey"]), lr["sessionkey"]
    # Cookies: JSESSIONID (path /client) and sessionkey equal to the body's key, both HttpOnly.
    cookies = set_cookies(r)
    assert set(cookies) == {"JSESSIONID", "sessionkey"}, cookies
    assert s.cookies.get("sessionkey") == lr["sessionkey"]
    assert s.cookies.get("JSESSIONID")
    for header in cookies.values():
        assert "Path=/client" in header and "HttpOnly" in header, header

    # With the session key as a parameter plus the cookies: a normal call works, no signature.
    ok = s.get(server.endpoint, params={"command": "listAccounts", "name": "admin", "sessionkey": lr["sessionkey"], "response": "json"}, timeout=wire.TIMEOUT)
    assert ok.status_code == 200, ok.text
    key, body = wire.unwrap(ok)
    assert key == "listaccountsresponse" and body["count"] == 1 and body["account"][0]["name"] == "admin"

    # The parameter without the cookies: 401; there is no session to blame, so it lives on.
    no_cookie = requests.get(server.endpoint, params={"command": "listAccounts", "sessionkey": lr["sessionkey"], "response": "json"}, timeout=wire.TIMEOUT)
    assert no_cookie.status_code == 401
    assert wire.unwrap(no_cookie) == ("listaccountsresponse", {"uuidList": [], "errorcode": 401, "errortext": wire.UNAUTHORIZED_TEXT})
    again = s.get(server.endpoint, params={"command": "listAccounts", "name": "admin", "sessionkey": lr["sessionkey"], "response": "json"}, timeout=wire.TIMEOUT)
    assert again.status_code == 200

    old_cookies = {"JSESSIONID": s.cookies.get("JSESSIONID"), "sessionkey": s.cookies.get("sessionkey")}
    out = s.post(server.endpoint, data={"command": "logout", "response": "json"}, timeout=wire.TIMEOUT)
    assert out.status_code == 200
    assert wire.unwrap(out) == ("logoutresponse", {"description": "success"})
    # Every cookie comes back expired, and the jar drops them.
    expired = set_cookies(out)
    assert set(expired) == {"JSESSIONID", "sessionkey"}, expired
    for name, header in expired.items():
        assert header.startswith(name + "=;") and "Max-Age=0" in header, header
    assert s.cookies.get("JSESSIONID") is None and s.cookies.get("sessionkey") is None

    # The old session no longer works, even replayed with its old cookies and key.
    replay = requests.get(
        server.endpoint,
        params={"command": "listAccounts", "sessionkey": old_cookies["sessionkey"], "response": "json"},
        cookies=old_cookies,
        timeout=wire.TIMEOUT,
    )
    assert replay.status_code == 401
    assert wire.unwrap(replay)[1]["errortext"] == wire.UNAUTHORIZED_TEXT


@pytest.mark.parametrize("fault", ["no-sessionkey-param", "wrong-sessionkey-param"])
def test_failed_session_check_ends_the_session(server, fault):
    """Fact sheet §3: when the cookie/parameter check fails the reply is 401 and the session is
    invalidated (ApiServlet invalidateHttpSession), so a forged cross-site request that carries the
    cookies but not the key cannot be retried against a live session."""
    s = requests.Session()
    r = s.post(server.endpoint, data=LOGIN, timeout=wire.TIMEOUT)
    key = r.json()["loginresponse"]["sessionkey"]
    params = {"command": "listAccounts", "name": "admin", "response": "json"}
    assert s.get(server.endpoint, params=dict(params, sessionkey=key), timeout=wire.TIMEOUT).status_code == 200
    bad = dict(params) if fault == "no-sessionkey-param" else dict(params, sessionkey=key[::-1])
    r = s.get(server.endpoint, params=bad, timeout=wire.TIMEOUT)
    assert r.status_code == 401
    assert wire.unwrap(r) == ("listaccountsresponse", {"uuidList": [], "errorcode": 401, "errortext": wire.UNAUTHORIZED_TEXT})
    after = s.get(server.endpoint, params=dict(params, sessionkey=key), timeout=wire.TIMEOUT)
    assert after.status_code == 401, "the session still works after a failed session-key check: " + after.text[:200]


def test_login_by_get_is_405(server):
    r = requests.get(server.endpoint, params=LOGIN, timeout=wire.TIMEOUT)
    assert r.status_code == 405
    assert wire.unwrap(r) == ("loginresponse", {"uuidList": [], "errorcode": 405, "errortext": "Please use HTTP POST to authenticate using this API"})
    assert "Set-Cookie" not in r.headers


def test_wrong_password_is_531(server):
    for data in (dict(LOGIN, password=ADMIN_PASSWORD + "x"), dict(LOGIN, username="nobody-at-all")):
        r = requests.post(server.endpoint, data=data, timeout=wire.TIMEOUT)
        assert r.status_code == 531
        key, body = wire.unwrap(r)
        assert key == "loginresponse"
        assert body["errorcode"] == 531
        assert body["errortext"] == "Failed to authenticate user; please provide valid credentials"
        assert "sessionkey" not in body
        assert "Set-Cookie" not in r.headers


SPELLINGS = {
    "path": lambda name, uuid: {"domain": "/{}/".format(name)},
    "bare-name": lambda name, uuid: {"domain": name},
    "domainId": lambda name, uuid: {"domainId": uuid},
    "domainId-wins": lambda name, uuid: {"domainId": uuid, "domain": "/"},
}


@pytest.mark.parametrize("spelling", SPELLINGS, ids=list(SPELLINGS))
@pytest.mark.parametrize("domain_name", ["child", "ROOTS"])
def test_login_into_a_sub_domain(admin, domain_name, spelling):
    """Fact sheet §3: `domain` is a path normalised to start and end with `/` (a sub-domain is
    `/child/`), and `domainId` (a UUID) names the domain directly and takes precedence. A domain
    whose name starts with "ROOT" is an ordinary sub-domain like any other."""
    api = admin.api()
    name = domain_name + secrets.token_hex(3)
    domain = api("createDomain", name=name)["domain"]
    user = "sub" + secrets.token_hex(4)
    api("createAccount", username=user, password="pw", email="e@example.org", firstname="F", lastname="L", accounttype=0, domainid=domain["id"])
    form = {"command": "login", "username": user, "password": "pw", "response": "json"}
    r = requests.post(admin.endpoint, data=dict(form, **SPELLINGS[spelling](name, domain["id"])), timeout=wire.TIMEOUT)
    assert r.status_code == 200, r.text
    lr = wire.unwrap(r)[1]
    assert lr["domainid"] == domain["id"] and lr["username"] == user and lr["type"] == "0"
    assert "managementserverid" not in lr  # root admins only
    # The same user name is not found in ROOT.
    assert requests.post(admin.endpoint, data=form, timeout=wire.TIMEOUT).status_code == 531
