"""Reconciling estimates with Cost Management exports in the shapes people download."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from auditor.actual_cost import load_actual_costs
from auditor.cli import main
from auditor.errors import InputError

JOB = ("/subscriptions/8a4e1f6b-2c9d-4b7e-a5f3-6e1d9c0b8a27/resourceGroups/rg-ml/providers/"
       "Microsoft.App/jobs/ml-batch-inference")
SINCE, UNTIL = datetime(2026, 10, 21, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)

SHAPES = {
    # Cost details (actual or amortized), current schema
    "cost-details": ("Date,ResourceId,MeterName,CostInBillingCurrency,BillingCurrency\n"
                     f"2026-11-17,{JOB},Standard vCPU Active Usage,4.10,USD\n"
                     f"2026-11-17,{JOB.upper()},Standard Memory Active Usage,1.25,USD\n"
                     f"2026-11-20,{JOB},Standard vCPU Active Usage,9.99,USD\n"  # after the window
                     "2026-11-17,/subscriptions/x/resourceGroups/y/providers/"
                     "Microsoft.Storage/storageAccounts/z,Hot LRS,3.00,USD\n"),
    # Older usage details
    "usage-details": ("UsageDateTime,InstanceId,PreTaxCost,Currency\n"
                      f"11/17/2026,{JOB},4.10,USD\n11/17/2026,{JOB},1.25,USD\n"),
    # FOCUS export
    "focus": ("ChargePeriodStart,ResourceId,BilledCost,EffectiveCost,BillingCurrency\n"
              f"2026-11-17T00:00:00Z,{JOB},9.00,4.10,USD\n"
              f"2026-11-17T00:00:00Z,{JOB},9.00,1.25,USD\n"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_job_cost_per_export_shape(tmp_path: Path, shape: str) -> None:
    path = tmp_path / f"{shape}.csv"
    path.write_text(SHAPES[shape])
    actual = load_actual_costs([path], SINCE, UNTIL)
    assert actual.by_job == {JOB.lower(): Decimal("5.35")}, "effective cost wins in FOCUS"
    assert actual.currency == "USD" and actual.rows_used == 2


@pytest.mark.parametrize(("text", "message"), [
    ("Date,Cost\n2026-11-17,1\n", "no resource id column"),
    ("Date,ResourceId\n2026-11-17,x\n", "no cost column"),
    ("Date,ResourceId,Cost\nyesterday,x,1\n", "is not a date"),
    (f"Date,ResourceId,Cost\n2026-11-17,{JOB},lots\n", "is not a number"),
])
def test_bad_exports_name_file_and_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "export.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as raised:
        load_actual_costs([path], SINCE, UNTIL)
    assert str(path) in str(raised.value)


def test_scan_reconciles_estimate_with_actual(tmp_path: Path) -> None:
    export = tmp_path / "cost.csv"
    export.write_text(SHAPES["cost-details"])
    out = tmp_path / "r"
    assert main(["scan", "--sample", "--out", str(out), "--as-of", "2026-11-20T00:00:00Z",
                 "--actual-cost", str(export)]) == 1
    rows = list(load_workbook(out / "report.xlsx")["Cost by job"].iter_rows(values_only=True))
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    inference = next(r for r in table if r["Job"] == "ml-batch-inference")
    assert inference["Actual cost (USD)"] == pytest.approx(5.35)
    other = next(r for r in table if r["Job"] == "ml-model-training")
    assert other["Actual cost (USD)"] == 0, "no billed rows for it in the export"
