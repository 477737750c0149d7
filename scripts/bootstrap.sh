#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine: apt packages (as root), a venv, pip packages.
# Usage: scripts/bootstrap.sh [runtime|test]      Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-runtime}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(libzbar0 fonts-dejavu-core)
# The image modules (`integration hpc ...`, tested by `make test`) read labels with tesseract in our labels'
# languages: the eng model alone misses Danish letters such as "ø".
if [ "$profile" = "test" ]; then
    APT_PACKAGES+=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-dan tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-lat)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing apt packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing apt packages ${missing[*]} (run as root or install them)" >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
fi
# The daemon itself needs no imaging library; the demo needs [demo], the tests everything.
extra="[demo]"
[ "$profile" = "test" ] && extra="[test,demo,hpc]"
stamp="$VENV/.installed-$profile"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    echo "bootstrap: installing Python packages ($profile)"
    "$VENV/bin/pip" install -q -c constraints.txt -e ".$extra" 2>&1 | grep -v "is ignored" || true
    "$VENV/bin/python" -c "import integration, trio, httpx, msgspec" # fail loudly if the install did not work
    touch "$stamp"
fi
