"""Rates: config, per region, and the Retail Prices API through a loopback HTTPS server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.errors import CollectionError, InputError
from auditor.pricing import fetch_rates, load_rate_book
from auditor.settings import load_settings
from tests.azure_server import AzureServer, Recorded, Reply, serve


def item(region: str, meter: str, price: float, unit: str = "1 Second",
         tier: float = 0.0) -> dict[str, Any]:
    """A Retail Prices API item, in the API's field names."""
    return {"currencyCode": "USD", "tierMinimumUnits": tier, "retailPrice": price,
            "unitPrice": price, "armRegionName": region, "location": region,
            "meterName": meter, "productName": "Azure Container Apps",
            "serviceName": "Azure Container Apps", "unitOfMeasure": unit,
            "type": "Consumption", "isPrimaryMeterRegion": True}


PAGES = [
    [item("westeurope", "Standard vCPU Active Usage", 0.0, tier=0),
     item("westeurope", "Standard vCPU Active Usage", 0.000024, tier=180000),
     item("westeurope", "Standard Memory Active Usage", 0.000003)],
    [item("westus2", "Standard vCPU Active Usage", 0.1224, unit="1 Hour"),
     item("westus2", "Standard Memory Active Usage", 0.0144, unit="1 Hour"),
     item("eastus", "Standard vCPU Active Usage", 0.000024)],  # no memory meter: left out
]


@pytest.fixture
def prices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        def handle(request: Recorded) -> Reply:
            page = int(request.params.get("page", "0"))
            body: dict[str, Any] = {"BillingCurrency": "USD", "Items": PAGES[page],
                                    "Count": len(PAGES[page])}
            body["NextPageLink"] = (f"{server.url}/api/retail/prices?page={page + 1}"
                                    if page + 1 < len(PAGES) else None)
            return Reply(200, body)

        server.router.add("GET", r"/api/retail/prices", handle)
        monkeypatch.setenv("AUDITOR_RETAIL_PRICES_URL", f"{server.url}/api/retail/prices")
        yield server


def test_fetch_follows_pages_and_normalises_units(prices: AzureServer) -> None:
    document = fetch_rates("USD")
    assert document["regions"] == {
        "westeurope": {"vcpu_second": 0.000024, "gib_second": 0.000003},
        "westus2": {"vcpu_second": pytest.approx(0.000034), "gib_second": pytest.approx(0.000004)},
    }
    first = prices.requests[0]
    assert first.method == "GET"
    assert "serviceName eq 'Azure Container Apps'" in first.params["$filter"]
    assert len(prices.requests) == 2


def test_prices_update_writes_the_cache_and_scans_use_it(
        prices: AzureServer, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    cache = tmp_path / "prices.json"
    config.write_text(f'[cost]\nprices_file = "{cache}"\n'
                      '[cost.regions.northeurope]\nvcpu_second = 0.00003\ngib_second = 0.000004\n')
    assert main(["prices", "update", "--config", str(config)]) == 0
    assert json.loads(cache.read_text())["source"] == "Azure Retail Prices API"
    book = load_rate_book(load_settings(config).cost)
    assert book.for_location("West US 2").vcpu_second == pytest.approx(0.000034)
    assert book.for_location("North Europe").vcpu_second == 0.00003, "config wins"
    assert book.for_location("Japan East").source == "config defaults [cost]"


def test_unreachable_or_empty_price_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_RETAIL_PRICES_URL", "https://127.0.0.1:9/api/retail/prices")
    with pytest.raises(CollectionError, match="could not be read"):
        fetch_rates("USD")


def test_malformed_cache_is_a_clear_error(tmp_path: Path) -> None:
    cache = tmp_path / "prices.json"
    cache.write_text('{"regions": 3}')
    config = tmp_path / "c.toml"
    config.write_text(f'[cost]\nprices_file = "{cache}"\n')
    with pytest.raises(InputError, match="prices file is malformed"):
        load_rate_book(load_settings(config).cost)
