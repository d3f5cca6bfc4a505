#!/usr/bin/env bash
# The README's first command: set everything up, then run the daemon on the demo video (looped,
# as if it were a camera), with the people in ../shared/data/faces enrolled when they are there.
# Ctrl-C stops it. `edged scan VIDEO --report DIR` answers "who is in this video" instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/tools/setup.sh"
demo=$(cat "$here/.venv/.edged-demo-video")
state="$here/.cache/demo"
mkdir -p "$state"
export EDGED_GALLERY="$state/gallery.db"
faces="${EDGED_SHARED:-$here/../shared}/data/faces"
if [[ -d "$faces" && ! -f "$state/.enrolled" ]]; then
  for person in "$faces"/*/; do
    "$here/.venv/bin/edged" enroll "$(basename "$person")" "$person"* >/dev/null 2>&1 || true
  done
  touch "$state/.enrolled"
fi
port="${EDGED_DEMO_PORT:-8090}"
cat > "$state/edged.toml" <<TOML
[camera]
name = "demo"
source = "$demo"
loop = true
[recognition]
gallery = "$state/gallery.db"
[alerts]
mode = "all"
[stream]
port = $port
TOML
echo "edged is starting on the demo video; live view: http://127.0.0.1:$port/"
echo "In another terminal: $here/.venv/bin/edged status --config $state/edged.toml"
exec "$here/.venv/bin/edged" run --config "$state/edged.toml"
