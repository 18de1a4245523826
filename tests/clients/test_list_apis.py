"""`listApis`, checked with CloudMonkey's `sync` type rules (fact sheet §8.3): cmk stores this reply
as its command cache and panics on a wrong JSON type, so every entry must have exactly these."""

import pytest

from conftest import new_user_account

PARAM_TYPES = {"boolean", "date", "float", "double", "integer", "short", "list", "long", "object", "map", "string", "uuid", "tzdate"}
ASYNC = {"disableAccount", "deleteAccount", "disableUser"}
SYNC = {"login", "logout", "listApis", "createAccount", "listAccounts", "createUser", "listUsers", "updateUser", "enableUser", "deleteUser", "registerUserKeys", "queryAsyncJobResult", "listEvents"}


def check_response_fields(fields, where):
    assert isinstance(fields, list), where
    for f in fields:
        assert isinstance(f, dict), where
        if "name" in f:
            assert isinstance(f["name"], str), where
        for k in ("description", "type"):
            if k in f:
                assert isinstance(f[k], str), (where, f)
        if "response" in f:
            check_response_fields(f["response"], "{}.{}".format(where, f.get("name")))


def check_cmk_types(apis, related_exist=True):
    names = [a.get("name") for a in apis]
    assert len(names) == len(set(names)), "duplicate API names"
    for a in apis:
        where = a.get("name")
        assert isinstance(a["name"], str) and a["name"], a
        assert type(a["isasync"]) is bool, where
        assert isinstance(a["description"], str), where
        assert isinstance(a["params"], list), where
        assert isinstance(a["response"], list), where
        if "related" in a:
            assert isinstance(a["related"], str), where
        seen = set()
        for p in a["params"]:
            assert isinstance(p, dict), where
            for k in ("name", "type", "description"):
                assert isinstance(p[k], str), (where, p)
            assert type(p["required"]) is bool, (where, p)
            assert type(p["length"]) is int and p["length"] > 0, (where, p)
            assert p["type"] in PARAM_TYPES, (where, p)
            assert p["name"] not in seen, (where, p["name"])
            seen.add(p["name"])
            if "related" in p:
                assert isinstance(p["related"], str), (where, p)
                # cmk's completer calls these: they have to exist (for an admin, who has all).
                for r in filter(None, p["related"].split(",") if related_exist else []):
                    assert r in names, (where, p["name"], r)
        check_response_fields(a["response"], where)


def test_admin_list_apis(admin):
    api = admin.api()
    reply = api("listApis", listall="true")
    apis = reply["api"]
    # count is the total and comes first (ApiResponseSerializer order).
    assert list(reply) == ["count", "api"] and reply["count"] == len(apis)
    check_cmk_types(apis)
    by_name = {a["name"]: a for a in apis}
    for name in ASYNC:
        assert by_name[name]["isasync"] is True, name
    for name in SYNC:
        assert by_name[name]["isasync"] is False, name
    # Required parameters as the server enforces them.
    required = {p["name"] for p in by_name["createAccount"]["params"] if p["required"]}
    assert required == {"username", "password", "email", "firstname", "lastname"}

    one = api("listApis", name="listUsers")
    assert one["count"] == 1 and [a["name"] for a in one["api"]] == ["listUsers"]
    ids = [p for p in one["api"][0]["params"] if p["name"] == "id"]
    assert len(ids) == 1 and ids[0]["type"] == "uuid" and "listUsers" in ids[0]["related"].split(",")


def test_user_list_apis(admin):
    user = new_user_account(admin, "apis").api()
    apis = user("listApis", listall="true")["api"]
    check_cmk_types(apis, related_exist=False)
    names = {a["name"] for a in apis}
    assert "listUsers" in names and "queryAsyncJobResult" in names
    for admin_only in ("createAccount", "deleteAccount", "disableUser", "createUser"):
        assert admin_only not in names, admin_only
    r = user.raw("listApis", name="createAccount")
    assert r.status_code == 431, r.text
    assert r.json()["listapisresponse"]["errortext"] == "The API createAccount does not exist or is not available for this account"


@pytest.mark.parametrize("name", ["listUsers", "deleteAccount"])
def test_list_apis_by_name_matches_full_list(admin, name):
    """The single-API reply is the same entry the full list has."""
    api = admin.api()
    full = {a["name"]: a for a in api("listApis")["api"]}
    assert api("listApis", name=name)["api"] == [full[name]]
