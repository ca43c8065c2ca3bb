import torch

from cnnkit.deploy.torch_int8 import parity, torch_int8_backend
from cnnkit.models import create_model


def test_a_traceable_model_quantizes_close_to_fp32():
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=10, in_chans=3, width=8, stages=2, depth=1).eval()
    x = torch.randn(64, 3, 16, 16)
    b = torch_int8_backend(model, x)
    assert b.run is not None, b.reason
    p = parity(model, b.run, x)
    assert p["images"] == 64 and p["top1_agreement"] >= 0.9
    assert 0 < p["max_abs_logit_diff"] < 0.5  # int8 really runs (not the fp32 model) and stays close
    assert b.run(x[:2]).dtype == torch.float32 and b.run(x[:2]).shape == (2, 10)


def test_an_untraceable_model_gives_its_reason():
    model = create_model("conv(8,3)-bn-relu-res(8)-gap-fc", num_classes=4, in_chans=3).eval()
    b = torch_int8_backend(model, torch.randn(4, 3, 16, 16))
    assert b.run is None and "torch.ao FX quantization cannot handle" in b.reason and "TraceError" in b.reason
