"""Reading a person's text file (config, waivers, an export) so that every way it can be wrong
becomes one InputError naming the file, the problem and the fix, never a traceback.

Covers: missing, a folder where a file belongs, unreadable (permissions), UTF-16 or UTF-32 (what
Windows PowerShell's `>` writes), other non-UTF-8 bytes. A UTF-8 byte order mark (Notepad's) is
accepted and dropped.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from auditor.errors import InputError

_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def read_text(path: Path, what: str) -> str:
    """The file's text; `what` names it in errors ("config file", "waivers file", "export")."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise InputError(str(path), f"{what} does not exist", "pass an existing file") from e
    except IsADirectoryError as e:
        raise InputError(str(path), f"{what} is a folder, not a file",
                         "pass the file itself") from e
    except PermissionError as e:
        raise InputError(str(path), f"{what} cannot be read (permission denied)",
                         "give the user running auditor read access to it") from e
    except OSError as e:
        raise InputError(str(path), f"{what} cannot be read ({e.strerror or e})",
                         "check the path") from e
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            raise InputError(str(path), f"not UTF-8 text: it is {encoding} (as Windows "
                                        f"PowerShell's `>` writes)",
                             "save it as UTF-8, e.g. `... | Out-File -Encoding utf8 FILE`")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})",
                         "save it as UTF-8") from e
