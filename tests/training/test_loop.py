import torch

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.training.loop import train_one_epoch


def _epoch(data, batch_size=5, **kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    return train_one_epoch(
        model, data, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None, normalize=Normalize((0.5,), (0.5,), torch.device("cpu")),
        batch_size=batch_size, generator=torch.Generator().manual_seed(0), **kw,
    )


def _data(n=40):
    return Split(images=torch.randint(0, 255, (n, 1, 4, 4), dtype=torch.uint8), labels=torch.randint(0, 2, (n,)))


def test_stop_at_ends_an_epoch_early():
    seen = []
    out = _epoch(_data(), on_step=lambda step, *a: seen.append(step), stop_at=lambda: 3)
    assert seen == [1, 2, 3] and out["images"] == 15


def test_augment_gets_each_batch_index_and_the_epoch():
    calls = []

    class Spy(BatchAugment):
        def __call__(self, x, generator, *, index=None, epoch=1):
            calls.append((index.clone(), epoch))
            return super().__call__(x, generator, index=index, epoch=epoch)

    data = _data()
    _epoch(data, augment=Spy(hflip=True, alternate_flip=True), epoch=4)
    index = torch.cat([i for i, _ in calls])
    assert sorted(index.tolist()) == list(range(40)) and {e for _, e in calls} == {4}  # one epoch: every image once, by its index
