#!/usr/bin/env bash
# Sets up edged on a fresh Debian / Ubuntu / Raspberry Pi OS box: system packages, a virtual
# environment in .venv, the models, and the demo video. Safe to run again: it only adds what
# is missing. With --dev it also installs what the tests and the export tool need.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
dev=0
[[ "${1:-}" == "--dev" ]] && dev=1
shared="${EDGED_SHARED:-$here/../shared}"
venv="$here/.venv"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- system packages ------------------------------------------------------------------------
# python3-venv for the virtual environment; the rest are what the tests start as real services.
packages=()
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv python3-pip)
if [[ $dev -eq 1 ]]; then
  # Real services the tests start on loopback: an MQTT broker, an RTSP server fed by ffmpeg.
  command -v ffmpeg >/dev/null 2>&1 || packages+=(ffmpeg)
  command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || packages+=(mosquitto)
  command -v rtsp-server-perl >/dev/null 2>&1 || packages+=(rtsp-server-perl)
  command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)  # checks the unit file
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)  # loads the live page in the tests
fi
if [[ ${#packages[@]} -gt 0 ]]; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${packages[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    say "please install: ${packages[*]} (no apt-get here)"; exit 1
  fi
fi

# --- Python environment ---------------------------------------------------------------------
if [[ ! -x "$venv/bin/python" ]]; then
  say "creating $venv"
  python3 -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
extras="mqtt,notify,s3,clips"
[[ $dev -eq 1 ]] && extras="$extras,dev,tools"
stamp="$venv/.edged-installed-$extras"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  say "installing edged[$extras] into $venv"
  pip install -e ".[$extras]"
  if [[ $dev -eq 1 ]]; then
    # facenet-pytorch carries the MTCNN weights; its pinned torchvision has no CPU build here
    # and is not needed (tools/facenet_reference.py stands in for the two functions it uses).
    pip install --no-deps "facenet-pytorch==2.6.0"
  fi
  rm -f "$venv"/.edged-installed-*
  touch "$stamp"
fi

# --- models ---------------------------------------------------------------------------------
# MTCNN's ONNX files are small and ship with edged (models/); embedders are registered in the
# models directory: $EDGED_MODELS, else the state directory's models/ (~/.local/share/edged/models).
py="$venv/bin/python"
if [[ -f "$shared/models/mobilefacenet.onnx" ]]; then
  for name in mobilefacenet mobilefacenet_paddle; do
    "$py" tools/export_models.py import "$shared/models/$name.onnx" --spec "models/specs/$name.toml" >/dev/null
  done
  say "registered the MobileFaceNet embedders from $shared/models"
fi
weights="${EDGED_FACENET_WEIGHTS:-$here/.cache/20180402-114759-vggface2.pt}"
has_model() { "$py" -c "import sys; from edged.runtime import ModelStore; sys.exit('$1' not in ModelStore().specs)"; }
if ! has_model inception_resnet_v1_vggface2 && [[ -f "$weights" ]]; then
  "$venv/bin/python" -c "import torch" 2>/dev/null || pip install "torch==2.13.0" "onnx>=1.15"
  "$py" -c "import importlib.util as u, sys; sys.exit(u.find_spec('facenet_pytorch') is None)" \
    || pip install --no-deps "facenet-pytorch==2.6.0"
  say "exporting InceptionResnetV1 (VGGFace2) from $weights"
  "$py" tools/export_models.py facenet --weights "$weights"
fi
"$venv/bin/edged" models 2>&1 | sed 's/^/[setup] /'

# --- demo video -----------------------------------------------------------------------------
demo="$shared/data/video/crowd_1080p.mp4"
if [[ ! -f "$demo" ]]; then
  demo="$here/.cache/demo/crowd_1080p.mp4"
  if [[ ! -f "$demo" ]]; then
    mkdir -p "$(dirname "$demo")"
    say "downloading the demo video (facenet-pytorch examples/video.mp4)"
    "$py" -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
      "https://raw.githubusercontent.com/timesler/facenet-pytorch/master/examples/video.mp4" "$demo.part"
    mv "$demo.part" "$demo"
  fi
fi
echo "$demo" > "$venv/.edged-demo-video"
say "ready"
