"""The VirtualMachine built in one place: the parts the spec gives it, and the patch that brings a live VM to it."""

from __future__ import annotations

import copy

import jsonschema

from reconciler import guest
from reconciler.observation import Observed
from reconciler.vm import OPTIONAL_TEMPLATE_FIELDS, update_patch, virtual_machine
from tests import upstream
from tests.builders import disk, wukong
from wukong import api
from wukong.naming import CLOUD_INIT_DISK

SYSTEM = disk(
    "system", "80Gi", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40"
)
DATA = disk("data", "5Gi", storageClassName="longhorn")
EVERY_PART = {
    "sshKeySecret": "keys",
    "cloudInitUser": {"name": "fedora", "passwordHash": "$6$salt$hash"},
    "networks": [{"name": "lan", "type": "bridge", "bridgeName": "br-lan"}],
    "highAvailability": {
        "antiAffinity": True,
        "nodeSelector": {"zone": "a"},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
    },
}


def observed(**spec) -> Observed:
    obj = wukong(SYSTEM, DATA, **copy.deepcopy(spec))
    obj["metadata"].update(uid="uid-1", resourceVersion="10")
    return Observed(obj)


def built(seen: Observed) -> dict:
    return virtual_machine(seen, guest.cloud_init_secret(seen))


def live(vm: dict) -> dict:
    """The VM as the API server returns it: a resourceVersion, and defaults KubeVirt adds."""
    vm = copy.deepcopy(vm)
    vm["metadata"]["resourceVersion"] = "7"
    vm["spec"]["template"]["spec"]["domain"]["firmware"] = {"uuid": "d6a8-…"}
    vm["status"] = {"printableStatus": "Running"}
    return vm


def test_a_vm_with_every_part_is_valid_for_the_real_kubevirt_schema_and_has_every_optional_field():
    vm = built(observed(**EVERY_PART))
    jsonschema.validate(vm, upstream.strict_schema(upstream.VIRTUAL_MACHINE))
    template = vm["spec"]["template"]["spec"]
    assert set(OPTIONAL_TEMPLATE_FIELDS) <= set(template), "a field a part gives that an update could not remove"
    assert [d["name"] for d in template["domain"]["devices"]["disks"]] == ["system", "data", CLOUD_INIT_DISK]
    assert [n["name"] for n in template["networks"]] == ["default", "lan"]


def test_a_vm_without_guest_fields_has_no_optional_field_no_cloud_init_and_only_the_pod_network():
    vm = built(observed())
    template = vm["spec"]["template"]
    assert not set(OPTIONAL_TEMPLATE_FIELDS) & set(template["spec"])
    assert "annotations" not in template["metadata"]
    assert [v["name"] for v in template["spec"]["volumes"]] == ["system", "data"]
    assert template["spec"]["domain"]["devices"]["interfaces"] == [{"name": "default", "masquerade": {}}]


def test_the_template_carries_the_digest_of_the_cloud_init_secret_it_names():
    seen = observed(sshKeySecret="keys")
    secret = guest.cloud_init_secret(seen)
    template = virtual_machine(seen, secret)["spec"]["template"]
    digest = secret["metadata"]["annotations"][api.CLOUD_INIT_DIGEST_ANNOTATION]
    assert template["metadata"]["annotations"] == {api.CLOUD_INIT_DIGEST_ANNOTATION: digest}
    assert template["spec"]["volumes"][-1] == {
        "name": CLOUD_INIT_DISK,
        "cloudInitNoCloud": {"secretRef": {"name": secret["metadata"]["name"]}},
    }


def test_the_built_vm_shares_nothing_with_the_spec_it_was_built_from():
    seen = observed(**EVERY_PART)
    first = built(seen)
    first["spec"]["template"]["spec"]["tolerations"][0]["key"] = "changed"
    first["spec"]["template"]["spec"]["nodeSelector"]["zone"] = "b"
    assert built(seen) == built(observed(**EVERY_PART))


def test_a_vm_that_holds_the_desired_one_and_kubevirts_defaults_needs_no_patch():
    seen = observed(**EVERY_PART)
    assert update_patch(live(built(seen)), built(seen)) is None


def test_what_the_wukong_no_longer_asks_for_is_sent_as_null():
    before = live(built(observed(**EVERY_PART)))
    patch = update_patch(before, built(observed()))
    template = patch["spec"]["template"]
    assert {key: template["spec"][key] for key in OPTIONAL_TEMPLATE_FIELDS} == dict.fromkeys(OPTIONAL_TEMPLATE_FIELDS)
    assert template["metadata"]["annotations"] == {api.CLOUD_INIT_DIGEST_ANNOTATION: None}
    assert CLOUD_INIT_DISK not in [v["name"] for v in template["spec"]["volumes"]]


def test_the_run_strategy_is_the_users_until_the_start_strategy_changes():
    seen = observed()
    stopped = live(built(seen))
    stopped["spec"]["runStrategy"] = "Halted"  # virtctl stop
    assert update_patch(stopped, built(seen)) is None
    halted = observed(startStrategy={"autoStart": False})
    patch = update_patch(stopped, built(halted))
    assert patch["spec"]["runStrategy"] == "Halted"
    assert patch["metadata"]["annotations"] == {api.START_STRATEGY_ANNOTATION: halted.spec.start_strategy}
