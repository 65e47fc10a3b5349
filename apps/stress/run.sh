#!/usr/bin/env bash
# Runs the scale or soak test with as many open files as this shell may have: every TLS
# connection is a file descriptor, and 10,000 of them do not fit the usual soft limit of 1024.
#   bash apps/stress/run.sh scale [--quick] [--connections N] ...
#   bash apps/stress/run.sh soak  [--quick] [--duration S] ...
set -euo pipefail

mode="${1:-}"
case "$mode" in
  scale | soak) shift ;;
  *)
    echo "usage: bash apps/stress/run.sh scale|soak [flags]  (--help for the flags)" >&2
    exit 2
    ;;
esac

want=65536
hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited || "$hard" -ge "$want" ]]; then
  ulimit -n "$want"
else
  # Only root can raise the hard limit; use what we are allowed. scale.js checks it is enough.
  ulimit -n "$hard"
fi

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -f "$dir/dist/$mode.js" ]]; then
  echo "run.sh: $dir/dist/$mode.js is missing; build first (npx -y pnpm@10.34.9 turbo run build --filter=@srpc-app/stress...)" >&2
  exit 2
fi
# A lone "--" from the package manager is dropped by the scripts themselves.
exec node "$dir/dist/$mode.js" "$@"
