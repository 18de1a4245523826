"""Service and disk offerings and OS types, through `cs` and through Libcloud's list_sizes,
which reads `id`, `name`, `memory` and `cpunumber` of every offering without a fallback."""

import secrets

import pytest
from cs import CloudStack, CloudStackApiException
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider


def client(creds):
    return CloudStack(endpoint=creds.endpoint, key=creds.apikey, secret=creds.secret, method="post")


def error_of(call):
    with pytest.raises(CloudStackApiException) as e:
        call()
    return e.value.error


def test_service_offerings_reach_libcloud(admin):
    cs = client(admin)
    name = "so" + secrets.token_hex(3)
    so = cs.createServiceOffering(name=name, displaytext="Small", cpunumber=1, cpuspeed=500, memory=256)["serviceoffering"]
    assert (so["cpunumber"], so["cpuspeed"], so["memory"], so["storagetype"], so["iscustomized"]) == (1, 500, 256, "shared", False)
    assert cs.listServiceOfferings(name=name)["serviceoffering"][0]["id"] == so["id"]

    lc = get_driver(Provider.CLOUDSTACK)(key=admin.apikey, secret=admin.secret, host="127.0.0.1", port=admin.server.port, path="/client/api", secure=False)
    sizes = {s.id: s for s in lc.list_sizes()}
    assert sizes[so["id"]].name == name and sizes[so["id"]].ram == 256

    assert cs.deleteServiceOffering(id=so["id"]) == {"success": True}
    assert cs.listServiceOfferings(name=name) == {}


def test_disk_offerings_and_os_types(admin):
    cs = client(admin)
    name = "do" + secrets.token_hex(3)
    fixed = cs.createDiskOffering(name=name, disksize=5)["diskoffering"]
    assert (fixed["disksize"], fixed["iscustomized"], fixed["provisioningtype"]) == (5, False, "thin")
    custom = cs.createDiskOffering(name=name + "c", customized=True)["diskoffering"]
    assert custom["iscustomized"] is True and custom["disksize"] == 0
    listed = {d["id"] for d in cs.listDiskOfferings(keyword=name)["diskoffering"]}
    assert listed == {fixed["id"], custom["id"]}

    os_types = cs.listOsTypes(fetch_list=True)
    assert len(os_types) >= 10
    debian = [o for o in os_types if o["description"].startswith("Debian GNU/Linux 12")]
    assert debian and debian[0]["oscategoryname"] == "Debian" and debian[0]["isuserdefined"] is False
    assert cs.listOsTypes(id=debian[0]["id"])["ostype"][0]["description"] == debian[0]["description"]


@pytest.mark.parametrize(
    "command, params, text",
    [
        ("createServiceOffering", {"cpunumber": 1}, "cpunumber and memory"),
        ("createServiceOffering", {"cpunumber": 0, "memory": 256}, "cpunumber"),
        ("createServiceOffering", {"cpunumber": 1, "memory": 16}, "memory"),
        ("createServiceOffering", {"cpunumber": 1, "memory": 256, "storagetype": "tape"}, "storagetype"),
        ("createDiskOffering", {}, "disksize"),
        ("createDiskOffering", {"disksize": -1}, "disksize"),
        ("createDiskOffering", {"disksize": 1, "provisioningtype": "thick"}, "provisioningtype"),
    ],
)
def test_bad_offerings_create_nothing(admin, command, params, text):
    cs = client(admin)
    name = "bad" + secrets.token_hex(3)
    err = error_of(lambda: getattr(cs, command)(name=name, **params))
    assert err["errorcode"] == 431 and text in err["errortext"], err
    lister = cs.listServiceOfferings if command == "createServiceOffering" else cs.listDiskOfferings
    assert lister(name=name) == {}


def test_users_list_but_cannot_create_offerings(admin):
    from conftest import new_user_account

    user = new_user_account(admin, "off")
    cs = client(user)
    name = "pub" + secrets.token_hex(3)
    made = client(admin).createServiceOffering(name=name, cpunumber=1, memory=64)["serviceoffering"]
    err = error_of(lambda: cs.createServiceOffering(name="x", cpunumber=1, memory=64))
    assert err["errorcode"] == 401, err
    assert [o["id"] for o in cs.listServiceOfferings(name=name)["serviceoffering"]] == [made["id"]]
