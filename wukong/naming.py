"""Names of the objects a Wukong owns, the same as the Go operator gives them."""


def volume_name(wukong: str, disk: str) -> str:
    """The PVC (or DataVolume, whose PVC CDI names the same) that holds one disk."""
    return f"{wukong}-{disk}"


def vm_name(wukong: str) -> str:
    """The KubeVirt VirtualMachine built for a Wukong."""
    return f"{wukong}-vm"
