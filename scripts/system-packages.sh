#!/usr/bin/env bash
# The Debian packages the test suite needs beyond Python: headless Chromium (the report renders),
# iproute2 and util-linux (the multi-host test bed's network and mount namespaces), buildah and
# debootstrap (the worker image). Installs only what is missing; needs root for that.
#
#   scripts/system-packages.sh            # install what is missing (as root), else say what is
set -euo pipefail

packages=(chromium iproute2 util-linux buildah debootstrap)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing Debian packages: ${missing[*]} (install them as root with apt-get);" \
    "the tests that need them will skip" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
