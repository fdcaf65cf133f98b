#!/usr/bin/env bash
# Rebuild requirements.lock (what `make run` installs) and requirements-test.lock (what
# `make test` installs) from pyproject.toml: each is the exact set pip resolves in a fresh
# virtual environment. Run it (`make lock`) after changing a dependency, then run the tests
# and benchmarks on the new versions before committing both files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Install from a copy of the tree as it is (uncommitted pyproject.toml included), so that
# setuptools leaves no build/ folder in the checkout.
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src"

freeze() {  # freeze VENV OUTPUT HEADER
  "$1/bin/python" -m pip freeze --exclude-editable --exclude carematix \
    | grep -v '^-e ' | LC_ALL=C sort --ignore-case > "$work/frozen"
  { printf '%s\n' "$3" "# Rebuilt by scripts/lock.sh (make lock) from pyproject.toml; do not edit by hand."
    cat "$work/frozen"; } > "$2"
}

"$python" -m venv "$work/run"
"$work/run/bin/python" -m pip install --quiet --upgrade pip
"$work/run/bin/python" -m pip install --quiet "$work/src"
freeze "$work/run" requirements.lock "# Exact versions for \`make run\`."

"$python" -m venv "$work/test"
"$work/test/bin/python" -m pip install --quiet --upgrade pip
"$work/test/bin/python" -m pip install --quiet "$work/src[test]"
freeze "$work/test" requirements-test.lock "# Exact versions for \`make test\` (the product's and the test tools')."
echo "wrote requirements.lock and requirements-test.lock"
