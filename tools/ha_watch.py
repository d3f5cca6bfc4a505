"""Drives a real Home Assistant for the tests: run by the Python of Home Assistant's virtual
environment (tools/setup.sh --dev makes one), against a Home Assistant already listening.
It onboards a user, sets up the MQTT integration through its config flow (the way a user does
in the UI), then follows every state change over the websocket API.

    python ha_watch.py http://127.0.0.1:PORT BROKER_PORT

Prints `ready <access token>` once it follows the states, then one JSON line per state change:
{"entity_id", "old", "new", "name", "time"}. Ends when its standard input closes."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def token(session: aiohttp.ClientSession, base: str) -> str:
    client = base + "/"
    async with session.post(f"{base}/api/onboarding/users", json={
            "client_id": client, "name": "edged test", "username": "edged", "password": "edged-test-password",
            "language": "en"}) as response:
        response.raise_for_status()
        code = (await response.json())["auth_code"]
    async with session.post(f"{base}/auth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": client}) as response:
        response.raise_for_status()
        return str((await response.json())["access_token"])


async def add_mqtt(session: aiohttp.ClientSession, base: str, access: str, broker_port: int) -> None:
    headers = {"Authorization": f"Bearer {access}"}
    async with session.post(f"{base}/api/config/config_entries/flow", headers=headers,
                            json={"handler": "mqtt", "show_advanced_options": False}) as response:
        response.raise_for_status()
        flow = await response.json()
    async with session.post(f"{base}/api/config/config_entries/flow/{flow['flow_id']}", headers=headers,
                            json={"broker": "127.0.0.1", "port": broker_port}) as response:
        response.raise_for_status()
        result = await response.json()
    if result.get("type") != "create_entry":
        raise RuntimeError(f"the MQTT config flow did not finish: {result}")


async def follow(base: str, broker_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        access = await token(session, base)
        await add_mqtt(session, base, access, broker_port)
        async with session.ws_connect(f"{base}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": access})
            if (await ws.receive_json()).get("type") != "auth_ok":
                raise RuntimeError("websocket authentication failed")
            await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
            await ws.receive_json()  # the subscription's result
            print(f"ready {access}", flush=True)
            stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            while not stdin_closed.done():
                try:
                    message = await asyncio.wait_for(ws.receive_json(), 0.5)
                except asyncio.TimeoutError:
                    continue
                data = message.get("event", {}).get("data", {})
                old, new = data.get("old_state") or {}, data.get("new_state") or {}
                print(json.dumps({"entity_id": data.get("entity_id"), "old": old.get("state"), "new": new.get("state"),
                                  "name": (new.get("attributes") or {}).get("friendly_name"),
                                  "time": message.get("event", {}).get("time_fired")}), flush=True)


if __name__ == "__main__":
    asyncio.run(follow(sys.argv[1].rstrip("/"), int(sys.argv[2])))
