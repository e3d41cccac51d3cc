"""The rest of the Wukong API on a real API server: cloud-init, SSH keys, Multus networks, placement."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from devcluster import crds
from devcluster.local_reconciler import SERVICE_ACCOUNT
from kubeclient.resources import NETWORK_ATTACHMENT_DEFINITIONS, SECRETS, VIRTUAL_MACHINES
from kubeclient.rest import Kube
from tests.e2e.test_namespace_policy import kubectl_apply, limits
from tests.e2e.test_reconciler import apply, wait_condition, wait_for_wukong, wait_running
from tests.waiting import poll, wait_for_object
from wukong.api import WUKONGS

pytestmark = pytest.mark.usefixtures("reconciler")
NAME = "web"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@example"

# The shape of the Go operator's own samples: a dhcp bridge network, a cloud-init user, an SSH key Secret, placement.
GO_SAMPLE = f"""
apiVersion: vm.novasphere.dev/v1alpha1
kind: Wukong
metadata:
  name: {NAME}
spec:
  cpu: 2
  memory: 4Gi
  sshKeySecret: web-keys
  cloudInitUser:
    name: fedora
    password: s3cret-Pass
    groups: [wheel, adm]
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
  networks:
    - name: lan
      type: bridge
      bridgeName: br-lan
      vlanId: 100
      ipConfig: {{mode: dhcp}}
    - name: storage
      type: macvlan
      master: eth1
      ipConfig:
        {{mode: static, address: 10.20.0.5/24, gateway: 10.20.0.1, routes: [10.30.0.0/16], dnsServers: [10.20.0.2]}}
  disks:
    - name: system
      size: 20Gi
      image: docker://quay.io/containerdisks/fedora:40
  highAvailability:
    antiAffinity: true
    nodeSelector: {{kubernetes.io/arch: amd64}}
    tolerations:
      - {{key: dedicated, operator: Equal, value: vms, effect: NoSchedule}}
"""


# What a cluster admin allows the sample's two host networks with: bridge br-lan tagged 100, macvlan over eth1.
HOST_NETWORKS = [{"type": "bridge", "interface": "br-lan", "vlans": ["100"]}, {"type": "macvlan", "interface": "eth1"}]


@pytest.fixture(autouse=True)
def host_networks(cluster, namespace):
    """A WukongPolicy allowing the sample's host networks in this test's namespace, in force once a server-side dry
    run of the sample is admitted (the webhook's policy cache has it)."""
    allowing = limits(f"host-networks-{namespace}", namespace, networks={"hostNetworks": HOST_NETWORKS})
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(allowing))
    sample = yaml.safe_load(GO_SAMPLE)
    poll(
        lambda: kubectl_apply(cluster, namespace, sample, "--dry-run=server").returncode == 0,
        "the webhook to allow the sample's host networks",
    )
    yield
    cluster.kubectl("delete", "wukongpolicy", allowing["metadata"]["name"])


def ssh_secret(namespace: str, key: str = KEY) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-keys", "namespace": namespace},
        "stringData": {"key1": key},
    }


