"""Checks MQTT discovery payloads with Home Assistant's own schemas: run by the Python of a
virtual environment holding `homeassistant` (tools/setup.sh --dev makes one), not edged's.
Reads [[topic, payload], ...] as JSON on stdin; prints {"checked": N, "errors": [...]} on stdout,
each error naming the topic and what Home Assistant's schema said."""

from __future__ import annotations

import importlib
import json
import sys

# Home Assistant's components import each other in circles; this one first breaks the circle.
import homeassistant.components.persistent_notification  # noqa: F401

PLATFORMS = ("binary_sensor", "sensor", "switch", "image", "event", "camera")


def main() -> int:
    schemas = {name: importlib.import_module(f"homeassistant.components.mqtt.{name}").DISCOVERY_SCHEMA
               for name in PLATFORMS}
    trigger = importlib.import_module("homeassistant.components.mqtt.device_trigger").TRIGGER_DISCOVERY_SCHEMA
    errors, checked = [], 0
    for topic, payload in json.load(sys.stdin):
        if not payload:  # an empty retained config removes an entity: nothing to check
            continue
        component = topic.split("/")[1]
        schema = trigger if component == "device_automation" else schemas.get(component)
        if schema is None:
            errors.append(f"{topic}: no schema for component {component!r} here")
            continue
        try:
            schema(json.loads(payload))
            checked += 1
        except Exception as exc:  # voluptuous' Invalid and its kin: the message is what matters
            errors.append(f"{topic}: {exc}")
    print(json.dumps({"checked": checked, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
