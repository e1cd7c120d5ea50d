#!/usr/bin/env bash
# Installs the Debian packages the build and the tests use. Idempotent.
set -euo pipefail
pkgs=(libsqlite3-dev sqlite3 libssl-dev iproute2 etcd-server etcd-client nftables
      containernetworking-plugins podman runc busybox-static golang-go
      golang-github-appc-cni-dev hyperfine strace curl iputils-ping python3 openssl)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
