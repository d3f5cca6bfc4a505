"""Writes docs/api-transcript.md: curl run against a real daemon for every native endpoint of
the HTTP API, with what it answered. The daemon watches ../shared's crowd video, with obama
and biden enrolled from ../shared/data/faces.

    .venv/bin/python tools/api_transcript.py            # prints the Markdown
    .venv/bin/python tools/api_transcript.py --write    # into docs/api-transcript.md"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import Daemon, free_port, wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TOKEN = "transcript-token-0123456789"


def shown(command: list[str], port: int) -> str:
    """The command as a reader would type it: $BOX and $TOKEN, and the photos' names."""
    text = " ".join(shlex.quote(part) for part in command)
    return (text.replace(f"'Authorization: Bearer {TOKEN}'", '"Authorization: Bearer $TOKEN"')
            .replace(f"http://127.0.0.1:{port}", "$BOX").replace(str(SHARED / "faces") + "/", "")
            .replace(str(SHARED / "images") + "/", "")).replace("'$BOX", '"$BOX').replace("?limit=2'", '?limit=2"')


def compact(text: str) -> str:
    """Indented JSON with short lists (a box, a landmark) kept on one line."""
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return re.sub(r"\[\s+((?:\[[^\[\]]*\],?\s*)+)\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


def curl(port: int, method: str, path: str, *extra: str, token: str = TOKEN) -> tuple[list[str], str]:
    command = ["curl", "-sS", "-X", method, "-H", f"Authorization: Bearer {token}", *extra,
               f"http://127.0.0.1:{port}{path}"]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    try:
        document = json.loads(answer)
        if isinstance(document, dict) and "paths" in document:
            document = {**document, "paths": {p: sorted(v) for p, v in document["paths"].items()}}
        answer = compact(json.dumps(document, indent=2))
    except ValueError:
        pass
    return command, answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write docs/api-transcript.md")
    args = parser.parse_args()
    import edged

    with tempfile.TemporaryDirectory(prefix="edged-transcript-") as tmp:
        folder = Path(tmp)
        with edged.Faces(folder / "gallery.db") as faces:
            faces.enroll("obama", SHARED / "faces" / "obama" / "obama.jpg")
            faces.enroll("biden", SHARED / "faces" / "biden" / "biden.jpg")
        port = free_port()
        daemon = Daemon(folder, f"""
[camera]
name = "door"
source = "{SHARED / 'video' / 'crowd_1080p.mp4'}"
loop = true
[recognition]
gallery = "{folder / 'gallery.db'}"
[stream]
port = {port}
token = "{TOKEN}"
""")
        daemon.start()
        try:
            wait_until(lambda: curl(port, "GET", "/api/v1/people")[1].startswith("{"), 90, "the API")
            wait_until(lambda: json.loads(curl(port, "GET", "/api/v1/strangers")[1])["strangers"], 90,
                       "a stranger on the camera")
            stranger = json.loads(curl(port, "GET", "/api/v1/strangers")[1])["strangers"][0]["name"]
            photo = SHARED / "images" / "obama_and_biden.jpg"
            kit = SHARED / "faces" / "kit_harington"
            steps = [
                ("The API's own description (OpenAPI 3; paths and methods shown here)",
                 ["GET", "/api/v1/openapi.json"]),
                ("Who is in a photo (the photo as the body)",
                 ["POST", "/api/v1/identify", "-H", "Content-Type: image/jpeg", "--data-binary", f"@{photo}"]),
                ("Faces in a photo, without names (a multipart form works as well)",
                 ["POST", "/api/v1/detect", "-F", f"image=@{SHARED / 'images' / 'obama1.jpg'}"]),
                ("Enroll photos for a person (several files in one form)",
                 ["POST", "/api/v1/people/Kit%20Harington/faces", "-F", f"image=@{kit / 'john1.jpeg'}",
                  "-F", f"image=@{kit / 'john2.jpeg'}"]),
                ("Add a person with no faces yet", ["POST", "/api/v1/people", "-H", "Content-Type: application/json",
                                                    "-d", '{"name": "rose"}']),
                ("Everyone enrolled", ["GET", "/api/v1/people"]),
                ("One person", ["GET", "/api/v1/people/Kit%20Harington"]),
                ("A person's stored faces", ["GET", "/api/v1/people/Kit%20Harington/faces"]),
                ("Rename", ["PATCH", "/api/v1/people/Kit%20Harington", "-H", "Content-Type: application/json",
                            "-d", '{"name": "kit"}']),
                ("Not this person: a photo (or {\"event\": \"<alert id>\"})",
                 ["POST", "/api/v1/people/kit/reject", "-H", "Content-Type: image/jpeg",
                  "--data-binary", f"@{SHARED / 'faces' / 'paul_rudd' / '1.jpg'}"]),
                ("This is the person: a photo (or an alert's event id)",
                 ["POST", "/api/v1/people/rose/confirm", "-H", "Content-Type: image/jpeg",
                  "--data-binary", f"@{SHARED / 'faces' / 'rose_leslie' / 'img1.jpg'}"]),
                ("Delete one stored face", ["DELETE", "/api/v1/faces/{kit_face}"]),
                ("Strangers the box has given an id", ["GET", "/api/v1/strangers"]),
                ("Name a stranger (merged into that person when the name exists)",
                 ["POST", f"/api/v1/strangers/{stranger}/name", "-H", "Content-Type: application/json",
                  "-d", '{"name": "someone"}']),
                ("Delete a person", ["DELETE", "/api/v1/people/rose"]),
                ("Delete a stranger", ["DELETE", "/api/v1/strangers/{stranger2}"]),
                ("Recent alerts (?camera=, ?limit=)", ["GET", "/api/v1/alerts?limit=2"]),
                ("Finished clips (?camera=, ?limit=)", ["GET", "/api/v1/clips?limit=2"]),
                ("A wrong token: refused", ["GET", "/api/v1/people"]),
            ]
            out = ["# The HTTP API: a transcript", "",
                   "curl against a running daemon, made by `tools/api_transcript.py --write` (the camera: "
                   "../shared's crowd video; obama and biden enrolled). `$TOKEN` is `stream.token`, `$BOX` the box's "
                   "address (`http://127.0.0.1:8080` on the box itself). "
                   "Long answers are cut at 40 lines. The reference is [The HTTP API](api.md).", ""]
            for title, (method, path, *extra) in steps:
                if "{kit_face}" in path:
                    kit_faces = json.loads(curl(port, "GET", "/api/v1/people/kit/faces")[1])["faces"]
                    path = path.replace("{kit_face}", str(kit_faces[-1]["id"]))
                if "{stranger2}" in path:
                    left = json.loads(curl(port, "GET", "/api/v1/strangers")[1])["strangers"]
                    if not left:
                        continue
                    path = path.replace("{stranger2}", left[0]["name"])
                command, answer = curl(port, method, path, *extra,
                                       token="wrong" if title.startswith("A wrong token") else TOKEN)
                lines = answer.splitlines()
                if len(lines) > 40:
                    lines = [*lines[:40], "..."]
                out += [f"## {title}", "", "```console", f"$ {shown(command, port)}", *lines, "```", ""]
        finally:
            daemon.stop()
    text = "\n".join(out)
    if args.write:
        (ROOT / "docs" / "api-transcript.md").write_text(text)
        print(f"wrote {ROOT / 'docs' / 'api-transcript.md'}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
