"""Names that make up the Wukong API and the labels and annotations the project owns."""

from typing import Final

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
# On a Wukong: comma-separated disk names whose lost volume (bound once, now gone) may be created anew, empty or
# re-imported -- the user's explicit say that the data is not coming back.
RECREATE_LOST_VOLUMES_ANNOTATION: Final = f"{GROUP}/recreate-lost-volumes"
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

MAX_DISKS: Final = 16
MIN_CPU: Final = 1
MAX_CPU: Final = 64
