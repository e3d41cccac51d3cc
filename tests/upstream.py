"""The upstream schemas (schemas/upstream/, strict as published) that the objects the reconciler builds must pass."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "upstream"
VIRTUAL_MACHINE = "kubevirt.io_virtualmachine_v1.json"
DATA_VOLUME = "cdi.kubevirt.io_datavolume_v1beta1.json"


@cache
def strict_schema(file_name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / file_name).read_text())
