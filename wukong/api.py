"""Names that make up the Wukong API and the labels and annotations the project owns."""

from typing import Final

from wukong.resource import Resource

GROUP: Final = "vm.novasphere.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "Wukong"
PLURAL: Final = "wukongs"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
POLICY_KIND: Final = "WukongPolicy"
POLICY_PLURAL: Final = "wukongpolicies"
POLICY_CRD_NAME: Final = f"{POLICY_PLURAL}.{GROUP}"

# Annotations and labels.
ALLOW_DISK_REMOVAL_ANNOTATION: Final = f"{GROUP}/allow-disk-removal"
WUKONG_LABEL: Final = f"{GROUP}/wukong"
DISK_LABEL: Final = f"{GROUP}/disk"
RELEASED_FROM_LABEL: Final = f"{GROUP}/released-from"
WUKONG_UID_ANNOTATION: Final = f"{GROUP}/wukong-uid"  # which Wukong a volume without an ownerReference serves
START_STRATEGY_ANNOTATION: Final = f"{GROUP}/start-strategy"  # the Wukong's startStrategy last applied to its VM
# On a VM template (and so its instance): a digest of the cloud-init Secret's data, so a changed user-data is a
# template change KubeVirt reports as waiting for a restart.
CLOUD_INIT_DIGEST_ANNOTATION: Final = f"{GROUP}/cloud-init-digest"
# On a Wukong: comma-separated disk names whose lost volume (bound once, now gone) may be created anew, empty or
# re-imported -- the user's explicit say that the data is not coming back.
RECREATE_LOST_VOLUMES_ANNOTATION: Final = f"{GROUP}/recreate-lost-volumes"
# On a VolumeSnapshot taken before a disk grew: the size the volume had when it was taken.
SNAPSHOT_SIZE_ANNOTATION: Final = f"{GROUP}/snapshot-size"
SSH_KEYS_LABEL: Final = f"{GROUP}/ssh-keys"  # on a Secret: made to be named in sshKeySecret (a documented convention)
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "wukong-reconciler"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"  # set by the API server on every namespace

# CDI's annotations: on a DataVolume, whether CDI deletes it once its import succeeded (collected only when "true";
# CDI's webhook writes "true" at creation when garbage collection is on, unless it says "false"); on its PVC, the
# importer pod's phase ("Succeeded": the data is in), and the DataVolume it was populated for.
CDI_DELETE_AFTER_COMPLETION: Final = "cdi.kubevirt.io/storage.deleteAfterCompletion"
CDI_POD_PHASE: Final = "cdi.kubevirt.io/storage.pod.phase"
CDI_POPULATED_FOR: Final = "cdi.kubevirt.io/storage.populatedFor"

# Kubernetes' own StorageClass annotations (GA and beta spelling, as DefaultStorageClass admission reads them).
DEFAULT_CLASS_ANNOTATIONS: Final = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)

# The CSI snapshotter's default VolumeSnapshotClass of a driver (the one a VolumeSnapshot naming no class gets).
DEFAULT_SNAPSHOT_CLASS_ANNOTATION: Final = "snapshot.storage.kubernetes.io/is-default-class"

# The product's resources, for the client layer (kubeclient.resources holds only those of Kubernetes and add-ons).
WUKONGS: Final = Resource(GROUP, VERSION, PLURAL, KIND)
WUKONG_POLICIES: Final = Resource(GROUP, VERSION, POLICY_PLURAL, POLICY_KIND, namespaced=False)
