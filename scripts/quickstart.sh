#!/usr/bin/env bash
# Quick start: installs what is needed, builds, and runs the main job on the embedded
# datastore — two containers attached exactly as Mesos attaches them, reaching each
# other, recorded as WorkloadEndpoints, then detached with nothing left behind.
#
# Everything happens in network namespaces this script creates (a simulated agent "host"
# and two containers); the machine's own network namespace is not touched. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "==> building (release)"
for product in calico calico-ipam calicoctl; do
  swift build -c release --static-swift-stdlib --product "$product" >/dev/null
done
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

work=$(mktemp -d /tmp/calico-quickstart.XXXXXX)
host=qs-host-$$
ctrs=(qs-frontend-$$ qs-server-$$)
cleanup() {
  for n in "$host" "${ctrs[@]}"; do ip netns delete "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$host"
ip -n "$host" link set lo up
# The agent's own address (a real agent has one on its uplink): the source of host→container traffic.
ip -n "$host" addr add 192.0.2.10/32 dev lo
for c in "${ctrs[@]}"; do ip netns add "$c"; done

# The config as Mesos hands it over: compact, keys sorted, NetworkInfo injected.
conf() {  # $1 = labels JSON list
  printf '{"args":{"org.apache.mesos":{"network_info":{"ip_addresses":[{"protocol":"IPv4"}],"labels":{"labels":%s},"name":"calico"}}},"cniVersion":"0.2.0","datastore_type":"sqlite","ipam":{"type":"calico-ipam"},"mtu":1450,"name":"calico","nodename":"agent-1","sqlite_path":"%s/calico.db","type":"calico"}' "$1" "$work"
}
labels=('[{"key":"biz_type","value":"bookstore"}]'
        '[{"key":"biz_type","value":"bookstore"},{"key":"role","value":"server"}]')

# Mesos replaces the environment: only the CNI variables and PATH.
cni() {  # $1 command, $2 container id, $3 netns name or "", $4 config
  local env=(CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_IFNAME=eth0 CNI_PATH="$bin" PATH=/usr/sbin:/usr/bin:/sbin:/bin)
  [ -n "$3" ] && env+=(CNI_NETNS="/var/run/netns/$3")
  printf '%s' "$4" | env -i "${env[@]}" ip netns exec "$host" "$bin/calico" 2>>"$work/cni.log"
}

declare -a ids ips
for i in 0 1; do
  ids[$i]=$(cat /proc/sys/kernel/random/uuid)
  echo "==> ADD ${ctrs[$i]} (container ${ids[$i]})"
  out=$(cni ADD "${ids[$i]}" "${ctrs[$i]}" "$(conf "${labels[$i]}")")
  echo "    result: $out"
  ips[$i]=$(printf '%s' "$out" | sed -n 's/.*"ip":"\([0-9.]*\)\/32".*/\1/p')
done

echo "==> the host routes each workload to its veth"
ip -n "$host" route | sed 's/^/    /'
echo "==> frontend (${ips[0]}) pings server (${ips[1]})"
ip netns exec "${ctrs[0]}" ping -c 2 -W 2 "${ips[1]}" | sed 's/^/    /'
echo "==> host pings frontend"
ip netns exec "$host" ping -c 1 -W 2 "${ips[0]}" | sed 's/^/    /'

echo "==> WorkloadEndpoints in the embedded store ($work/calico.db)"
printf 'apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: sqlite\n  sqlitePath: %s/calico.db\n' "$work" > "$work/calicoctl.cfg"
"$bin/calicoctl" get workloadendpoints -o wide -c "$work/calicoctl.cfg" | sed 's/^/    /'
"$bin/calicoctl" ipam show -c "$work/calicoctl.cfg" | sed 's/^/    /'

for i in 0 1; do
  echo "==> DEL ${ctrs[$i]}"
  cni DEL "${ids[$i]}" "${ctrs[$i]}" "$(conf "${labels[$i]}")"
done

left=$(sqlite3 "$work/calico.db" "select count(*) from kv where key like '%/workloadendpoints/%' or key like '/calico/ipam/v2/handle/%'")
links=$(ip -n "$host" -o link show | grep -c cali || true)
echo "==> after DEL: $left endpoint/handle records, $links cali links"
[ "$left" = 0 ] && [ "$links" = 0 ] || { echo "FAILED: something was left behind"; exit 1; }
echo "==> quick start OK: attached, reachable, detached"
