"""Heat maps of what drove a prediction, from maintained libraries.

Grad-CAM, saliency, SmoothGrad and integrated gradients come from Captum; Grad-CAM++
from pytorch-grad-cam (PyPI `grad-cam`), which Captum lacks. Every method returns one map per image,
(B, H, W) at input resolution, non-negative and scaled to [0, 1] per image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.explain.transformer import is_token_layer, token_gradcam

METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients")
LAYER_METHODS = ("gradcam", "gradcam++")


def resolve_layer(model: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    """The module called `name` (default: the model's `target_layer`); errors list the names."""
    name = name or getattr(model, "target_layer", "") or ""
    modules = dict(model.named_modules())
    if not name:
        convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ConfigError("the model has no convolutional layer to explain; name one with --layer")
        name = convs[-1]
    if name not in modules:
        near = [n for n in modules if n and (n.startswith(name) or name in n)][:8] or [n for n in modules if n][:12]
        raise ConfigError(f"the model has no layer {name!r}; layers include: {', '.join(near)}")
    return name, modules[name]


def _scale(maps: np.ndarray) -> np.ndarray:
    """Per image: clip below 0, divide by the maximum (all-zero maps stay zero)."""
    maps = np.maximum(maps.astype(np.float32), 0)
    peak = maps.reshape(len(maps), -1).max(1).reshape(-1, 1, 1)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def _gradcam(model: nn.Module, x: torch.Tensor, targets: list[int], layer: nn.Module) -> np.ndarray:
    """Grad-CAM with Captum: ReLU(sum_k mean(dy/dA_k) A_k) at `layer`, bilinearly upsampled."""
    from captum.attr import LayerGradCam

    cam = LayerGradCam(model, layer).attribute(
        x, target=torch.as_tensor(targets, device=x.device), relu_attributions=True
    )  # (B, 1, h, w)
    cam = F.interpolate(cam.detach().float(), size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam - cam.flatten(1).amin(1).view(-1, 1, 1)  # bilinear ringing can dip below the ReLU floor
    return cam.cpu().numpy()


def _gradcam_pp(model: nn.Module, x: torch.Tensor, targets: list[int], layer: nn.Module) -> np.ndarray:
    """Grad-CAM++ with pytorch-grad-cam (its weights use second and third powers of the gradients)."""
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAMPlusPlus(model=model, target_layers=[layer]) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def _captum(
    model: nn.Module, x: torch.Tensor, targets: list[int], method: str, baseline: torch.Tensor | None, samples: int
) -> np.ndarray:
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    x = x.detach().clone().requires_grad_(True)
    target = torch.as_tensor(targets, device=x.device)
    if method == "saliency":
        attr = Saliency(model).attribute(x, target=target, abs=True)
    elif method == "smoothgrad":
        # noise of 15 % of each image's value range (Smilkov et al., 2017)
        spread = (x.detach().amax(dim=(1, 2, 3)) - x.detach().amin(dim=(1, 2, 3))).mean().item()
        attr = NoiseTunnel(Saliency(model)).attribute(
            x, target=target, abs=True, nt_type="smoothgrad", nt_samples=samples, stdevs=0.15 * max(spread, 1e-6)
        )
    else:
        base = baseline if baseline is not None else torch.zeros_like(x)
        attr = IntegratedGradients(model).attribute(
            x, baselines=base, target=target, n_steps=samples, internal_batch_size=max(len(x) * samples, 1)
        )
        attr = attr.abs()
    return attr.detach().sum(1).cpu().numpy()  # (B, H, W): summed over colour channels


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    targets: list[int] | torch.Tensor | None = None,
    *,
    layer: str | None = None,
    baseline: torch.Tensor | None = None,
    samples: int = 24,
) -> np.ndarray:
    """Heat maps (B, H, W) in [0, 1] for the model input `x` (normalised, (B, C, H, W)).

    `targets`: the class index to explain per image (default: the predicted class).
    `layer`: module name for Grad-CAM(++) (default: the model's `target_layer`).
    `baseline`: integrated gradients' starting input (default: zeros, i.e. the mean image).
    `samples`: noisy copies for SmoothGrad, integration steps for integrated gradients.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose from {', '.join(METHODS)}")
    model.eval()
    if targets is None:
        with torch.no_grad():
            targets = model(x).argmax(1)
    targets = [int(t) for t in torch.as_tensor(targets).reshape(-1).tolist()]
    if len(targets) != len(x):
        raise ValueError(f"{len(targets)} targets for {len(x)} images")
    with torch.enable_grad():  # works inside a caller's torch.no_grad() too
        if method in LAYER_METHODS:
            _, module = resolve_layer(model, layer)
            if is_token_layer(model, module):  # a ViT's tokens: laid out on the patch grid (explain/transformer.py)
                maps = token_gradcam(model, x, targets, module, plus_plus=method == "gradcam++")
            else:
                maps = (_gradcam_pp if method == "gradcam++" else _gradcam)(model, x, targets, module)
        else:
            maps = _captum(model, x, targets, method, baseline, samples)
    return _scale(np.asarray(maps))


def share_inside(heat: np.ndarray, mask: np.ndarray) -> float:
    """The fraction of a heat map's total that falls inside a boolean mask (0 when the map is empty)."""
    total = float(heat.sum())
    return float(heat[mask].sum()) / total if total > 0 else 0.0
