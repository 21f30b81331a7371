"""DepthCrafter's window schedule, noise rotation and overlap blending on clips longer than a
window, against expectations written out by hand."""

import pytest
import torch

from trajcrafter_core.depth.windows import Window, blend_weights, plan_windows, rotate_window_noise, run_windows
from trajcrafter_core.errors import TrajCrafterError


def test_plan_short_clip_is_one_window_without_overlap():
    assert plan_windows(49, 110, 25) == [Window(0, 49, 0)]
    assert plan_windows(110, 110, 25) == [Window(0, 110, 0)]


def test_plan_official_long_clip():
    # 200 frames, window 110, overlap 25: stride 85 -> starts 0, 85 (85 < 175), 170 < 175
    assert plan_windows(200, 110, 25) == [Window(0, 110, 0), Window(85, 195, 25), Window(170, 200, 25)]


def test_plan_tiny_windows():
    assert plan_windows(9, 5, 3) == [Window(0, 5, 0), Window(2, 7, 3), Window(4, 9, 3)]
    assert plan_windows(7, 4, 2) == [Window(0, 4, 0), Window(2, 6, 2), Window(4, 7, 2)]
    assert plan_windows(6, 3, 0) == [Window(0, 3, 0), Window(3, 6, 0)]


@pytest.mark.parametrize("frames, window, overlap", [(0, 5, 1), (10, 0, 0), (10, 4, 4), (10, 4, -1)])
def test_plan_bad_values(frames, window, overlap):
    with pytest.raises(TrajCrafterError):
        plan_windows(frames, window, overlap)


def test_blend_weights_are_linspace():
    assert blend_weights(3).tolist() == [0.0, 0.5, 1.0]


def test_noise_rotation_keeps_each_shared_frame_noise():
    n = torch.arange(5.0)
    assert rotate_window_noise(n, 3).tolist() == [2, 3, 4, 0, 1]
    assert rotate_window_noise(rotate_window_noise(n, 3), 3).tolist() == [4, 0, 1, 2, 3]


def test_run_windows_blends_and_injects_as_expected():
    """9 frames, window 5, overlap 3 -> windows [0,5), [2,7), [4,9).

    The fake denoiser returns the constant k+1 for window k. Written out by hand:
    window 1 blends frames 2,3,4 with w = 0, .5, 1 -> 1, 1.5, 2; frames 5,6 = 2.
    window 2 blends frames 4,5,6 (2, 2, 2) with 3 -> 2, 2.5, 3; frames 7,8 = 3.
    """
    calls = []

    def denoise(window, noise, previous):
        calls.append((window, noise[:, 0, 0].tolist(), None if previous is None else previous[:, 0, 0].tolist()))
        k = len(calls) - 1
        return torch.full((window.length, 1, 1), float(k + 1))

    noise = torch.arange(5.0).view(5, 1, 1)
    out = run_windows(9, 5, 3, noise, denoise, finished_device=torch.device("cpu"))
    assert out[:, 0, 0].tolist() == [1, 1, 1, 1.5, 2, 2.5, 3, 3, 3]

    assert [c[0] for c in calls] == [Window(0, 5, 0), Window(2, 7, 3), Window(4, 9, 3)]
    # noise of window k by absolute frame: a frame shared by two windows keeps its noise
    assert [c[1] for c in calls] == [[0, 1, 2, 3, 4], [2, 3, 4, 0, 1], [4, 0, 1, 2, 3]]
    by_frame = {}
    for window, labels, _ in calls:
        for i, label in enumerate(labels):
            assert by_frame.setdefault(window.start + i, label) == label
    # 'previous' = the clip's finished latents of the shared frames before blending
    assert [c[2] for c in calls] == [None, [1, 1, 1], [2, 2, 2]]


def test_run_windows_last_window_shorter_and_rotation_uses_full_window():
    # 7 frames, window 4, overlap 2 -> [0,4), [2,6), [4,7) (3 frames)
    seen = []

    def denoise(window, noise, previous):
        seen.append(noise[:, 0].tolist())
        return noise + 10 * len(seen)

    out = run_windows(7, 4, 2, torch.arange(4.0).view(4, 1), denoise)
    assert seen == [[0, 1, 2, 3], [2, 3, 0, 1], [0, 1, 2]]
    # frames 0,1 from window 0 (noise + 10): 10, 11
    # window 1 returns [2,3,0,1] + 20; frames 2,3: w=[0,1] -> old 12, new 23
    # window 2 returns [0,1,2] + 30; frames 4,5: old 20, new 31; frame 6 = 32
    assert out[:, 0].tolist() == [10, 11, 12, 23, 20, 31, 32]


def test_run_windows_single_window_and_no_overlap():
    out = run_windows(3, 110, 25, torch.zeros(3, 2), lambda w, n, p: n + 1)
    assert out.tolist() == [[1, 1]] * 3
    out = run_windows(6, 3, 0, torch.arange(3.0).view(3, 1), lambda w, n, p: n + w.start)
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_run_windows_rejects_wrong_noise_length():
    with pytest.raises(TrajCrafterError, match="initial noise"):
        run_windows(9, 5, 3, torch.zeros(4, 1), lambda w, n, p: n)
