"""The HTTP API for other programs, on the web server with its token: edged's own JSON under
/api/v1/ (described by /api/v1/openapi.json), and the endpoints of the face services people
already run (compat_api.py). Every route acts through the Python API (edged.api.Faces);
every refusal is a JSON error with an HTTP status, in the dialect of the route's client."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from edged.api import Enrolled, Faces
from edged.errors import EdgedError, GalleryError
from edged.sinks.uploads import Upload, UploadError

log = logging.getLogger("edged.api")
PHOTO_WORK_AT_ONCE = 2  # detections for API clients at a time: the cameras keep the rest of the box
PHOTO_WAIT_S = 20.0  # a request that waits longer for its turn is answered 503
MAX_PHOTOS = 10  # photos of one enrollment request


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    read_upload: Callable[[], Upload]  # reads and parses the body, once
    authorised: bool  # the token (bearer, x-api-key or ?token) or the password came with it
    key_opens: Callable[[str], bool]  # whether a key sent in a form field is the token
    _upload: Upload | None = None

    @property
    def body_read(self) -> bool:
        return self._upload is not None

    def upload(self) -> Upload:
        if self._upload is None:
            self._upload = self.read_upload()
        return self._upload


@dataclass
class Reply:
    status: int
    body: Any  # JSON-able, or bytes with `kind`
    kind: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """A refusal with its HTTP status; each dialect words it its own way."""

    def __init__(self, status: int, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # CompreFace's numeric error code, where one applies


Handler = Callable[[ApiRequest, re.Match[str]], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    summary: str = ""


def route(method: str, path: str, handler: Handler, summary: str = "") -> Route:
    """`path` with {name} parts: one path segment each, percent-decoded."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]{1,200})", path)
    return Route(method, re.compile(regex), handler, summary)


def arg(match: re.Match[str], name: str) -> str:
    return unquote(match.group(name))


