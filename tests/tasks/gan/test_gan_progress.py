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
