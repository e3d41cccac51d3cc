"""A WukongPolicy's quantities read as the API server reads them: the CRD's CEL ``isQuantity`` (apimachinery's
ParseQuantity) admits a limit exactly when ``wukong.quantity`` parses it, on the red-team table and on generated
forms. A limit the API server stores is one the webhook can read, so none silently means "no limit"."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeclient.rest import ApiError, Kube
from tests.unit.test_policy_redteam import QUANTITY_FORMS
from wukong.api import WUKONG_POLICIES
from wukong.quantity import QuantityError, parse

PIECES = [*"0123456789", "\u0661", ".", "+", "-", "e", "E", "n", "u", "m", "k", "K", "Ki", "Mi", "Gi", "Ti", "Pi"]
PIECES += ["Ei", "M", "G", "T", "P", "i", " ", "999", "1000"]
FORMS = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)
FIELDS = (("compute", "maxMemory"), ("storage", "maxDiskSize"), ("storage", "maxTotalSize"))


def ours(text: str) -> bool:
    try:
        parse(text)
    except QuantityError:
        return False
    return True


def the_api_servers(admin: Kube, forms: list[str]) -> list[bool]:
    """Up to three forms judged in one server-side dry run, one per quantity field of the policy."""
    spec: dict = {"namespaceSelector": {"matchLabels": {"nothing": "selected"}}, "storage": {}, "compute": {}}
    for (section, field), text in zip(FIELDS, forms, strict=False):
        spec[section][field] = text
    obj = {"apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "WukongPolicy", "metadata": {"name": "forms"}}
    try:
        admin.create(WUKONG_POLICIES, {**obj, "spec": spec}, dry_run=True)
    except ApiError as error:
        assert error.status == 422, error
        return [f"{section}.{field}" not in error.message for (section, field), _ in zip(FIELDS, forms, strict=False)]
    return [True] * len(forms)


def test_the_red_team_table_is_the_api_servers(admin):
    forms = [text for text, _ in QUANTITY_FORMS]  # huge exponents included: the CRD refuses them promptly
    verdicts = [v for i in range(0, len(forms), 3) for v in the_api_servers(admin, forms[i : i + 3])]
    assert [(f, v) for f, v in zip(forms, verdicts, strict=True)] == [(f, ours(f)) for f in forms]


@settings(max_examples=40, deadline=None, database=None)
@given(forms=st.lists(FORMS, min_size=3, max_size=3))
def test_generated_limits_get_the_same_verdict_from_the_parser_and_the_api_server(admin, forms):
    verdicts = the_api_servers(admin, forms)
    assert [(f, v) for f, v in zip(forms, verdicts, strict=True) if ours(f) != v] == []
