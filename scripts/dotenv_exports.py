"""Print `export KEY=value` lines for the `.env` entries the environment does not set yet.

`make run` evals this before starting supervisord, whose program commands read settings such as
DASHBOARD_PORT from the environment only; the app (python-dotenv, override=False) lets the
environment win over `.env`. Exporting only the missing keys gives those commands the same
values the app sees.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def export_lines(env_file: Path, environ: dict[str, str]) -> list[str]:
    """Shell `export` lines for keys in `env_file` that `environ` lacks."""
    if not env_file.is_file():
        return []
    lines = []
    for key, value in dotenv_values(env_file).items():
        if value is None or key in environ or not key.isidentifier():
            continue
        lines.append(f"export {key}={shlex.quote(value)}")
    return lines


def main() -> int:
    """Write the export lines to stdout for the shell to eval."""
    env_file = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT / ".env"
    for line in export_lines(env_file, dict(os.environ)):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
