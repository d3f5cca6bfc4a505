"""The pages as a person sees them, measured in Chromium at a phone's width and at three desktop
widths, with three cameras: the live picture keeps its aspect ratio and nothing runs off the
side (header links included)."""

from services import Daemon, free_port, gallery_copy, wait_until

from .test_cameras import cameras_config, copies

WIDTHS = (390, 1024, 1440, 1920)


def overflow(page) -> int:
    """How far the page runs past the viewport's right edge, in CSS pixels (0: it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def links_outside(page) -> list[str]:
    return page.evaluate("""[...document.querySelectorAll('header a, nav a')]
        .filter(a => a.getBoundingClientRect().right > window.innerWidth + 1).map(a => a.textContent)""")


def test_pages_fit_phones_and_desktops(chromium, scenario_video, enrolled_gallery, tmp_path):
    videos = copies(scenario_video, tmp_path / "videos", ["door", "yard", "garage"])
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    text = cameras_config({name: (video, 2.0) for name, video in videos.items()}, gallery, port)
    daemon = Daemon(tmp_path / "run", text)
    daemon.start()
    try:
        wait_until(lambda: len((daemon.status(port) or {}).get("cameras", [])) == 3, 90, "three cameras")
        wait_until(lambda: (daemon.status(port) or {}).get("recent_events"), 60, "some events")
        for width in WIDTHS:
            page = chromium.new_page(viewport={"width": width, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/cameras/door/")
            page.wait_for_function("document.getElementById('live').naturalWidth > 0", timeout=20000)
            page.wait_for_function("document.querySelectorAll('#cameras a').length === 3", timeout=20000)
            shown = page.evaluate("""(() => { const r = document.getElementById('live').getBoundingClientRect();
                const i = document.getElementById('live');
                return [r.width, r.height, i.naturalWidth, i.naturalHeight]; })()""")
            drawn, natural = shown[0] / shown[1], shown[2] / shown[3]
            assert abs(drawn / natural - 1) < 0.02, (width, shown)
            assert overflow(page) <= 0 and links_outside(page) == [], (width, overflow(page), links_outside(page))
            for path in ("/clips/", "/library"):
                page.goto(f"http://127.0.0.1:{port}{path}")
                page.wait_for_timeout(1500)
                assert overflow(page) <= 0 and links_outside(page) == [], (width, path, overflow(page))
            page.close()
    finally:
        daemon.stop()
