#!/usr/bin/env bash
# Builds the stand-in for the Lambda build image that the container-builder
# tests use: no registry is reachable here, so the image is made from scratch
# from Debian's packages (python3 and pip), in about 20 s.
set -euo pipefail
image="${1:-xtask-test-python:bookworm}"
engine="${CONTAINER_ENGINE:-}"
if [[ -z "$engine" ]]; then
  for candidate in docker podman; do
    if "$candidate" version >/dev/null 2>&1; then engine="$candidate"; break; fi
  done
fi
if [[ -z "$engine" ]]; then
  echo "test-image: no container engine answers (docker or podman)" >&2
  exit 1
fi
if "$engine" image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "test-image: mmdebstrap is missing (apt-get install mmdebstrap)" >&2
  exit 1
fi
echo "test-image: building $image with mmdebstrap (about 20 s)" >&2
mmdebstrap --quiet --variant=apt --include=python3,python3-pip bookworm - | "$engine" import - "$image" >/dev/null
"$engine" run --rm "$image" python3 -m pip --version >&2
