"""The FOCUS cost export: columns, types and arithmetic, read back from the sample scan."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from auditor.cli import main
from reports.focus import COLUMNS

MANDATORY = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency",
             "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
             "ChargeCategory", "ServiceName", "ServiceCategory", "ResourceId", "ResourceName",
             "ResourceType", "RegionId", "SubAccountId", "ConsumedQuantity", "ConsumedUnit",
             "PricingQuantity", "PricingUnit", "SkuMeter", "Tags", "InvoiceIssuerName",
             "HostProviderName", "ServiceProviderName"}
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("focus") / "r"
    assert main(["scan", "--sample", "--out", str(folder),
                 "--as-of", "2026-11-20T00:00:00Z"]) == 1
    return folder


@pytest.fixture(scope="module")
def rows(out: Path) -> list[dict[str, str]]:
    with (out / "cost.csv").open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_columns_follow_focus_and_custom_ones_start_with_x(out: Path) -> None:
    with (out / "cost.csv").open(encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == COLUMNS
    assert set(header) >= MANDATORY
    assert all(c.startswith("x_") for c in header if c not in MANDATORY and c not in {
        "BillingAccountId", "ChargeDescription", "ChargeFrequency", "ListUnitPrice",
        "ContractedUnitPrice", "PricingCategory", "RegionName", "ServiceSubcategory",
        "ProviderName", "PublisherName"})


def test_types_parse(rows: list[dict[str, str]]) -> None:
    assert rows
    for row in rows:
        for money in MONEY:
            Decimal(row[money])
        for moment in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart",
                       "BillingPeriodEnd"):
            assert row[moment].endswith("Z")
            datetime.fromisoformat(row[moment].replace("Z", "+00:00"))
        assert row["ServiceName"] == "Azure Container Apps"
        assert row["ServiceCategory"] == "Compute"
        assert row["ChargeCategory"] in ("Usage", "Credit")
        if row["ChargeCategory"] == "Usage":
            assert isinstance(json.loads(row["Tags"]), dict)
            assert row["ConsumedUnit"] in ("vCPU-Seconds", "GiB-Seconds")
            assert int(row["x_ExecutionCount"]) >= 1
            start = datetime.fromisoformat(row["ChargePeriodStart"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(row["ChargePeriodEnd"].replace("Z", "+00:00"))
            assert (end - start).days == 1, "one row per job and day"


def test_cost_equals_quantity_times_unit_price(rows: list[dict[str, str]]) -> None:
    for row in (r for r in rows if r["ChargeCategory"] == "Usage"):
        quantity, price = Decimal(row["ConsumedQuantity"]), Decimal(row["ListUnitPrice"])
        billed = Decimal(row["BilledCost"])
        assert abs(quantity * price - billed) <= billed * Decimal("1e-6") + Decimal("1e-9")
        if row["x_EstimationMethod"].startswith("consumption"):
            expected_price = {"vCPU-Seconds": Decimal("0.000024"),
                              "GiB-Seconds": Decimal("0.000003")}[row["ConsumedUnit"]]
            assert price == expected_price


def test_totals_match_the_workbook_and_markdown(out: Path, rows: list[dict[str, str]]) -> None:
    usage = sum(Decimal(r["BilledCost"]) for r in rows if r["ChargeCategory"] == "Usage")
    markdown = (out / "report.md").read_text()
    assert f"**{usage:,.2f} USD**" in markdown


def test_free_grant_is_a_separate_negative_credit(rows: list[dict[str, str]]) -> None:
    credits = [r for r in rows if r["ChargeCategory"] == "Credit"]
    assert credits and all(Decimal(r["BilledCost"]) < 0 for r in credits)
    assert all(not r["ResourceId"] for r in credits)
    assert not credits[0]["BilledCost"].startswith("'"), "a number, not neutralised text"


def test_parquet_has_the_same_rows(out: Path, rows: list[dict[str, str]]) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pytest.importorskip("pyarrow.parquet").read_table(out / "cost.parquet")
    assert table.num_rows == len(rows)
    assert table.schema.field("BilledCost").type == pa.decimal128(28, 10)
    assert sum(table.column("BilledCost").to_pylist()) == sum(Decimal(r["BilledCost"])
                                                             for r in rows)