class HttpApi:
    """Routes API requests to `faces`; `alerts(camera, limit)` and `clips(camera, limit)` give
    the alert history and the finished clips, as the page's /alerts.json and /clips.json do."""

    def __init__(self, faces: Faces, alerts: Callable[[str | None, int], list[dict[str, object]]],
                 clips: Callable[[str | None, int], dict[str, object]]) -> None:
        from edged.sinks import compat_api

        self.faces = faces
        self.alerts = alerts
        self.clips = clips
        self._photo_turns = threading.BoundedSemaphore(PHOTO_WORK_AT_ONCE)
        self.native = self._native_routes()
        compreface = compat_api.compreface_routes(self)
        # (path prefix, routes, how errors are worded, whether the key may come as a form field)
        self.dialects: list[tuple[str, list[Route], Callable[[ApiError], Reply], bool]] = [
            ("/v1/vision/", compat_api.deepstack_routes(self), compat_api.deepstack_error, True),
            ("/api/v1/recognition/", compreface, compat_api.compreface_error, False),
            ("/api/v1/detection/", compreface, compat_api.compreface_error, False),
            ("/api/v1/", self.native, native_error, False),
        ]

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith(("/api/", "/v1/"))

    def handle(self, request: ApiRequest) -> Reply:
        """The reply to one request; never raises for anything a client can send."""
        dialect = next((d for d in self.dialects if request.path.startswith(d[0])), None)
        if dialect is None:
            return native_error(ApiError(404, "no such API endpoint"))
        _, routes, error, key_in_form = dialect
        try:
            if not request.authorised and not (key_in_form and self._form_key_opens(request)):
                raise ApiError(401, "a token is required (Authorization: Bearer, x-api-key or api_key)")
            allowed = []
            for candidate in routes:
                match = candidate.pattern.fullmatch(request.path)
                if match is None:
                    continue
                if candidate.method == request.method:
                    return candidate.handler(request, match)
                allowed.append(candidate.method)
            if allowed:
                raise ApiError(405, f"{request.method} is not used here; use {' or '.join(sorted(set(allowed)))}")
            raise ApiError(404, "no such API endpoint")
        except ApiError as exc:
            return error(exc)
        except UploadError as exc:
            return error(ApiError(exc.status, str(exc)))
        except GalleryError as exc:
            return error(ApiError(404 if str(exc).startswith("no ") else 400, str(exc)))
        except EdgedError as exc:
            return error(ApiError(400, str(exc)))
        except Exception:  # a fault of ours: logged with its traceback, answered as one
            log.exception("API: %s %s failed", request.method, request.path)
            return error(ApiError(500, "the box failed to answer this request; its log has the reason"))

    def _form_key_opens(self, request: ApiRequest) -> bool:
        """DeepStack's clients send the key as the `api_key` form field."""
        if request.method != "POST":
            return False
        return request.key_opens(request.upload().fields.get("api_key", ""))

    def photo_work(self, work: Callable[[], Any]) -> Any:
        """Runs a detection for a client when its turn comes; 503 when the box is too busy."""
        if not self._photo_turns.acquire(timeout=PHOTO_WAIT_S):
            raise ApiError(503, "busy with other photos; try again shortly")
        try:
            return work()
        finally:
            self._photo_turns.release()

    # -- native routes -------------------------------------------------------------------
    def _native_routes(self) -> list[Route]:
        return [
            route("GET", "/api/v1/openapi.json", lambda r, m: Reply(200, openapi_document(self.native)),
                  "This document"),
            route("POST", "/api/v1/detect", self._detect, "Faces in a photo (no names)"),
            route("POST", "/api/v1/identify", self._identify, "Faces in a photo, with who they are"),
            route("GET", "/api/v1/people", lambda r, m: Reply(200, {"people": [
                p.to_json() for p in self.faces.people()]}), "Enrolled people"),
            route("POST", "/api/v1/people", self._add_person, "Add a person with no faces yet"),
            route("GET", "/api/v1/people/{name}", lambda r, m: Reply(200, self.faces.person(arg(m, "name")).to_json()),
                  "One person"),
            route("PATCH", "/api/v1/people/{name}", self._rename, "Rename a person"),
            route("DELETE", "/api/v1/people/{name}", self._delete, "Delete a person with their faces"),
            route("GET", "/api/v1/people/{name}/faces", self._faces_of, "A person's stored faces"),
            route("POST", "/api/v1/people/{name}/faces", self._enroll, "Enroll photos for a person"),
            route("POST", "/api/v1/people/{name}/reject", lambda r, m: self._correct(r, m, "reject"),
                  "Not this person: a photo or an alert's face"),
            route("POST", "/api/v1/people/{name}/confirm", lambda r, m: self._correct(r, m, "confirm"),
                  "This is the person: a photo or an alert's face"),
            route("DELETE", "/api/v1/faces/{face_id}", self._delete_face, "Delete one stored face"),
            route("GET", "/api/v1/strangers", lambda r, m: Reply(200, {"strangers": [
                p.to_json() for p in self.faces.strangers()]}), "Strangers the box gave an id"),
            route("POST", "/api/v1/strangers/{name}/name", self._name_stranger,
                  "Name a stranger (merged into the person when the name exists)"),
            route("DELETE", "/api/v1/strangers/{name}", self._delete, "Delete a stranger"),
            route("GET", "/api/v1/alerts", lambda r, m: Reply(200, {"alerts": self.alerts(*listing(r))}),
                  "Recent alerts, newest first"),
            route("GET", "/api/v1/clips", lambda r, m: Reply(200, self.clips(*listing(r))),
                  "Finished clips, newest first"),
        ]

    def _photos(self, request: ApiRequest, most: int = 1) -> list[bytes]:
        upload = request.upload()
        photos = [data for _, data in upload.files]
        if not photos:
            raise ApiError(400, "no photo: send it as the body (image/jpeg) or as a file in a multipart form")
        if len(photos) > most:
            raise ApiError(400, f"{len(photos)} photos sent; at most {most} here")
        return photos

    def _detect(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        (photo,) = self._photos(request)
        faces = self.photo_work(lambda: self.faces.detect(photo))
        return Reply(200, {"faces": [f.to_json() for f in faces]})

    def _identify(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        (photo,) = self._photos(request)
        faces = self.photo_work(lambda: self.faces.identify(photo))
        return Reply(200, {"faces": [f.to_json() for f in faces], "threshold": round(self.faces.threshold, 4)})

    def _enroll(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        name = arg(match, "name")
        enrolled, refused = [], []
        for index, photo in enumerate(self._photos(request, MAX_PHOTOS)):
            try:
                done: Enrolled = self.photo_work(functools.partial(self.faces.enroll, name, photo))
            except EdgedError as exc:
                refused.append({"photo": index, "error": str(exc).replace("the photo: ", "")})
                continue
            enrolled.append({"photo": index, "face_id": done.face_id, "note": done.note})
            name = done.person
        log.info("API: enrolled %d photo(s) as %r, %d refused", len(enrolled), name, len(refused))
        return Reply(200 if enrolled else 400, {"person": name, "enrolled": enrolled, "refused": refused})

    def _add_person(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        name = json_field(request, "name")
        if not self.faces.add_person(name):
            raise ApiError(409, f"'{name}' exists already")
        log.info("API: added %s", name)
        return Reply(201, self.faces.person(name.strip()).to_json())

    def _rename(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        old, new = arg(match, "name"), json_field(request, "name")
        self.faces.rename(old, new)
        log.info("API: renamed %s to %s", old, new)
        return Reply(200, self.faces.person(new.strip()).to_json())

    def _delete(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        name = arg(match, "name")
        stranger = match.re.pattern.startswith("/api/v1/strangers")
        if stranger != self.faces.person(name).stranger:
            raise ApiError(404, f"'{name}' is {'an enrolled person' if stranger else 'a stranger'}; "
                           f"use /api/v1/{'people' if stranger else 'strangers'}/")
        removed = self.faces.delete(name)
        log.info("API: deleted %s (%d face(s))", name, removed)
        return Reply(200, {"deleted": name, "faces": removed})

    def _faces_of(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        return Reply(200, {"faces": [face_json(f) for f in self.faces.faces(arg(match, "name"))]})

    def _delete_face(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        text = arg(match, "face_id")
        if not text.isdigit():
            raise ApiError(400, "a face id is a number")
        face = self.faces.delete_face(int(text))
        log.info("API: deleted face %d of %s", face.id, face.person)
        return Reply(200, face_json(face))

    def _correct(self, request: ApiRequest, match: re.Match[str], action: str) -> Reply:
        name, upload = arg(match, "name"), request.upload()
        event = (upload.document or {}).get("event", upload.fields.get("event"))
        if event is not None and not isinstance(event, str):
            raise ApiError(400, "'event' is an event id (text)")
        photo = upload.files[0][1] if upload.files else None
        act = self.faces.reject if action == "reject" else self.faces.confirm
        message = self.photo_work(lambda: act(name, image=photo, event=event))
        log.info("API: %s", message)
        return Reply(200, {"ok": True, "message": message})

    def _name_stranger(self, request: ApiRequest, match: re.Match[str]) -> Reply:
        stranger, name = arg(match, "name"), json_field(request, "name")
        self.faces.name_stranger(stranger, name)
        log.info("API: %s named %s", stranger, name)
        return Reply(200, self.faces.person(name.strip()).to_json())


def face_json(face: Any) -> dict[str, object]:
    return {"id": face.id, "person": face.person, "model_id": face.model_id, "source": face.source,
            "created": round(face.created, 3)}


def json_field(request: ApiRequest, name: str) -> str:
    """A text field of a JSON body (or a form)."""
    upload = request.upload()
    value = (upload.document or {}).get(name, upload.fields.get(name))
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"send a JSON body with '{name}' (text), like {{\"{name}\": \"alice\"}}")
    return value


def listing(request: ApiRequest) -> tuple[str | None, int]:
    """?camera=NAME&limit=N (1 to 500, default 100)."""
    from edged.config import CAMERA_NAME

    camera = request.query.get("camera", "")
    try:
        limit = max(1, min(500, int(request.query.get("limit", "100"))))
    except ValueError:
        raise ApiError(400, "limit is a number (1 to 500)") from None
    return (camera if CAMERA_NAME.fullmatch(camera) else None), limit


def native_error(error: ApiError) -> Reply:
    return Reply(error.status, {"error": str(error)})


REFUSALS = {"400": "Refused: a bad photo, name or body (the reason says which)", "401": "No token, or a wrong one",
            "403": "From another site's page", "404": "No such person, stranger, face or endpoint",
            "405": "Another method is used here", "408": "The body did not arrive in time",
            "409": "The name exists already", "411": "A chunked body", "413": "The body is too large",
            "415": "A body type not taken", "503": "Busy with other photos; try again"}


def openapi_document(routes: list[Route]) -> dict[str, object]:
    """OpenAPI 3.0 for the native routes, made from the route table so the two cannot drift."""
    from edged import __version__

    photo_body = {"required": True, "content": {
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "image": {"type": "string", "format": "binary"}}}}}}
    name_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 64}}}}}}
    correction_body = {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "properties": {"event": {"type": "string"}}}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    bodies = {"/api/v1/detect": photo_body, "/api/v1/identify": photo_body, "/api/v1/people/{name}/faces": photo_body,
              "/api/v1/people/{name}/reject": correction_body, "/api/v1/people/{name}/confirm": correction_body}
    error = {"description": "Refused: the reason", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}}}}}
    paths: dict[str, dict[str, object]] = {}
    for r in routes:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", r.pattern.pattern)
        ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
        refusals = {code: {**error, "description": why} for code, why in REFUSALS.items()}
        operation: dict[str, object] = {
            "summary": r.summary, "operationId": f"{r.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}",
            "responses": {"201" if (r.method, path) == ("POST", "/api/v1/people") else "200": ok, **refusals}}
        parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                      for p in re.findall(r"\{(\w+)\}", path)]
        if path in ("/api/v1/alerts", "/api/v1/clips"):
            limit = {"type": "integer", "minimum": 1, "maximum": 500}
            parameters += [{"name": "camera", "in": "query", "schema": {"type": "string"}},
                           {"name": "limit", "in": "query", "schema": limit}]
        if parameters:
            operation["parameters"] = parameters
        if r.method == "POST" and path in bodies:
            operation["requestBody"] = bodies[path]
        elif r.method in ("POST", "PATCH") and r.method != "GET" and path not in bodies:
            operation["requestBody"] = name_body
        paths.setdefault(path, {})[r.method.lower()] = operation
    return {"openapi": "3.0.3",
            "info": {"title": "edged", "version": __version__,
                     "description": "Faces in photos, the gallery, alerts and clips of one edged box."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}


def clip_rows(folder: Path | None, history: Any, cameras: set[str], camera: str | None,
              limit: int, served: re.Pattern[str]) -> dict[str, object]:
    """The finished clips, newest first, each with the alerts it was recorded for."""
    rows: list[dict[str, object]] = []
    owners: set[str] = set()
    files = sorted(folder.glob("*.mp4"), key=lambda f: f.stat().st_mtime, reverse=True) if folder else []
    by_clip = history.by_clip() if history is not None else {}
    for path in files:
        if not served.fullmatch(path.name):
            continue
        alerts = by_clip.get(path.name, [])
        owner = str(alerts[0]["camera"]) if alerts else path.name.rsplit("-", 3)[0]
        owners.add(owner)
        if camera is None or owner == camera:
            info = path.stat()
            rows.append({"name": path.name, "camera": owner, "bytes": info.st_size,
                         "modified": info.st_mtime, "alerts": alerts})
    return {"cameras": sorted(owners | cameras), "clips": rows[:limit]}
