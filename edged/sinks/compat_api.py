"""The face endpoints of DeepStack / CodeProject.AI (/v1/vision/face/...) and of CompreFace's
recognition service (/api/v1/recognition/..., /api/v1/detection/detect), answered by edged,
so that their clients (Home Assistant's DeepStack face integration, Double Take, scripts) use a
box unchanged. Names follow edged's measured threshold: a face below it is "unknown", whatever
similarity a client asks for, and similarities are edged's cosine similarities."""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from typing import TYPE_CHECKING

from edged.api import Face
from edged.errors import EdgedError
from edged.sinks.http_api import ApiError, ApiRequest, Reply, arg, route
from edged.sinks.uploads import MAX_UPLOAD

if TYPE_CHECKING:
    from edged.sinks.http_api import HttpApi, Route

NO_FACE = 28  # CompreFace's code for "No face is found in the given image"


# -- DeepStack / CodeProject.AI ----------------------------------------------------------------
def deepstack_error(error: ApiError) -> Reply:
    return Reply(error.status, {"success": False, "error": str(error), "code": error.status})


def _deepstack_box(face: Face) -> dict[str, object]:
    x1, y1, x2, y2 = face.box
    return {"x_min": round(x1), "y_min": round(y1), "x_max": round(x2), "y_max": round(y2)}


def _deepstack_photo(request: ApiRequest) -> bytes:
    upload = request.upload()
    for name, data in upload.files:
        if name == "image" or len(upload.files) == 1:  # the only file, or the photo as the whole body
            return data
    raise ApiError(400, "no image: send the photo as the form's 'image' file")


def _min_confidence(request: ApiRequest, default: float) -> float:
    text = request.upload().fields.get("min_confidence", "")
    try:
        value = float(text) if text else default
    except ValueError:
        raise ApiError(400, "min_confidence is a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ApiError(400, "min_confidence is a number from 0 to 1")
    return value


def _userid(request: ApiRequest) -> str:
    userid = request.upload().fields.get("userid", "").strip()
    if not userid:
        raise ApiError(400, "userid is required")
    return userid


def deepstack_routes(api: HttpApi) -> list[Route]:
    faces = api.faces

    def detect(request: ApiRequest, match: re.Match[str]) -> Reply:
        photo, least = _deepstack_photo(request), _min_confidence(request, 0.4)
        found = api.photo_work(lambda: faces.detect(photo))
        return Reply(200, {"success": True, "predictions": [
            {"confidence": round(f.score, 4), **_deepstack_box(f)} for f in found if f.score >= least]})

    def recognize(request: ApiRequest, match: re.Match[str]) -> Reply:
        photo = _deepstack_photo(request)
        _min_confidence(request, 0.67)  # checked, not used: names follow the box's measured threshold
        found = api.photo_work(lambda: faces.identify(photo))
        return Reply(200, {"success": True, "predictions": [
            {"confidence": round(f.similarity or 0.0, 4) if f.person else 0.0, "userid": f.person or "unknown",
             **_deepstack_box(f)} for f in found]})

    def register(request: ApiRequest, match: re.Match[str]) -> Reply:
        userid = _userid(request)
        photos = [data for _, data in request.upload().files]
        if not photos:
            raise ApiError(400, "no image: send the photo as the form's 'image' file")
        problems = []
        added = 0
        for photo in photos[:10]:
            try:
                api.photo_work(functools.partial(faces.enroll, userid, photo))
                added += 1
            except EdgedError as exc:
                problems.append(str(exc).replace("the photo: ", ""))
        if not added:
            raise ApiError(400, "; ".join(problems))
        return Reply(200, {"success": True, "message": "face added"})

    def listed(request: ApiRequest, match: re.Match[str]) -> Reply:
        return Reply(200, {"success": True, "faces": [p.name for p in faces.people()]})

    def delete(request: ApiRequest, match: re.Match[str]) -> Reply:
        userid = _userid(request)
        if any(p.name == userid for p in faces.people()):
            faces.delete(userid)
        return Reply(200, {"success": True})

    return [route("POST", "/v1/vision/face", detect), route("POST", "/v1/vision/face/recognize", recognize),
            route("POST", "/v1/vision/face/register", register), route("POST", "/v1/vision/face/list", listed),
            route("POST", "/v1/vision/face/delete", delete)]


# -- CompreFace ---------------------------------------------------------------------------------
def compreface_error(error: ApiError) -> Reply:
    return Reply(error.status, {"message": str(error), "code": error.code or error.status})


def _compreface_photo(request: ApiRequest) -> bytes:
    """The `file` of a multipart form, or a JSON body's base64 `file`."""
    upload = request.upload()
    for name, data in upload.files:
        if name == "file" or len(upload.files) == 1:  # the only file, or the photo as the whole body
            return data
    encoded = (upload.document or {}).get("file")
    if isinstance(encoded, str):
        if len(encoded) > MAX_UPLOAD * 4 // 3 + 4:
            raise ApiError(413, "the image is too large")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "file is not base64") from None
    raise ApiError(400, "no file: send the photo as the form's 'file', or JSON {\"file\": \"<base64>\"}")


def _number(request: ApiRequest, name: str, default: float, low: float, high: float) -> float:
    text = request.query.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        raise ApiError(400, f"{name} is a number from {low:g} to {high:g}") from None
    if not low <= value <= high or math.isnan(value):
        raise ApiError(400, f"{name} is a number from {low:g} to {high:g}")
    return value


