#!/usr/bin/env bash
# Copies the openshift CRDs this project serves from the pinned github.com/openshift/api module into manifests/crds.
# One feature-set variant per kind (the module ships several; envtest must not see two of one kind).
# Run after bumping the openshift/api pin in go.mod; commit the result.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
API=$(go list -m -f '{{.Dir}}' github.com/openshift/api)
OUT=$ROOT/manifests/crds
# The project's own CRDs (rollouts.imagemode.io_*) are written with their types and kept.
mkdir -p "$OUT"; rm -f "$OUT"/0000_*.crd.yaml
while read -r dir file; do
  install -m 0644 "$API/$dir/zz_generated.crd-manifests/$file" "$OUT/$file"
done <<'LIST'
machineconfiguration/v1 0000_80_machine-config_01_machineconfigs.crd.yaml
machineconfiguration/v1 0000_80_machine-config_01_machineconfigpools-SelfManagedHA.crd.yaml
machineconfiguration/v1 0000_80_machine-config_01_machineosconfigs.crd.yaml
machineconfiguration/v1 0000_80_machine-config_01_machineosbuilds.crd.yaml
machineconfiguration/v1 0000_80_machine-config_01_machineconfignodes-SelfManagedHA-Default.crd.yaml
machineconfiguration/v1 0000_80_machine-config_01_controllerconfigs-Default.crd.yaml
machineconfiguration/v1 0000_80_machine-config_01_pinnedimagesets.crd.yaml
operator/v1 0000_80_machine-config_01_machineconfigurations.crd.yaml
config/v1 0000_10_config-operator_01_imagedigestmirrorsets.crd.yaml
config/v1 0000_10_config-operator_01_imagetagmirrorsets.crd.yaml
config/v1 0000_10_config-operator_01_images.crd.yaml
operator/v1alpha1 0000_10_config-operator_01_imagecontentsourcepolicies.crd.yaml
LIST
# The kustomization manifests/deploy installs the CRDs through (kustomize takes no ../ files).
{
  echo "# The CRDs this project serves: the openshift ones copied unchanged from the pinned github.com/openshift/api by"
  echo "# hack/update-crds.sh, and the project's own (rollouts.imagemode.io); manifests/deploy installs them with the"
  echo "# components (kubectl apply -k manifests/deploy)."
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  (cd "$OUT" && LC_ALL=C ls *.crd.yaml | sed 's/^/- /')
} >"$OUT/kustomization.yaml"
echo "copied $(ls "$OUT"/*.crd.yaml | wc -l) CRDs from $API" >&2
