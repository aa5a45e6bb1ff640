#!/usr/bin/env bash
# Checks the Terraform of this repository without AWS credentials or network:
#   1. `terraform fmt -check -recursive` over terraform/
#   2. the manifest module's fixture tests (terraform test)
#   3. with a manifest path argument (default: none), the invariants of that
#      real dist/manifest.json (tests/real), skipped when the file is absent.
#   4. with TF_PROVIDER_MIRROR set, `terraform validate` of the AWS modules and
#      envs/dev, using the hashicorp/aws provider from that filesystem mirror.
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
# Validation runs on a copy of terraform/ so no lock file lands in the tree.
if [[ -z "${TF_PROVIDER_MIRROR:-}" ]]; then
    step "validate AWS modules: SKIPPED (needs the hashicorp/aws provider; set TF_PROVIDER_MIRROR to a filesystem mirror to run it offline)"
else
    copy="$data_dir/repo"
    mkdir -p "$copy"
    cp -R "$here" "$copy/terraform"
    find "$copy/terraform" \( -name .terraform -o -name .terraform.lock.hcl \) -prune -exec rm -rf {} +
    # envs/dev reads ../../../dist/manifest.json: give the copy the real dist/.
    if [[ -n "$manifest" ]]; then dist="$(dirname "$manifest")"; else dist="$here/../dist"; fi
    if [[ -d "$dist" ]]; then ln -s "$(cd "$dist" && pwd)" "$copy/dist"; fi
    printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' \
        "$TF_PROVIDER_MIRROR" >"$data_dir/mirror.tfrc"
    for dir in modules/lambda_app modules/http_api envs/dev; do
        if [[ "$dir" == envs/dev && ! -f "$copy/dist/manifest.json" ]]; then
            step "terraform validate ($dir): SKIPPED (no dist/manifest.json; run 'cargo xtask build')"
            continue
        fi
        step "terraform validate ($dir)"
        TF_CLI_CONFIG_FILE="$data_dir/mirror.tfrc" TF_DATA_DIR="$data_dir/validate-${dir//\//-}" \
            terraform -chdir="$copy/terraform/$dir" init -backend=false -input=false -no-color >/dev/null
        TF_CLI_CONFIG_FILE="$data_dir/mirror.tfrc" TF_DATA_DIR="$data_dir/validate-${dir//\//-}" \
            terraform -chdir="$copy/terraform/$dir" validate -no-color
    done
fi

printf '\nterraform checks passed\n'