def user_data(admin: Kube, namespace: str) -> dict[str, Any]:
    secret = admin.get(SECRETS, namespace, f"{NAME}-cloudinit")
    text = base64.b64decode(secret["data"]["userdata"]).decode()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_the_go_operators_sample_gets_its_users_keys_networks_and_placement(cluster, admin, namespace):
    admin.create(SECRETS, ssh_secret(namespace))
    created = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=GO_SAMPLE)
    assert "password is stored as its SHA-512 hash" in created.stderr
    stored = admin.get(WUKONGS, namespace, NAME)
    assert "s3cret-Pass" not in json.dumps(stored), "the plaintext is stored nowhere, last-applied included"
    wait_running(admin, namespace, NAME)

    template = admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")["spec"]["template"]["spec"]
    assert [i["name"] for i in template["domain"]["devices"]["interfaces"]] == ["default", "lan", "storage"]
    assert template["networks"][0] == {"name": "default", "pod": {}}
    assert template["networks"][1] == {"name": "lan", "multus": {"networkName": f"{NAME}-lan"}}
    cloud_init = next(v for v in template["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]
    assert cloud_init == {
        "secretRef": {"name": f"{NAME}-cloudinit"},
        "networkDataSecretRef": {"name": f"{NAME}-cloudinit"},
    }
    assert template["accessCredentials"] == [
        {"sshPublicKey": {"source": {"secret": {"secretName": "web-keys"}}, "propagationMethod": {"noCloud": {}}}}
    ]
    assert template["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert template["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "vms", "effect": "NoSchedule"}
    ]
    assert template["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"]

    users = user_data(admin, namespace)["users"]
    assert [(u["name"], u["groups"], u["shell"]) for u in users] == [("fedora", ["wheel", "adm"], "/bin/bash")]
    assert users[0]["passwd"].startswith("$6$")
    secret = admin.get(SECRETS, namespace, f"{NAME}-cloudinit")
    assert b"s3cret-Pass" not in json.dumps(secret).encode() + base64.b64decode(secret["data"]["userdata"])
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "Wukong"

    lan = admin.get(NETWORK_ATTACHMENT_DEFINITIONS, namespace, f"{NAME}-lan")
    assert lan["metadata"]["ownerReferences"][0]["name"] == NAME
    config = json.loads(lan["spec"]["config"])
    assert (config["type"], config["bridge"], config["vlan"], config["ipam"]) == (
        "bridge",
        "br-lan",
        100,
        {"type": "dhcp"},
    )
    storage = json.loads(admin.get(NETWORK_ATTACHMENT_DEFINITIONS, namespace, f"{NAME}-storage")["spec"]["config"])
    assert storage["type"] == "macvlan"
    ethernets = yaml.safe_load(base64.b64decode(secret["data"]["networkdata"]))["ethernets"]
    assert ethernets["storage"]["addresses"] == ["10.20.0.5/24"]
    assert ethernets["storage"]["routes"] == [{"to": "10.30.0.0/16", "via": "10.20.0.1"}]  # no second default route
    assert ethernets["default"]["dhcp4"] is True
    assert user_data(admin, namespace)["ssh_pwauth"] is False  # the password is for the console: not asked for SSH


def test_a_rotated_ssh_key_reaches_the_vm_the_kubevirt_way_without_re_creating_it(cluster, admin, namespace):
    admin.create(SECRETS, ssh_secret(namespace))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=GO_SAMPLE)
    wait_running(admin, namespace, NAME)
    before = admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")
    rotated = KEY.replace("user@example", "rotated@example")
    admin.patch(SECRETS, namespace, "web-keys", {"stringData": {"key1": rotated}})
    wait_condition(admin, namespace, NAME, "Degraded", "False")
    after = admin.get(VIRTUAL_MACHINES, namespace, f"{NAME}-vm")
    assert (after["metadata"]["uid"], after["metadata"]["generation"]) == (
        before["metadata"]["uid"],
        before["metadata"]["generation"],
    ), "the VM was re-created or changed: KubeVirt reads the Secret by name"
    assert after["spec"]["template"]["spec"]["accessCredentials"][0]["sshPublicKey"]["source"]["secret"] == {
        "secretName": "web-keys"
    }


def test_a_missing_ssh_key_secret_is_degraded_and_named(cluster, admin, namespace):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=GO_SAMPLE)
    degraded = wait_condition(admin, namespace, NAME, "Degraded", "True")
    assert degraded["reason"] == "SSHKeySecretNotFound"
    assert "web-keys" in degraded["message"]
    admin.create(SECRETS, ssh_secret(namespace))
    wait_running(admin, namespace, NAME)


def test_a_wukong_missing_its_nad_and_secret_is_blocked_on_them_and_goes_on_as_each_appears(cluster, admin, namespace):
    obj = yaml.safe_load(GO_SAMPLE)
    obj["spec"]["networks"] = [{"name": "corp", "type": "bridge", "nadName": "corp-lan"}]  # not there yet
    apply(cluster, namespace, obj)

    def blocked_on(reason: str):
        def check(current: dict[str, Any]) -> dict[str, Any] | None:
            ready = next((c for c in current.get("conditions") or [] if c["type"] == "Ready"), {})
            return ready if current.get("phase") == "Blocked" and ready.get("reason") == reason else None

        return check

    ready = wait_for_wukong(admin, namespace, NAME, blocked_on("NetworkNotFound"), "Blocked on the NAD")
    assert ready["status"] == "False"
    assert ready["message"].startswith("blocked: no virtual machine is created until this is fixed: ")
    assert "names NetworkAttachmentDefinition corp-lan, which does not exist" in ready["message"]
    assert "names Secret web-keys, which does not exist" in ready["message"]
    current = admin.get(WUKONGS, namespace, NAME)["status"]
    assert "starting" not in json.dumps(current) and current.get("vmName") is None
    table = cluster.kubectl("get", "wukong", NAME, "-n", namespace).stdout.splitlines()
    assert table[1].split()[1:4] == ["Blocked", "False", "True"]  # PHASE, READY, DEGRADED

    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "corp-lan", "namespace": namespace},
        "spec": {"config": json.dumps({"cniVersion": "0.3.1", "type": "bridge", "bridge": "br-corp"})},
    }
    admin.create(NETWORK_ATTACHMENT_DEFINITIONS, nad)
    ready = wait_for_wukong(admin, namespace, NAME, blocked_on("SSHKeySecretNotFound"), "Blocked on the Secret alone")
    assert "corp-lan" not in ready["message"]
    assert "create it with the public keys" in ready["message"]

    admin.create(SECRETS, ssh_secret(namespace))
    wait_running(admin, namespace, NAME)
    assert admin.get(WUKONGS, namespace, NAME)["status"]["vmName"] == f"{NAME}-vm"


