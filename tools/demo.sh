#!/usr/bin/env bash
# The README's first command: set everything up, then run the daemon on the demo video (looped,
# as if it were a camera), with the people in ../shared/data/faces enrolled when they are there.
# Ctrl-C stops it. `edged scan VIDEO --report DIR` answers "who is in this video" instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/tools/setup.sh"
demo=$(cat "$here/.venv/.edged-demo-video")
[[ -f "$demo" ]] || { echo "[demo] no demo video at $demo (setup could not fetch it): put one there" >&2; exit 1; }
state="${EDGED_DEMO_STATE:-$here/.cache/demo}"
mkdir -p "$state"
export EDGED_GALLERY="$state/gallery.db"
faces="${EDGED_SHARED:-$here/../shared}/data/faces"
if [[ -d "$faces" && ! -f "$state/.enrolled" ]]; then
  for person in "$faces"/*/; do
    "$here/.venv/bin/edged" enroll "$(basename "$person")" "$person"* >/dev/null 2>&1 || true
  done
  touch "$state/.enrolled"
fi
enrolled=$("$here/.venv/bin/edged" gallery list --json 2>/dev/null | "$here/.venv/bin/python" -c \
  "import json, sys; print(', '.join(p['name'] for p in json.load(sys.stdin)['people'] if not p['anonymous']) or 'nobody')")
port="${EDGED_DEMO_PORT:-8090}"
cat > "$state/edged.toml" <<TOML
[camera]
name = "demo"
source = "$demo"
loop = true
[recognition]
gallery = "$state/gallery.db"
[alerts]
# Strangers alert, each at most once a minute: what a box at a door would do.
mode = "unknowns"
cooldown_s = 60
[clips]
# The first clip is ready about ten seconds after the first alert.
pre_roll_s = 5.0
post_roll_s = 5.0
[stream]
port = $port
TOML
echo "enrolled: $enrolled"
echo "edged is starting on the demo video; live view: http://127.0.0.1:$port/"
echo "alerts on strangers (once a minute each); clips in $state/clips, listed by: $here/.venv/bin/edged clips list --dir $state/clips"
echo "In another terminal: $here/.venv/bin/edged status --config $state/edged.toml"
exec "$here/.venv/bin/edged" run --config "$state/edged.toml"
