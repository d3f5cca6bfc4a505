"""A camera's frames as the daemon reads them: files and streams through PyAV, every frame in
order, each converted to BGR only when something uses it."""

import time

import cv2
import numpy as np

from edged.io.source import FrameSource, SourceSettings


def test_a_file_is_read_frame_by_frame_and_nothing_is_converted_unasked(scenario_video):
    source = FrameSource(SourceSettings(str(scenario_video), camera="door", realtime=False))
    source.start()
    frames = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            frame = source.next_frame(timeout=1.0)
            if frame is not None:
                frames.append(frame)
                frame.small_grey(120)  # what motion and cut detection take, every frame
                frame.small_bgr(60)
            elif source.stats.ended:
                break
    finally:
        source.stop()
    expected = int(cv2.VideoCapture(str(scenario_video)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert [f.index for f in frames] == list(range(expected)), "every frame of a file, in order"
    assert not any(f.converted for f in frames), "small samples come from the decoder's planes"
    # The picture, once asked for, is the one OpenCV decodes (both convert FFmpeg's YUV).
    capture = cv2.VideoCapture(str(scenario_video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 10)
    reference = capture.read()[1]
    picture = frames[10].image
    assert frames[10].converted and picture.shape == reference.shape
    assert np.abs(picture.astype(np.int16) - reference).mean() < 3.0
