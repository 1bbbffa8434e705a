"""Command line: parse flags, build settings, run, map the outcome to an exit code.

Exit codes: 0 nothing failing at or above --fail-on; 1 failing findings; 2 usage, config or input
error; 3 the scan could not read everything it was asked to (reports still written, marked
incomplete); 4 an internal error (a bug: rerun with --debug for the traceback).
`auditor verify`: 0 the folder is intact, 1 a file or the evidence chain differs, 2 it cannot be
verified. `auditor history` and `auditor diff`: 0, or 2 when the store or a scan id is unusable.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from auditor import __version__
from auditor.errors import CollectionError, InputError
from auditor.redact import install as redact_logs
from auditor.redact import redact
from auditor.settings import Settings, Severity, load_settings

if TYPE_CHECKING:  # imported for annotations only: --version and --help stay fast
    from auditor.results import ScanReport
    from auditor.upload import UploadTarget

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (a Container Apps job at its timeout, `docker stop`), handled like Ctrl-C: the
    scan unwinds, its staging folder is discarded, and no half-written report is left."""


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
    _report_processes(scan)
    scan.add_argument("--actual-cost", type=Path, metavar="CSV", action="append", default=[],
                      help="Cost Management or FOCUS cost export to reconcile the estimates "
                           "with (repeatable)")
    scan.add_argument("--waivers", type=Path, metavar="FILE",
                      help="waivers file (TOML; default: the [scan] waivers setting)")
    scan.add_argument("--fail-on", choices=[s.value for s in Severity],
                      help="exit 1 when a failing finding has this severity or higher")
    scan.add_argument("--exit-zero-on-findings", action="store_true",
                      help="exit 0 even with failing findings (a scheduled job then fails only "
                           "when the scan itself does: input errors 2, incomplete 3)")
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
    scan.add_argument("--upload", metavar="URL",
                      help="also upload the report folder to Blob Storage, under "
                           "https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX/<folder name>/ "
                           "(signs in with --auth; see docs/deployment.md)")
    scan.add_argument("--shard", type=_shard, metavar="I/N",
                      help="scan only shard I of N: the subscriptions whose SHA-256 of the "
                           "lower-case id, mod N, is I-1 (join the shards with `auditor merge`; "
                           "a shard keeps no history unless --history is given)")
    kept = scan.add_mutually_exclusive_group()
    kept.add_argument("--history", type=Path, metavar="FILE",
                      help="history store to compare with and record into (SQLite; default: "
                           "[store] path, else ~/.local/share/auditor/history.sqlite)")
    kept.add_argument("--no-history", action="store_true",
                      help="neither compare with nor record into a history store")

    merge = commands.add_parser(
        "merge", help="evaluate the outputs of sharded scans together as one scan")
    merge.add_argument("folders", type=Path, nargs="+", metavar="DIR",
                       help="the --out folder of each shard (`auditor scan --shard I/N`)")
    _report_processes(merge)
    merge.add_argument("--out", type=Path, metavar="DIR",
                       help="report folder (default ./audit-reports/<UTC timestamp>/)")
    merge.add_argument("--config", type=Path, metavar="FILE",
                       help="settings file (TOML): give the shards' own")
    merge.add_argument("--waivers", type=Path, metavar="FILE",
                       help="waivers file (TOML; default: the [scan] waivers setting)")
    merge.add_argument("--fail-on", choices=[s.value for s in Severity],
                       help="exit 1 when a failing finding has this severity or higher")
    merge.add_argument("--exit-zero-on-findings", action="store_true",
                       help="exit 0 even with failing findings")
    merge.add_argument("--as-of", type=_timestamp, metavar="TIME",
                       help="evaluate as of this UTC time (default: the latest shard's)")
    merge.add_argument("--within", type=float, metavar="HOURS", default=12.0,
                       help="refuse shards whose scans started further apart than this "
                            "(default 12): a shard left over from an earlier run")
    merge.add_argument("--upload", metavar="URL",
                       help="also upload the merged report folder to Blob Storage "
                            "(see `scan --upload`)")
    merge.add_argument("--auth", choices=["default", "cli", "managed-identity",
                                          "workload-identity", "environment"],
                       help="how to sign in for --upload")
    merged_history = merge.add_mutually_exclusive_group()
    merged_history.add_argument("--history", type=Path, metavar="FILE",
                                help="history store to compare with and record into")
    merged_history.add_argument("--no-history", action="store_true",
                                help="neither compare with nor record into a history store")
    merge.set_defaults(subscription=[], management_group=[], cloud=None)

    prices = commands.add_parser("prices", help="consumption rates used to estimate cost")
    prices_action = prices.add_subparsers(dest="prices_action", required=True,
                                          parser_class=_Parser)
    update = prices_action.add_parser(
        "update", help="fetch rates from the Azure Retail Prices API into [cost] prices_file")
    update.add_argument("--config", type=Path, metavar="FILE", help="settings file (TOML)")

    listing = commands.add_parser("checks", help="list the check catalogue")
    listing.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    listing.add_argument("--config", type=Path, metavar="FILE",
                         help="show the effective values under this settings file")

    scans = commands.add_parser("history", help="list the scans recorded in the history store")
    diff = commands.add_parser("diff", help="compare the findings of two recorded scans")
    diff.add_argument("first", metavar="A", help="scan id (or a unique prefix): the earlier scan")
    diff.add_argument("second", metavar="B", help="scan id (or a unique prefix): the later scan")
    for command in (scans, diff):
        command.add_argument("--history", type=Path, metavar="FILE",
                             help="history store (default: [store] path, else "
                                  "~/.local/share/auditor/history.sqlite)")
        command.add_argument("--config", type=Path, metavar="FILE",
                             help="settings file whose [store] path names the store")
        command.add_argument("--format", choices=["table", "json"], default="table")

    verify = commands.add_parser(
        "verify", help="check a report folder against its manifest (exit 0 intact, 1 not)")
    verify.add_argument("folder", type=Path, metavar="DIR", help="a report folder")
    verify.add_argument("--history", type=Path, metavar="FILE",
                        help="also check the evidence chain against this history store")
    return parser


