"""Consumption rates per region: config, or the Azure Retail Prices API cached to a file.

`auditor prices update` reads the public Retail Prices API once (no sign-in needed) and writes
the active vCPU and memory rates of every region to a JSON file; scans then use that file
offline. Rates set in config for a region win over the file; the config's default rates apply
to regions neither names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from auditor.cost import (
    AnomalyPolicy,
    CostView,
    DedicatedRates,
    Rates,
    allocate_dedicated,
    job_costs,
)
from auditor.errors import CollectionError, InputError
from auditor.model import Estate
from auditor.settings import CostSettings
from auditor.snapshot import write_json_atomic

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
VCPU_METER = "Standard vCPU Active Usage"
MEMORY_METER = "Standard Memory Active Usage"
_SECONDS_PER_UNIT = {"1 second": 1, "1/second": 1, "1 hour": 3600, "1/hour": 3600}
_MAX_PAGES = 200


def default_prices_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "auditor" / "prices.json"


def prices_file(settings: CostSettings) -> Path:
    return Path(settings.prices_file) if settings.prices_file else default_prices_file()


@dataclass(frozen=True, slots=True)
class RateBook:
    """Resolves the rates for a job's location."""

    settings: CostSettings
    cached: dict[str, dict[str, float]]  # region -> {"vcpu_second", "gib_second"}
    cached_currency: str | None
    cached_at: str | None

    def for_location(self, location: str | None) -> Rates:
        region = (location or "").replace(" ", "").lower()
        configured = {k.replace(" ", "").lower(): v for k, v in self.settings.regions.items()}
        if region in configured:
            rate = configured[region]
            return self._rates(rate.vcpu_second, rate.gib_second, f"config [cost.regions.{region}]")
        if region in self.cached and self.cached_currency == self.settings.currency:
            rate_map = self.cached[region]
            return self._rates(rate_map["vcpu_second"], rate_map["gib_second"],
                               f"Retail Prices API, {region}, fetched {self.cached_at}")
        return self._rates(self.settings.vcpu_second, self.settings.gib_second,
                           "config defaults [cost]")

    def _rates(self, vcpu: float, gib: float, source: str) -> Rates:
        return Rates(self.settings.currency, vcpu, gib, self.settings.free_vcpu_seconds,
                     self.settings.free_gib_seconds, source)


def load_rate_book(settings: CostSettings) -> RateBook:
    """Config rates plus the cached Retail Prices file when there is one."""
    path = prices_file(settings)
    if not path.exists():
        return RateBook(settings, {}, None, None)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        regions = {str(k): {"vcpu_second": float(v["vcpu_second"]),
                            "gib_second": float(v["gib_second"])}
                   for k, v in document["regions"].items()}
        return RateBook(settings, regions, str(document["currency"]), str(document["fetched"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(str(path), f"prices file is malformed ({e!r})",
                         "run `auditor prices update` again or delete the file") from e


def fetch_rates(currency: str, *, url: str | None = None,
                get: Callable[..., requests.Response] = requests.get) -> dict[str, Any]:
    """Active vCPU and memory rates per region from the Retail Prices API, as cached."""
    regions: dict[str, dict[str, float]] = {}
    for item in _items(currency, url or os.environ.get("AUDITOR_RETAIL_PRICES_URL")
                       or RETAIL_PRICES_URL, get):
        region = str(item.get("armRegionName") or "").lower()
        meter = item.get("meterName")
        per = _SECONDS_PER_UNIT.get(str(item.get("unitOfMeasure", "")).lower())
        if not region or meter not in (VCPU_METER, MEMORY_METER) or per is None:
            continue
        key = "vcpu_second" if meter == VCPU_METER else "gib_second"
        price = float(item.get("unitPrice") or 0) / per
        # Tiered meters list the free tier at 0: the paid rate is the highest tier's.
        regions.setdefault(region, {})[key] = max(price, regions.get(region, {}).get(key, 0.0))
    complete = {r: v for r, v in regions.items() if {"vcpu_second", "gib_second"} <= set(v)}
    if not complete:
        raise CollectionError("the Retail Prices API returned no Container Apps active-usage "
                              "rates; check the currency code")
    return {"currency": currency, "fetched": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "Azure Retail Prices API", "regions": dict(sorted(complete.items()))}


def _items(currency: str, url: str, get: Callable[..., requests.Response]) -> Iterator[Any]:
    query = (f"serviceName eq 'Azure Container Apps' and priceType eq 'Consumption' and "
             f"(meterName eq '{VCPU_METER}' or meterName eq '{MEMORY_METER}')")
    params: dict[str, str] | None = {"currencyCode": f"'{currency}'", "$filter": query}
    for _ in range(_MAX_PAGES):
        try:
            response = get(url, params=params, timeout=60)
            response.raise_for_status()
            page = response.json()
        except (requests.RequestException, ValueError) as e:
            raise CollectionError(f"the Retail Prices API could not be read: "
                                  f"{type(e).__name__}") from e
        yield from page.get("Items", [])
        url, params = page.get("NextPageLink"), None
        if not url:
            return
    raise CollectionError(f"the Retail Prices API returned more than {_MAX_PAGES} pages")


def update_prices(settings: CostSettings, **fetch: Any) -> Path:
    path = prices_file(settings)
    write_json_atomic(path, fetch_rates(settings.currency, **fetch))
    return path


def price(estate: Estate, settings: CostSettings, since: datetime, until: datetime) -> CostView:
    """Price every job's executions in [since, until) at its region's rates."""
    book = load_rate_book(settings)
    costs = job_costs(estate, lambda job: book.for_location(job.location), since, until)
    profiles = allocate_dedicated(costs, estate, DedicatedRates(
        settings.dedicated_vcpu_hour, settings.dedicated_gib_hour,
        settings.dedicated_management_hour), since, until)
    return CostView(
        jobs={c.job.id.lower(): c for c in costs}, since=since, until=until,
        currency=settings.currency,
        anomaly=AnomalyPolicy(settings.anomaly_relative_floor, settings.anomaly_absolute_floor,
                              settings.anomaly_min_history_days, settings.anomaly_lookback_days,
                              settings.anomaly_z_threshold),
        rate_sources={c.job.id.lower(): book.for_location(c.job.location).source
                      for c in costs},
        profiles=tuple(profiles))
