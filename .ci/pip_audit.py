"""Run pip-audit over the installed environment and decide what CI does with the answer.

- Known vulnerabilities found: print them and exit 1 (CI fails).
- The advisory service could not be reached, or answered for none of the packages (a mirror or
  proxy that does not serve PyPI's JSON API): print a WARNING naming why and exit 0. Not being
  able to look is not a finding, and CI must not depend on one outside service being up; the
  warning is in every CI log, so nobody mistakes it for a clean audit.
- Otherwise: print how many packages were audited and exit 0.

The local package itself (installed editable) is skipped: it is not on PyPI.
"""

from __future__ import annotations

import json
import subprocess
import sys

NETWORK_MARKERS = ("connection", "timed out", "timeout", "name resolution", "resolve",
                   "ssl", "certificate", "proxy", "network", "unreachable", "503", "502", "429")


def main() -> int:
    command = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable",
               "--format", "json", "--output", "-"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return _warn("pip-audit did not finish within 10 minutes")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if any(marker in done.stderr.lower() for marker in NETWORK_MARKERS):
            return _warn(f"the vulnerability service could not be reached ({detail})")
        print(f"pip-audit failed (exit {done.returncode}): {detail}", file=sys.stderr)
        return 1
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = [d for d in dependencies if "skip_reason" not in d]
    if vulnerable:
        print(f"pip-audit: {len(vulnerable)} installed packages have known vulnerabilities:")
        for dependency in vulnerable:
            for vuln in dependency["vulns"]:
                fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
                print(f"  {dependency['name']} {dependency['version']}: {vuln['id']} "
                      f"(fixed in: {fixes})")
        return 1
    if not audited:
        reasons = {d.get("skip_reason", "") for d in dependencies}
        return _warn(f"no package could be audited ({len(dependencies)} skipped; e.g. "
                     f"{sorted(reasons)[0] if reasons else 'nothing installed'}): the PyPI "
                     f"advisory API is not reachable from here")
    print(f"pip-audit: {len(audited)} packages audited, no known vulnerabilities "
          f"({len(dependencies) - len(audited)} not on PyPI, skipped)")
    return 0


def _warn(reason: str) -> int:
    print(f"WARNING: pip-audit could not audit the dependencies: {reason}. Not a pass: run "
          f"`pip-audit` where PyPI is reachable.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
