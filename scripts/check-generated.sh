#!/usr/bin/env bash
# check-generated.sh -- regenerates gen/ and fails if it differs from what is
# committed (generated code must never drift from proto/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/generate.sh
if ! git diff --exit-code --stat -- gen/ || [ -n "$(git status --porcelain -- gen/)" ]; then
  echo "check-generated: gen/ is out of date with proto/; run scripts/generate.sh and commit" >&2
  git status --porcelain -- gen/ >&2
  exit 1
fi
echo "check-generated: gen/ matches proto/"
