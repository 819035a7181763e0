"""core/datasets/lookup.names_in: the names of the tenant's datasets a text mentions by id
(what the evaluate report shows beside the ids), and no other tenant's."""

from __future__ import annotations

from pathlib import Path

from core.datasets.lookup import names_in
from core.datasets.orm import Dataset
from core.db import session_scope
from core.migrate import upgrade
from core.tenants.orm import Tenant

MINE, THEIRS, GONE = ("ds_" + c * 32 for c in "abc")


def test_names_of_the_tenants_datasets_mentioned_by_id(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    with session_scope(url) as s:
        s.add_all([Tenant(id="me", name="me"), Tenant(id="them", name="them")])
        s.flush()
        for id_, tenant in ((MINE, "me"), (THEIRS, "them")):
            s.add(Dataset(id=id_, tenant_id=tenant, name=f"{tenant}-set", format="zip",
                          status="ready", test_fraction=0.2, skip_corrupt=False,
                          upload_key="k"))  # fmt: skip
    text = f'{{"reference": "{MINE}:test", "other": "{THEIRS}:train", "gone": "{GONE}"}}'
    with session_scope(url) as s:
        assert names_in(session=s, tenant_id="me", text=text) == {MINE: "me-set"}
        assert names_in(session=s, tenant_id="me", text="digits:test") == {}
