#!/usr/bin/env bash
# Runs Tidemark's tests on node's test runner (TypeScript through tsx).
# usage: scripts/test.sh [all|unit|integration] [extra node --test flags]
# Node 20 does not expand quoted globs, so the file list is built here.
# Integration tests (and the plugins' own, plugins/*/test) need the services of scripts/services.sh; they fail, never skip, without them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kind=${1:-all}
[[ $# -gt 0 ]] && shift
case $kind in
  unit) mapfile -t files < <(find test \( -name '*.test.ts' -o -name '*.test.tsx' \) -not -path 'test/integration/*' | sort) ;;
  integration) mapfile -t files < <( (find test/integration -name '*.test.ts' | sort; find plugins/*/test -name '*.test.ts' 2>/dev/null | sort) ) ;;
  all) mapfile -t files < <( (find test \( -name '*.test.ts' -o -name '*.test.tsx' \) -not -path 'test/integration/*' | sort; find test/integration -name '*.test.ts' | sort; find plugins/*/test -name '*.test.ts' 2>/dev/null | sort) ) ;;
  *.test.ts | *.test.tsx) files=("$kind") ;;
  *) echo "usage: $0 [all|unit|integration|<file>.test.ts]" >&2; exit 2 ;;
esac
((${#files[@]})) || { echo "no test files found for \"$kind\"" >&2; exit 1; }
# tsx compiles test files (JSX included) with the options of tsconfig.test.json, which covers test/
export TSX_TSCONFIG_PATH=tsconfig.test.json
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@" "${files[@]}"
