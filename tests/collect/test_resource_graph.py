"""Pages of results read from their JSON body as the SDK's deserializer would read them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from azure.mgmt.resourcegraph import models
from azure.mgmt.resourcegraph._utils.serialization import Deserializer

from auditor.collect.resource_graph import _PagesAsSent
from tests.azure_server import job_row, system_identity
from tests.collect.helpers import SUB_A

SDK = Deserializer({k: v for k, v in vars(models).items() if isinstance(v, type)})
ROWS = [job_row(SUB_A, "nightly", identity=system_identity("5f1c0000-0000-4000-8000-1")),
        {"id": "x", "n": [1, 2.5, None, True, "é \u2028", {"deep": 2**62}]}]


@dataclass
class _Body:
    content: bytes


def _fields(page: Any) -> dict[str, Any]:
    truncated = getattr(page.result_truncated, "value", page.result_truncated)
    return {"total": page.total_records, "count": page.count, "truncated": truncated,
            "token": page.skip_token, "data": page.data, "facets": page.facets}


@pytest.mark.parametrize("body", [
    {"totalRecords": 2, "count": 2, "resultTruncated": "false", "facets": [], "data": ROWS},
    {"totalRecords": 9, "count": 2, "resultTruncated": "true", "$skipToken": "t0k", "data": ROWS},
    {"totalRecords": 0, "count": 0, "resultTruncated": "false", "data": []},
], ids=["page", "with-skip-token", "empty"])
def test_a_page_reads_as_the_sdk_reads_it(body: dict[str, Any]) -> None:
    calls: list[str] = []
    pages = _PagesAsSent(lambda target, data: calls.append(target))

    page = pages("QueryResponse", _Body(json.dumps(body).encode()))

    assert calls == [] and isinstance(page, models.QueryResponse)
    assert _fields(page) == _fields(SDK("QueryResponse", body))


@pytest.mark.parametrize("content", [
    json.dumps({"totalRecords": 1, "count": 1, "resultTruncated": "false",
                "facets": [{"expression": "type", "resultType": "FacetResult"}],
                "data": ROWS}).encode(),
    json.dumps({"totalRecords": "2", "count": 2, "resultTruncated": "false",
                "data": ROWS}).encode(),
    json.dumps({"totalRecords": 2, "count": 2, "resultTruncated": "false",
                "data": {"columns": [], "rows": []}}).encode(),
    b"<html>not json</html>",
], ids=["facets", "count-as-text", "table-format", "not-json"])
def test_any_other_body_is_left_to_the_sdk(content: bytes) -> None:
    calls: list[str] = []
    pages = _PagesAsSent(lambda target, data: calls.append(target) or "sdk's")

    assert pages("QueryResponse", _Body(content)) == "sdk's"
    assert pages("ErrorResponse", _Body(content)) == "sdk's"
    assert calls == ["QueryResponse", "ErrorResponse"]