def test_without_multus_the_wukong_says_so_and_converges_once_multus_is_installed(cluster, admin, namespace):
    kind = crds.NETWORK_ATTACHMENT_DEFINITION
    cluster.kubectl("delete", "crd", kind.crd_name, "--wait=true")
    try:
        admin.create(SECRETS, ssh_secret(namespace))
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=GO_SAMPLE)
        degraded = wait_condition(admin, namespace, NAME, "Degraded", "True")
        assert degraded["reason"] == "MultusNotInstalled"
        assert "spec.networks" in degraded["message"]
        assert admin.get(WUKONGS, namespace, NAME)["status"].get("vmName") is None
    finally:
        cluster.apply([crds.crd(kind)])
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{kind.crd_name}")
    wait_for_wukong(admin, namespace, NAME, lambda s: s.get("phase") == "Running", "Running once Multus is there")


def test_a_hostile_password_cannot_inject_cloud_config_and_a_hostile_user_name_is_refused(cluster, admin, namespace):
    hostile = yaml.safe_load(GO_SAMPLE)
    del hostile["spec"]["networks"], hostile["spec"]["sshKeySecret"]
    hostile["spec"]["cloudInitUser"]["password"] = 'x"\nruncmd: [rm -rf /]\n#'
    apply(cluster, namespace, hostile)
    wait_running(admin, namespace, NAME)
    data = user_data(admin, namespace)
    assert set(data) == {"hostname", "users", "ssh_pwauth"}
    assert "runcmd" not in json.dumps(data)

    refused = yaml.safe_load(GO_SAMPLE)
    refused["metadata"]["name"] = "other"
    refused["spec"]["cloudInitUser"]["name"] = "root\nruncmd:"
    refused["spec"]["cloudInitUser"]["groups"] = ["wheel", "x: y"]
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(refused), check=False)
    assert result.returncode != 0
    assert "spec.cloudInitUser.name: Invalid value" in result.stderr
    assert "spec.cloudInitUser.groups[1]: Invalid value" in result.stderr


def test_contradicting_restart_policy_and_start_strategy_are_refused_naming_both(cluster, namespace):
    obj = yaml.safe_load(GO_SAMPLE)
    obj["spec"]["highAvailability"]["restartPolicy"] = "Never"
    obj["spec"]["startStrategy"] = {"runStrategy": "Always"}
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj), check=False)
    assert result.returncode != 0
    assert (
        'spec.highAvailability.restartPolicy: Invalid value: "Never": restartPolicy Never means runStrategy Once'
        in (result.stderr)
    )
    assert "spec.startStrategy.runStrategy is Always" in result.stderr


def test_the_reconciler_may_not_read_secrets(cluster):
    verbs = (("list", "no"), ("watch", "no"), ("get", "no"), ("create", "yes"), ("patch", "yes"), ("delete", "no"))
    for verb, allowed in verbs:
        answer = cluster.kubectl("auth", "can-i", verb, "secrets", "--as", SERVICE_ACCOUNT, "-A", check=False)
        assert answer.stdout.strip() == allowed, verb


def test_a_removed_node_selector_leaves_the_vm(cluster, admin, namespace):
    admin.create(SECRETS, ssh_secret(namespace))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=GO_SAMPLE)
    wait_running(admin, namespace, NAME)
    changed = yaml.safe_load(GO_SAMPLE)
    del changed["spec"]["highAvailability"]["nodeSelector"]
    apply(cluster, namespace, changed)
    wait_for_object(
        admin,
        VIRTUAL_MACHINES,
        namespace,
        f"{NAME}-vm",
        lambda vm: vm and "nodeSelector" not in vm["spec"]["template"]["spec"],
        "the nodeSelector gone from the VM",
    )


def test_a_changed_cloud_init_user_waits_for_a_restart_and_says_so(cluster, admin, namespace):
    admin.create(SECRETS, ssh_secret(namespace))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=GO_SAMPLE)
    wait_running(admin, namespace, NAME)
    changed = yaml.safe_load(GO_SAMPLE)
    changed["spec"]["cloudInitUser"]["shell"] = "/bin/zsh"
    apply(cluster, namespace, changed)
    waiting = wait_condition(admin, namespace, NAME, "RestartRequired", "True")
    assert waiting["message"].startswith("cloud-init user-data; restart the VM to apply")
    assert user_data(admin, namespace)["users"][0]["shell"] == "/bin/zsh"
