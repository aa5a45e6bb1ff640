#!/usr/bin/env bash
# Checks the Terraform of this repository without AWS credentials or network:
#   1. `terraform fmt -check -recursive` over terraform/
#   2. the manifest module's fixture tests (terraform test)
#   3. with a manifest path argument (default: none), the invariants of that
#      real dist/manifest.json (tests/real), skipped when the file is absent.
#   4. with TF_PROVIDER_MIRROR set, using the hashicorp/aws provider from that
#      filesystem mirror: `terraform validate` and the mock-provider tests
#      (terraform test) of modules/lambda_app, modules/http_api and
#      modules/ecr, and
#      `terraform init -lockfile=readonly` (the committed lock must match the
#      provider) plus `terraform validate` of envs/dev.
#
# usage: terraform/test.sh [path/to/dist/manifest.json]
# Exits 0 with "SKIPPED: terraform not installed" when terraform is not on PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/modules/manifest"

if ! command -v terraform >/dev/null 2>&1; then
    echo "SKIPPED: terraform not installed"
    exit 0
fi

manifest="${1:-}"
if [[ -n "$manifest" ]]; then
    # terraform runs in the module directory: make the path absolute first.
    case "$manifest" in
        /*) ;;
        *) manifest="$PWD/$manifest" ;;
    esac
fi

# Keep .terraform/ out of the work tree; the manifest module has no providers,
# so init writes no lock file either.
data_dir="$(mktemp -d "${TMPDIR:-/tmp}/tf-test.XXXXXX")"
trap 'rm -rf "$data_dir"' EXIT
export TF_DATA_DIR="$data_dir"
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1

step() { printf '\n==> %s\n' "$*"; }

step "terraform fmt -check -recursive terraform/"
if ! terraform fmt -check -recursive -diff "$here"; then
    echo "FAILED: run 'terraform fmt -recursive terraform' to fix the files listed above" >&2
    exit 1
fi

step "terraform init (modules/manifest, no providers, no backend)"
terraform -chdir="$module" init -backend=false -input=false -no-color >/dev/null

step "terraform test (modules/manifest, fixtures)"
terraform -chdir="$module" test -no-color

if [[ -z "$manifest" ]]; then
    step "real manifest: SKIPPED (no manifest path given)"
elif [[ ! -f "$manifest" ]]; then
    step "real manifest: SKIPPED ($manifest does not exist; run 'cargo xtask build')"
else
    step "terraform test (modules/manifest, real manifest $manifest)"
    terraform -chdir="$module" test -no-color -test-directory=tests/real -var "manifest_path=$manifest"
fi

# The AWS modules need the hashicorp/aws provider, which `terraform init`
# downloads; offline, point TF_PROVIDER_MIRROR at a filesystem mirror
# (<dir>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/...).
# Everything runs on a copy of terraform/, so no .terraform/ or module lock
# file lands in the tree; envs/dev keeps its committed lock file.
if [[ -z "${TF_PROVIDER_MIRROR:-}" ]]; then
    step "AWS modules and envs/dev: SKIPPED (need the hashicorp/aws provider; set TF_PROVIDER_MIRROR to a filesystem mirror to run them offline)"
else
    copy="$data_dir/repo"
    mkdir -p "$copy"
    cp -R "$here" "$copy/terraform"
    find "$copy/terraform" -name .terraform -prune -exec rm -rf {} +
    find "$copy/terraform/modules" -name .terraform.lock.hcl -exec rm -f {} +
    # envs/dev reads ../../../dist/manifest.json: give the copy the real dist/,
    # or else the manifest module's fixture (validate needs a manifest, not a
    # build).
    if [[ -n "$manifest" ]]; then dist="$(dirname "$manifest")"; else dist="$here/../dist"; fi
    if [[ ! -f "$dist/manifest.json" ]]; then
        dist="$module/tests/fixtures/repo/dist"
        echo "(envs/dev is validated against the fixture $dist: no dist/manifest.json)"
    fi
    ln -s "$(cd "$dist" && pwd)" "$copy/dist"
    printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' \
        "$TF_PROVIDER_MIRROR" >"$data_dir/mirror.tfrc"

    tf() {
        local dir="$1"
        shift
        TF_CLI_CONFIG_FILE="$data_dir/mirror.tfrc" TF_DATA_DIR="$data_dir/init-${dir//\//-}" \
            terraform -chdir="$copy/terraform/$dir" "$@"
    }

    for dir in modules/lambda_app modules/http_api modules/ecr; do
        step "terraform validate + test ($dir, mock provider)"
        tf "$dir" init -backend=false -input=false -no-color >/dev/null
        tf "$dir" validate -no-color
        tf "$dir" test -no-color
    done

    # -lockfile=readonly: init fails if the provider the mirror holds, or its
    # checksum, is not the one envs/dev/.terraform.lock.hcl records.
    step "terraform init -lockfile=readonly + validate (envs/dev)"
    tf envs/dev init -backend=false -input=false -lockfile=readonly -no-color >/dev/null
    tf envs/dev validate -no-color
fi

printf '\nterraform checks passed\n'
