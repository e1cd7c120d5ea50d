#!/usr/bin/env bash
# Benchmark calico-felix (issue 5): a full sync of 1,000 NetworkPolicies over 500 local
# endpoints (plus 100 on another node), then single changes timed from the datastore write
# to the rules being in the kernel (policy updates and new WorkloadEndpoints).
#
#   scripts/bench-felix.sh [--endpoints N] [--policies N] [--changes N] [--products DIR]
#
# Needs root and nft. Runs in a scratch network namespace, never the host's; the data
# lives in a throw-away SQLite store. Goals: full sync ≤ 2 s, one change ≤ 100 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

products=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --products) products="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$products" ]; then
  swift build -c release --static-swift-stdlib --product calico-felix >/dev/null
  products=$(swift build -c release --static-swift-stdlib --show-bin-path)
fi

ns="felix-bench-$$"
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), $(nft --version)"
ip netns exec "$ns" "$products/calico-felix" --bench ${args[@]+"${args[@]}"}
