#!/usr/bin/env bash
# The test command: builds everything and runs every test target.
# Tests that need root or a tool skip with a reason when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build
