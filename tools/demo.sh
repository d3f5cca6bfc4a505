#!/usr/bin/env bash
# The README's first command: set everything up, then scan the demo video for faces.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/tools/setup.sh"
demo=$(cat "$here/.venv/.edged-demo-video")
export EDGED_GALLERY="${EDGED_GALLERY:-$here/.cache/demo/gallery.db}"
exec "$here/.venv/bin/edged" scan "$demo" --edge --every 5
