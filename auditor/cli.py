"""Command line: parse flags, build settings, run, map the outcome to an exit code.

Exit codes: 0 nothing failing at or above --fail-on; 1 failing findings; 2 usage, config or input
error; 3 the scan could not read everything it was asked to (reports still written, marked
incomplete); 4 an internal error (a bug: rerun with --debug for the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from auditor import __version__
from auditor.errors import CollectionError, InputError
from auditor.settings import Severity, load_settings

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERNAL = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"auditor: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="auditor", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scan = commands.add_parser("scan", help="scan jobs and write the reports")
    source = scan.add_mutually_exclusive_group()
    source.add_argument("--snapshot", type=Path, metavar="DIR",
                        help="evaluate a folder of exported JSON instead of reading Azure")
    source.add_argument("--sample", action="store_true",
                        help="scan the bundled sample estate (no Azure account needed)")
    scan.add_argument("--out", type=Path, metavar="DIR",
                      help="report folder (default ./audit-reports/<UTC timestamp>/)")
    scan.add_argument("--config", type=Path, metavar="FILE", help="settings file (TOML)")
    scan.add_argument("--waivers", type=Path, metavar="FILE",
                      help="waivers file (TOML; default: the [scan] waivers setting)")
    scan.add_argument("--fail-on", choices=[s.value for s in Severity],
                      help="exit 1 when a failing finding has this severity or higher")
    scan.add_argument("--as-of", type=_timestamp, metavar="TIME",
                      help="evaluate as of this UTC time (ISO 8601), for reproducible scans")
    scan.add_argument("--since", type=_timestamp, metavar="TIME",
                      help="start of the execution history a live scan reads (ISO 8601, UTC; "
                           "default: [history] days before --until)")
    scan.add_argument("--until", type=_timestamp, metavar="TIME",
                      help="end of the execution history a live scan reads (ISO 8601, UTC; "
                           "default: --as-of, else now)")
    scan.add_argument("--subscription", action="append", metavar="ID", default=[],
                      help="subscription to scan (repeatable)")
    scan.add_argument("--management-group", action="append", metavar="ID", default=[],
                      help="management group to scan (repeatable)")
    scan.add_argument("--auth", choices=["default", "cli", "managed-identity",
                                         "workload-identity", "environment"],
                      help="how to sign in to Azure")
    scan.add_argument("--cloud", choices=["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"],
                      help="which Azure cloud")

    listing = commands.add_parser("checks", help="list the check catalogue")
    listing.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    listing.add_argument("--config", type=Path, metavar="FILE",
                         help="show the effective values under this settings file")
    return parser


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "checks":
            return _list_checks(args)
        return _scan(args)
    except InputError as e:
        print(f"auditor: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except CollectionError as e:
        print(f"auditor: scan incomplete: {e}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print("auditor: interrupted; no reports were written", file=sys.stderr)
        return 130
    except Exception as e:  # the one broad catch: one line, not a traceback
        if args.debug:
            raise
        print(f"auditor: internal error: {type(e).__name__}: {e} (rerun with --debug)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _scan(args: argparse.Namespace) -> int:
    import checks
    from auditor.scan import ScanRequest, run_scan  # keep --version and --help fast

    settings = load_settings(args.config, _overrides(args),
                             known_checks=[c.id for c in checks.catalogue()])
    source = "snapshot" if args.snapshot else "sample" if args.sample else "live"
    out = args.out or Path("audit-reports") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    request = ScanRequest(source=source, out=out, settings=settings, snapshot=args.snapshot,
                          as_of=args.as_of, waivers=args.waivers, since=args.since,
                          until=args.until)
    report = run_scan(request, progress=_progress())
    failing = report.failing_at_or_above()
    _summary(report.complete, len(report.estate.jobs), len(report.findings), len(failing), out)
    if not report.complete:
        return EXIT_INCOMPLETE
    return EXIT_FINDINGS if failing else EXIT_OK


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags win over the config file; only flags that were given."""
    overrides: dict[str, Any] = {}
    if args.fail_on:
        overrides.setdefault("scan", {})["fail_on"] = args.fail_on
    azure = {k: v for k, v in (("subscriptions", args.subscription),
                               ("management_groups", args.management_group),
                               ("auth", args.auth), ("cloud", args.cloud)) if v}
    if azure:
        overrides["azure"] = azure
    return overrides


def _progress() -> Any:
    if not sys.stderr.isatty():
        return lambda stage: None

    def show(stage: str) -> None:
        print(f"\rauditor: {stage}...{' ' * 12}", end="", file=sys.stderr, flush=True)

    return show


def _summary(complete: bool, jobs: int, findings: int, failing: int, out: Path) -> None:
    if sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    state = "complete" if complete else "INCOMPLETE (see Coverage in the report)"
    print(f"auditor: scan {state}: {jobs} jobs, {findings} findings, {failing} failing at or "
          f"above the --fail-on severity; reports in {out}", file=sys.stderr)


def _list_checks(args: argparse.Namespace) -> int:
    import checks
    from reports import catalogue

    known = [c.id for c in checks.catalogue()]
    items = catalogue.entries(checks.catalogue(), load_settings(args.config, known_checks=known))
    render = {"json": catalogue.as_json, "markdown": catalogue.as_markdown}.get(
        args.format, catalogue.as_table)
    print(render(items), end="" if args.format == "markdown" else "\n")
    return EXIT_OK
