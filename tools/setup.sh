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
# Bold only on a terminal: a log file or CI's output gets plain text.
if [[ -t 1 ]]; then say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }; else say() { printf '[setup] %s\n' "$*"; }; fi

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- system packages ------------------------------------------------------------------------
# python3-venv for the virtual environment; the rest are what the tests start as real services.
packages=()
# `python3 -m venv --help` works without python3-venv; creating one then fails for want of ensurepip.
python3 -c "import ensurepip" >/dev/null 2>&1 || packages+=(python3-venv python3-pip)
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
# A venv left half-made (no pip: an earlier run without ensurepip, or one cut short) is made again.
if [[ -e "$venv" ]] && ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  say "$venv is incomplete (no working pip); making it again"
  rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
  say "creating $venv"
  python3 -m venv "$venv" || { rm -rf "$venv"; say "cannot create $venv (is python3-venv installed?)"; exit 1; }
fi
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
extras="mqtt,notify,s3,clips"
[[ $dev -eq 1 ]] && extras="$extras,dev,tools,docs"
stamp="$venv/.edged-installed-$extras"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  say "installing edged[$extras] into $venv"
  pip install --no-warn-conflicts -e ".[$extras]"  # facenet-pytorch lacks its torchvision on purpose
  if [[ $dev -eq 1 ]]; then
    # facenet-pytorch carries the MTCNN weights; its pinned torchvision has no CPU build here
    # and is not needed (tools/facenet_reference.py stands in for the two functions it uses).
    pip install --no-deps --no-warn-conflicts "facenet-pytorch==2.6.0"
    # CompreFace's own client, for the API tests: it pins requests-toolbelt 0.9.1, which
    # cannot import beside urllib3 2; the dev extra brings toolbelt 1.0, which it works with.
    pip install --no-deps --no-warn-conflicts "compreface-sdk==0.6.0"
  fi
  rm -f "$venv"/.edged-installed-*
  touch "$stamp"
fi

# --- Home Assistant, for the tests ------------------------------------------------------------
# Its own discovery schemas check every payload edged publishes (tools/ha_schemas.py). It lives
# in a virtual environment of its own, outside the checkout, made once per machine.
if [[ $dev -eq 1 ]]; then
  ha_venv="${EDGED_HA_VENV:-$HOME/.cache/edged/homeassistant-2024.1}"
  ha_pip() { "$ha_venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
  if [[ ! -x "$ha_venv/bin/hass" ]]; then
    say "installing Home Assistant 2024.1 into $ha_venv (the tests check discovery with its schemas; once)"
    rm -rf "$ha_venv"
    # paho-mqtt 1.6.1 is what its MQTT integration asks for (it would install it at every start).
    python3 -m venv "$ha_venv" && ha_pip install "homeassistant==2024.1.6" numpy "paho-mqtt==1.6.1" \
      || { rm -rf "$ha_venv"; say "cannot install Home Assistant into $ha_venv"; exit 1; }
  elif ! "$ha_venv/bin/python" -c "import paho.mqtt, numpy" 2>/dev/null; then
    ha_pip install numpy "paho-mqtt==1.6.1"
  fi
  echo "$ha_venv" > "$venv/.edged-ha-venv"
fi

# --- demo video -----------------------------------------------------------------------------
# (Before the models: a few of its frames check an embedder exported here.) Offline, setup
# goes on without it: only the demo and the embedder's export check need it.
py="$venv/bin/python"
demo="$shared/data/video/crowd_1080p.mp4"
if [[ ! -f "$demo" ]]; then
  demo="$here/.cache/demo/crowd_1080p.mp4"
  if [[ ! -f "$demo" ]]; then
    mkdir -p "$(dirname "$demo")"
    say "downloading the demo video (facenet-pytorch examples/video.mp4)"
    if "$py" -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
        "https://raw.githubusercontent.com/timesler/facenet-pytorch/master/examples/video.mp4" "$demo.part" 2>/dev/null; then
      mv "$demo.part" "$demo"
    else
      rm -f "$demo.part"
      say "no demo video (offline?): put a video at $demo, or ../shared beside the checkout"
    fi
  fi
fi
echo "$demo" > "$venv/.edged-demo-video"

# --- models ---------------------------------------------------------------------------------
# MTCNN's ONNX files are small and ship with edged (models/); embedders are registered in the
# models directory: $EDGED_MODELS, else the state directory's models/ (~/.local/share/edged/models).
if [[ -f "$shared/models/mobilefacenet.onnx" ]]; then
  for name in mobilefacenet mobilefacenet_paddle; do
    "$py" tools/export_models.py import "$shared/models/$name.onnx" --spec "models/specs/$name.toml" >/dev/null
  done
  say "registered the MobileFaceNet embedders from $shared/models"
fi
has_embedder() {
  "$py" -c "import sys; from pathlib import Path; from edged.runtime import ModelStore
sys.exit(not any(s.is_embedder and Path(s.file).is_file() for s in ModelStore().specs.values()))"
}
checkpoint_url="${EDGED_FACENET_URL:-https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt}"
can_fetch_checkpoint() {
  # A cached download, or the release answering within 15 s: asked before torch (754 MB) is installed.
  [[ -f "$here/.cache/$(basename "$checkpoint_url")" ]] && return 0
  "$py" -c "import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='HEAD'), timeout=15).close()" "$checkpoint_url" 2>/dev/null
}
if ! has_embedder && [[ -f "$demo" ]] && { [[ -n "${EDGED_FACENET_WEIGHTS:-}" ]] || can_fetch_checkpoint; }; then
  # The default embedder, InceptionResnetV1 (VGGFace2): its checkpoint, exported to ONNX here and
  # checked against torch on frames of the demo video. torch is needed for this once. (facenet_pytorch
  # is looked for, not imported: installed without its dependencies, its import wants tqdm.)
  "$py" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('torch', 'onnx', 'facenet_pytorch')))" || {
    say "installing torch and onnx to export the default embedder (once)"
    pip install --no-warn-conflicts "torch==2.13.0" "onnx>=1.15" && pip install --no-deps --no-warn-conflicts "facenet-pytorch==2.6.0"
  }
  frames="$here/.cache/verify"
  mkdir -p "$frames"
  "$py" - "$demo" "$frames" <<'PY'
import sys, cv2
capture = cv2.VideoCapture(sys.argv[1])
for n in range(12):
    ok, frame = capture.read()
    if not ok:
        break
    cv2.imwrite(f"{sys.argv[2]}/frame{n:02d}.jpg", frame)
PY
  if [[ -n "${EDGED_FACENET_WEIGHTS:-}" ]]; then
    say "exporting InceptionResnetV1 (VGGFace2) from $EDGED_FACENET_WEIGHTS"
    "$py" tools/export_models.py --verify-images "$frames" facenet --weights "$EDGED_FACENET_WEIGHTS"
  elif ! "$py" tools/export_models.py --verify-images "$frames" facenet --download --url "$checkpoint_url" \
      2>"$here/.cache/download.log"; then
    say "the embedder's export failed: $(tail -n 1 "$here/.cache/download.log")"
  fi
fi
if ! has_embedder; then
  # Not fatal: the daemon finds and tracks faces without one; only names need it.
  say "no embedder: faces will be found and tracked, not named. To add one, run this again with"
  say "../shared beside the checkout, or EDGED_FACENET_WEIGHTS=/path/to/20180402-114759-vggface2.pt (docs/recognition.md)"
fi
"$venv/bin/edged" models 2>&1 | sed 's/^/[setup] /'
say "ready"