def _compreface_box(face: Face) -> dict[str, object]:
    x1, y1, x2, y2 = face.box
    return {"probability": round(face.score, 5), "x_min": round(x1), "y_min": round(y1),
            "x_max": round(x2), "y_max": round(y2)}


def _found(found: list[Face], request: ApiRequest) -> list[Face]:
    least = _number(request, "det_prob_threshold", 0.8, 0.0, 1.0)
    limit = int(_number(request, "limit", 0, 0, 1000))
    kept = [f for f in found if f.score >= least]
    if not kept:
        raise ApiError(400, "No face is found in the given image", NO_FACE)
    return kept[:limit] if limit else kept


def _subject_body(request: ApiRequest) -> str:
    subject = (request.upload().document or {}).get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise ApiError(400, "send JSON {\"subject\": \"<name>\"}")
    return subject


def compreface_routes(api: HttpApi) -> list[Route]:
    faces = api.faces

    def recognize(request: ApiRequest, match: re.Match[str]) -> Reply:
        photo = _compreface_photo(request)
        found = _found(api.photo_work(lambda: faces.identify(photo)), request)
        return Reply(200, {"result": [{"box": _compreface_box(f), "subjects": (
            [{"subject": f.person, "similarity": round(f.similarity or 0.0, 5)}] if f.person else [])}
            for f in found]})

    def detect(request: ApiRequest, match: re.Match[str]) -> Reply:
        photo = _compreface_photo(request)
        found = _found(api.photo_work(lambda: faces.detect(photo)), request)
        return Reply(200, {"result": [{"box": _compreface_box(f)} for f in found]})

    def add_face(request: ApiRequest, match: re.Match[str]) -> Reply:
        subject = request.query.get("subject", "")
        if not subject.strip():
            raise ApiError(400, "subject is required (?subject=<name>)")
        photo = _compreface_photo(request)
        enrolled = api.photo_work(lambda: faces.enroll(subject, photo))
        return Reply(201, {"image_id": str(enrolled.face_id), "subject": enrolled.person})

    def list_faces(request: ApiRequest, match: re.Match[str]) -> Reply:
        subject = request.query.get("subject") or None
        page = int(_number(request, "page", 0, 0, 1e9))
        size = int(_number(request, "size", 20, 1, 1000))
        stored = [f for f in faces.faces(subject) if not f.person.startswith("unknown-")]
        return Reply(200, {"faces": [{"image_id": str(f.id), "subject": f.person}
                                     for f in stored[page * size:(page + 1) * size]],
                           "page_number": page, "page_size": size, "total_pages": math.ceil(len(stored) / size),
                           "total_elements": len(stored)})

    def delete_faces(request: ApiRequest, match: re.Match[str]) -> Reply:
        subject = request.query.get("subject", "")
        if not subject.strip():
            raise ApiError(400, "subject is required (?subject=<name>)")
        stored = faces.faces(subject)
        for face in stored:
            faces.delete_face(face.id)
        return Reply(200, {"deleted": len(stored)})

    def delete_face(request: ApiRequest, match: re.Match[str]) -> Reply:
        text = arg(match, "image_id")
        if not text.isdigit():
            raise ApiError(404, f"no face with id {text[:40]}")
        face = faces.delete_face(int(text))
        return Reply(200, {"image_id": str(face.id), "subject": face.person})

    def subjects(request: ApiRequest, match: re.Match[str]) -> Reply:
        return Reply(200, {"subjects": [p.name for p in faces.people()]})

    def add_subject(request: ApiRequest, match: re.Match[str]) -> Reply:
        subject = _subject_body(request)
        if not faces.add_person(subject):
            raise ApiError(400, f"Subject '{subject}' already exists")
        return Reply(201, {"subject": subject.strip()})

    def rename_subject(request: ApiRequest, match: re.Match[str]) -> Reply:
        faces.rename(arg(match, "subject"), _subject_body(request))
        return Reply(200, {"updated": True})

    def delete_subject(request: ApiRequest, match: re.Match[str]) -> Reply:
        subject = arg(match, "subject")
        if faces.person(subject).stranger:
            raise ApiError(404, f"Subject '{subject}' not found")
        faces.delete(subject)
        return Reply(200, {"subject": subject})

    def delete_subjects(request: ApiRequest, match: re.Match[str]) -> Reply:
        people = faces.people()
        for person in people:
            faces.delete(person.name)
        return Reply(200, {"deleted": len(people)})

    base = "/api/v1/recognition"
    return [route("POST", f"{base}/recognize", recognize), route("POST", "/api/v1/detection/detect", detect),
            route("POST", f"{base}/faces", add_face), route("GET", f"{base}/faces", list_faces),
            route("DELETE", f"{base}/faces", delete_faces), route("DELETE", f"{base}/faces/{{image_id}}", delete_face),
            route("GET", f"{base}/subjects", subjects), route("POST", f"{base}/subjects", add_subject),
            route("DELETE", f"{base}/subjects", delete_subjects),
            route("PUT", f"{base}/subjects/{{subject}}", rename_subject),
            route("DELETE", f"{base}/subjects/{{subject}}", delete_subject)]
