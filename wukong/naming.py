"""Names of the objects a Wukong owns, the same as the Go operator gives them, and the limits they impose."""

from typing import Final

VM_SUFFIX: Final = "-vm"
LABEL_VALUE_MAX: Final = 63  # Kubernetes label values (the VM's name is one: kubevirt.io/vm)
MAX_NAME_LENGTH: Final = LABEL_VALUE_MAX - len(VM_SUFFIX)


def volume_name(wukong: str, disk: str) -> str:
    """The PVC (or DataVolume, whose PVC CDI names the same) that holds one disk."""
    return f"{wukong}-{disk}"


def vm_name(wukong: str) -> str:
    """The KubeVirt VirtualMachine built for a Wukong."""
    return f"{wukong}{VM_SUFFIX}"


CLOUD_INIT_DISK: Final = "cloudinitdisk"  # the VM's cloud-init disk and volume: no Wukong disk may take the name
POD_NETWORK: Final = "default"  # the pod network's interface, always the VM's first: no spec.networks entry may


def cloud_init_secret_name(wukong: str) -> str:
    """The Secret holding the VM's cloud-init user-data (and network-data)."""
    return f"{wukong}-cloudinit"
