"""The FOCUS cost export: columns, types and arithmetic, read back from the sample scan."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.results import ScanReport
from auditor.scan import ScanRequest, run_scan
from auditor.settings import load_settings
from reports import focus
from reports.csv_report import cell
from reports.focus import COLUMNS, write_focus

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


# Names a spreadsheet would run or a format string would read, quotes, commas, line breaks and
# hidden characters; and figures that print differently although equal (5 and 5.0), with an
# exponent in their repr, negative or zero.
HOSTILE = ("=cmd|'/c calc'!A1", "{0}{1[2]}}", 'a,"b"\nc', "+1", "@x", "\ttab", "%s%%", "ünï{}",
           "\x00bad\u202e")
FIGURES = ((5.0, 1.0, 2.0, 0.5), (5, 1, 2, 0.5), (1e-7, 3e-12, 1e16, 2.5e15), (0.0, 0.0, 0.0, 0.0),
           (0, 0, 0, 0), (-0.0, -0.0, 1.0, -3.0), (100.0, -2.5, 4.0, 1e-5),
           (12345678.123456789, 0.1 + 0.2, 1 / 3, 2 / 3))


@pytest.fixture(scope="module")
def odd_report(tmp_path_factory: pytest.TempPathFactory) -> ScanReport:
    """The sample scan with hostile job names and tags, and odd figures on some executions."""
    folder = tmp_path_factory.mktemp("focus-odd")
    report = run_scan(ScanRequest(source="sample", out=folder, settings=load_settings(),
                                  as_of=datetime(2026, 11, 20, tzinfo=UTC)))
    assert report.cost is not None
    for index, cost in enumerate(report.cost.jobs.values()):
        name = HOSTILE[index % len(HOSTILE)]
        cost.job = replace(cost.job, name=name, resource_group=f"{name}-rg",
                           location=None if index % 3 == 0 else name,
                           tags={"{k}": name, "o,w": '"q"'})
        if index % 2:
            executions = []
            for number, e in enumerate(cost.executions):
                vcpu, vcpu_cost, gib, gib_cost = FIGURES[(index + number) % len(FIGURES)]
                executions.append(replace(e, vcpu_seconds=vcpu, vcpu_cost=vcpu_cost,
                                          gib_seconds=gib, gib_cost=gib_cost))
            cost.executions = executions
    return report


def test_csv_is_the_rows_as_the_csv_module_writes_them(odd_report: ScanReport,
                                                        tmp_path: Path) -> None:
    """The writer formats its lines itself, for speed: they must be what `rows` gives, with
    numbers as plain decimals and text neutralised, written by the csv module."""
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in focus.rows(odd_report):
        writer.writerow([format(v, "f") if isinstance(v, Decimal) else cell(v)
                         for v in (row[c] for c in COLUMNS)])
    write_focus(odd_report, tmp_path)
    written = (tmp_path / "cost.csv").read_bytes()
    assert written == expected.getvalue().encode("utf-8-sig")
    assert b"'=cmd" in written and b",5,vCPU-Seconds," in written and b",5.0,vCPU" in written


def test_parquet_is_the_rows(odd_report: ScanReport, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(focus, "PARQUET_BATCH_ROWS", 100)  # several batches, jobs across them
    write_focus(odd_report, tmp_path)
    table = parquet.read_table(tmp_path / "cost.parquet")
    expected = pytest.importorskip("pyarrow").Table.from_pylist(list(focus.rows(odd_report)),
                                                                 schema=table.schema)
    assert table.num_rows > 100
    assert table.equals(expected)