def _report_processes(command: argparse.ArgumentParser) -> None:
    command.add_argument("--report-processes", type=int, metavar="N", choices=(1, 2),
                         help="write the reports in 2 processes (the default when 2 CPUs are "
                              "available: faster, the cost export written while the checks "
                              "run; about half as much memory again) or 1")


def _shard(text: str) -> Any:
    from auditor.shards import Shard

    try:
        return Shard.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


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
    redact_logs()  # tokens, SAS signatures and keys never reach the log, even with --debug
    restore_sigterm = _terminate_on_sigterm()
    try:
        if args.command == "checks":
            return _list_checks(args)
        if args.command == "prices":
            return _update_prices(args)
        if args.command == "merge":
            return _merge(args)
        if args.command in ("history", "diff", "verify"):
            return {"history": _history, "diff": _diff, "verify": _verify}[args.command](args)
        return _scan(args)
    except InputError as e:
        print(redact(f"auditor: error: {e}"), file=sys.stderr)
        return EXIT_USAGE
    except CollectionError as e:
        print(redact(f"auditor: scan incomplete: {e}"), file=sys.stderr)
        return EXIT_INCOMPLETE
    except Terminated:
        print("auditor: terminated (SIGTERM); no half-written reports were left",
              file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("auditor: interrupted; no reports were written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the one broad catch: one line, not a traceback
        if args.debug:
            raise
        print(redact(f"auditor: internal error: {type(e).__name__}: {e} (rerun with --debug)"),
              file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        restore_sigterm()


def _terminate_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into `Terminated` while main runs; returns what puts the old handler back.
    (Outside the main thread signals cannot be handled: nothing changes there.)"""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _scan(args: argparse.Namespace) -> int:
    import checks
    from auditor.scan import ScanRequest, run_scan  # keep --version and --help fast
    from auditor.upload import parse_upload_url

    settings = load_settings(args.config, _overrides(args),
                             known_checks=[c.id for c in checks.catalogue()])
    source = "snapshot" if args.snapshot else "sample" if args.sample else "live"
    out = args.out or _default_out()
    request = ScanRequest(source=source, out=out, settings=settings, snapshot=args.snapshot,
                          as_of=args.as_of, waivers=args.waivers,
                          actual_cost=tuple(args.actual_cost), since=args.since,
                          until=args.until, shard=args.shard,
                          history=None if args.shard and args.history is None
                          else _store(args, settings), report_processes=args.report_processes)
    upload = parse_upload_url(args.upload) if args.upload else None  # before a long scan
    report = run_scan(request, progress=_progress())
    return _finish(report, out, upload, settings, args)


def _default_out() -> Path:
    return Path("audit-reports") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _finish(report: ScanReport, out: Path, upload: UploadTarget | None, settings: Settings,
            args: argparse.Namespace) -> int:
    """Summary line, the upload when asked for, and the exit code: shared by scan and merge."""
    from auditor.upload import UploadError, upload_reports

    failing = report.failing_at_or_above()
    _summary(report.complete, len(report.estate.jobs), len(report.findings), len(failing), out)
    if upload is not None:
        try:
            sent = upload_reports(out, upload, settings.azure)
        except UploadError as e:
            print(f"auditor: upload failed: {e}; the reports are in {out}", file=sys.stderr)
            return EXIT_INCOMPLETE
        print(f"auditor: uploaded {len(sent.blobs)} files to {upload.url.rstrip('/')}/"
              f"{sent.folder}/", file=sys.stderr)
    if not report.complete:
        return EXIT_INCOMPLETE
    return EXIT_FINDINGS if failing and not args.exit_zero_on_findings else EXIT_OK


def _merge(args: argparse.Namespace) -> int:
    """`auditor merge DIR... --out OUT`: the shards' snapshots evaluated as one scan."""
    from dataclasses import replace

    import checks
    from auditor.scan import run_scan
    from auditor.shards import merge_request
    from auditor.upload import parse_upload_url

    settings = load_settings(args.config, _overrides(args),
                             known_checks=[c.id for c in checks.catalogue()])
    out = args.out or _default_out()
    upload = parse_upload_url(args.upload) if args.upload else None
    with merge_request(args.folders, out, settings, as_of=args.as_of, waivers=args.waivers,
                       history=_store(args, settings),
                       within=timedelta(hours=args.within)) as request:
        request = replace(request, report_processes=args.report_processes)
        report = run_scan(request, progress=_progress())
    return _finish(report, out, upload, settings, args)


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


def _update_prices(args: argparse.Namespace) -> int:
    from auditor.pricing import update_prices

    path = update_prices(load_settings(args.config).cost)
    print(f"auditor: rates written to {path}; scans use them from now on", file=sys.stderr)
    return EXIT_OK


def _list_checks(args: argparse.Namespace) -> int:
    import checks
    from reports import catalogue

    known = [c.id for c in checks.catalogue()]
    items = catalogue.entries(checks.catalogue(), load_settings(args.config, known_checks=known))
    render = {"json": catalogue.as_json, "markdown": catalogue.as_markdown}.get(
        args.format, catalogue.as_table)
    print(render(items), end="" if args.format == "markdown" else "\n")
    return EXIT_OK


def _store(args: argparse.Namespace, settings: Settings | None = None) -> Path | None:
    """--history, else [store] path, else the default; None with --no-history."""
    from auditor.history import default_path

    if getattr(args, "no_history", False):
        return None
    if args.history is not None:
        return Path(args.history)
    if settings is None:
        settings = load_settings(args.config)
    return Path(settings.store.path).expanduser() if settings.store.path else default_path()


def _history(args: argparse.Namespace) -> int:
    from auditor.history import HistoryStore, format_scans

    with HistoryStore(_store(args) or Path(), create=False) as store:
        rows = store.scans()
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in rows], indent=1))
    else:
        print(format_scans(rows))
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from auditor.history import HistoryStore, diff_document, format_diff

    with HistoryStore(_store(args) or Path(), create=False) as store:
        diff = store.diff(args.first, args.second)
    if diff.first.scope_key != diff.second.scope_key:
        print("auditor: note: the two scans have different scopes", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(diff_document(diff), indent=1))
    else:
        print(format_diff(diff))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    """Exit 0 when the folder is intact, 1 when anything differs (one line each, on stdout)."""
    from auditor.verify import verify_folder

    result = verify_folder(args.folder, args.history)
    for problem in result.problems:
        print(problem.line())
    chain = " and the evidence chain" if result.chain_checked else ""
    if result.intact:
        print(f"auditor: verify: intact: {result.files} files{chain} match the manifest of scan "
              f"{result.scan_id} in {args.folder}", file=sys.stderr)
        return EXIT_OK
    print(f"auditor: verify: {len(result.problems)} problem(s) in {args.folder}",
          file=sys.stderr)
    return EXIT_FINDINGS
