import torch
from PIL import Image

from cnnkit.tasks.gan.grid import save_grid
from cnnkit.tasks.gan.progress import write_progress


def test_the_gif_has_one_frame_per_epoch_in_order(tmp_path):
    assert write_progress(tmp_path) is None  # no grid yet
    for epoch, level in [(2, 1.0), (1, -1.0), (3, 0.0)]:  # written out of order: sorted by name
        save_grid(torch.full((4, 1, 8, 8), level), tmp_path / f"epoch_{epoch:03d}.png")
    path = write_progress(tmp_path)
    assert path == tmp_path / "progress.gif"
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (22, 22) and gif.info["loop"] == 0
        centres = []
        for i in range(3):
            gif.seek(i)
            centres.append(gif.convert("L").getpixel((5, 5)))
    assert centres == [0, 255, 128]  # epochs 1, 2, 3: -1, +1, 0 (127.5 rounds to 128)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left over


def test_a_long_run_shows_evenly_spread_epochs(tmp_path, monkeypatch):
    from cnnkit.tasks.gan import progress

    monkeypatch.setattr(progress, "MAX_FRAMES", 3)
    for epoch in range(1, 6):  # epochs 1-5, levels -1, -0.5, 0, 0.5, 1
        save_grid(torch.full((4, 1, 8, 8), -1 + (epoch - 1) / 2), tmp_path / f"epoch_{epoch:03d}.png")
    with Image.open(progress.write_progress(tmp_path)) as gif:
        centres = []
        for i in range(gif.n_frames):
            gif.seek(i)
            centres.append(gif.convert("L").getpixel((5, 5)))
    assert centres == [0, 128, 255]  # epochs 1, 3, 5
