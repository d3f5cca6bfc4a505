"""Against a real Home Assistant 2024.1 (its MQTT integration set up through the config flow, as
in the UI) and a real Mosquitto, following every state change over the websocket API: what an
automation author sees must be true. Obama stays in view throughout (the looped video leaves
him out for 3 s, within the 30 s presence timeout); a person named `stranger` is never there."""

import signal
import time
from urllib.request import Request, urlopen

import pytest
from services import Daemon, HomeAssistant, config, free_port, gallery_copy, wait_until

from edged.gallery import Gallery


@pytest.fixture
def home_assistant(broker, tmp_path):
    ha = HomeAssistant(tmp_path / "home-assistant")
    ha.start(broker.port)
    yield ha
    ha.stop()


def entity(ha: HomeAssistant, name_end: str) -> str | None:
    """The entity whose friendly name ends with `name_end` (Home Assistant prefixes the device's)."""
    return next((s["entity_id"] for s in ha.states() if (s["name"] or "").endswith(name_end)), None)


def states_of(ha: HomeAssistant, entity_id: str, since: int = 0) -> list[str]:
    return [s["new"] for s in ha.states()[since:] if s["entity_id"] == entity_id]


def test_presence_is_true_across_reloads_restarts_and_renames(broker, home_assistant, stamped_videos,
                                                               enrolled_gallery, tmp_path):
    ha = home_assistant
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    with Gallery(gallery) as g:
        g.rename("biden", "stranger")  # a person whose name is a built-in sensor's
    port = free_port()
    text = config(stamped_videos["frames"], gallery, port).replace("[mqtt]\nstats_interval_s = 1.0\n", "")
    text += (f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n'
             "presence_timeout_s = 30.0\nstats_interval_s = 2.0\n")
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        obama = wait_until(lambda: entity(ha, "obama at door"), 90, "obama's entity in Home Assistant")
        wait_until(lambda: states_of(ha, obama)[-1:] == ["on"], 60, "obama on in Home Assistant")
        person = entity(ha, " stranger at door")
        built_in = entity(ha, "door stranger present")
        assert person and built_in and person != built_in, (person, built_in)
        rose = entity(ha, "rose_leslie at door")
        assert rose
        mark = len(ha.states())
        # SIGHUP with the same file: nothing becomes unavailable, nobody changes.
        reloads = daemon.text().count("configuration reloaded")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: daemon.text().count("configuration reloaded") > reloads, 30, "the reload")
        time.sleep(4)
        assert "unavailable" not in [s["new"] for s in ha.states()[mark:]], ha.states()[mark:]
        # SIGTERM and a restart, kill -9 and a restart: the box is unavailable while it is down,
        # but on and off stay as they were.
        for kill in (signal.SIGTERM, signal.SIGKILL):
            daemon.signal(kill)
            daemon.process.wait(30)
            daemon.start()
            wait_until(lambda: daemon.status(port), 60, "the daemon back")
            time.sleep(5)
        for entity_id, state in ((obama, "on"), (person, "off"), (rose, "off")):
            seen = [s for s in states_of(ha, entity_id, mark) if s != "unavailable"]
            assert set(seen) <= {state}, (entity_id, states_of(ha, entity_id, mark))
        assert states_of(ha, obama, mark)[-1] == "on"
        # A rename keeps the entity (its id, automations and history), under the new name.
        with Gallery(gallery) as g:
            g.rename("rose_leslie", "Rose Leslie")
        wait_until(lambda: entity(ha, "Rose Leslie at door") == rose, 30, "the renamed entity")
        assert {s["entity_id"] for s in ha.states() if "rose" in s["entity_id"].lower()} == {rose}
        # Removing the person named "stranger" leaves the built-in sensor where it was.
        with Gallery(gallery) as g:
            g.remove("stranger")
        wait_until(lambda: states_of(ha, person)[-1:] == [None], 30, "the person's entity removed")
        token = ha.events_file.read_text().splitlines()[0].split()[1]
        request = Request(f"{ha.url}/api/states/{built_in}", headers={"Authorization": f"Bearer {token}"})
        with urlopen(request, timeout=5) as response:
            assert response.status == 200
    finally:
        daemon.stop()
