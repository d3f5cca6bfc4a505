#!/usr/bin/env bash
# The README's first command: set everything up, then find out who is in the demo video, and
# when, with a report (timeline picture, thumbnails, HTML page) to look at.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/tools/setup.sh"
demo=$(cat "$here/.venv/.edged-demo-video")
export EDGED_GALLERY="${EDGED_GALLERY:-$here/.cache/demo/gallery.db}"
"$here/.venv/bin/edged" scan "$demo" --report "$here/.cache/demo/report"
echo "Open $here/.cache/demo/report/index.html to see who was there, and when."
