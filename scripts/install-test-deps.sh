#!/usr/bin/env bash
# Installs what the tests run for real: Prometheus and promtool (Debian's
# `prometheus` package), curl, openssl and iproute2 (the Cloud Trace
# stand-in's certificates and private network), Chromium (the local dashboard page's
# browser test), wrk (the drills), cargo-fuzz (the fuzz smoke), and the Python packages of ops/tests
# (kubernetes-validate with its offline schemas, jsonschema, PyYAML, pytest) and of
# the W3C Trace Context suite (aiohttp).
# kubectl (with kustomize) comes with the machine image. Safe to run again:
# it installs only what is missing.
set -euo pipefail

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)

if ((${#need_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        sudo_cmd=(sudo)
    else
        sudo_cmd=()
    fi
    echo "installing: ${need_apt[*]}" >&2
    "${sudo_cmd[@]}" apt-get update -qq
    # Don't let the package start its own Prometheus on port 9090: the tests
    # start theirs on free ports, and 9090 is our services' metrics port.
    made_policy=false
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
        made_policy=true
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    if $made_policy; then "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d; fi
fi
if ! command -v kubectl >/dev/null 2>&1; then
    echo "error: kubectl (with kustomize) is needed for ops/tests and is not on PATH" >&2
    exit 1
fi

# The fuzz smoke (scripts/fuzz.sh): cargo-fuzz on the nightly toolchain.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing: cargo-fuzz" >&2
    cargo install --quiet --locked cargo-fuzz
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "error: the nightly toolchain is needed by cargo-fuzz (rustup toolchain install nightly)" >&2
    exit 1
fi

here=$(dirname "$0")
if ! python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        -r "$here/../ops/tests/requirements.txt"; then
    echo "error: cannot install the Python packages of ops/tests/requirements.txt" >&2
    exit 1
fi

prometheus --version 2>&1 | head -n1
