import optuna
import torch

from cnnkit.models import create_model
from cnnkit.models.attention import CBAM, SqueezeExcite
from cnnkit.search.grammar import build_spec
from cnnkit.search.space import space_from_dict


def test_build_spec_reads_like_the_grammar():
    assert build_spec(stages=2, depth=1, width=8, kernel=5) == (
        "conv(8,3)-bn-relu-conv(8,5)-bn-relu-maxpool(2)-conv(16,5)-bn-relu-gap-fc"
    )
    assert build_spec(stages=2, depth=2, width=4, block="res", attention="cbam", dropout=0.25) == (
        "conv(4,3)-bn-relu-res(4,stride=1,attn=cbam)-res(4,stride=1,attn=cbam)"
        "-res(8,stride=2,attn=cbam)-res(8,stride=1,attn=cbam)-gap-dropout(0.25)-fc"
    )
    assert (
        build_spec(stages=1, width=6, attention="se", reduction=2) == "conv(6,3)-bn-relu-conv(6,3)-bn-relu-se(2)-gap-fc"
    )


def test_every_sampled_spec_builds_and_runs():
    space = space_from_dict(
        {
            "architecture": {
                "stages": "int(1, 3)",
                "depth": "int(1, 2)",
                "width": [4, 8],
                "widen": [1, 2],
                "kernel": [1, 3, 5],
                "block": ["conv", "res"],
                "attention": ["none", "se", "cbam"],
                "reduction": [1, 4],
                "dropout": "uniform(0, 0.5)",
            }
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        spec = space.suggest(trial)["model.name"]
        model = create_model(spec, num_classes=3, in_chans=1).eval()
        assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 3), spec
        seen |= {type(m).__name__ for m in model.modules() if isinstance(m, (SqueezeExcite, CBAM))}
        if "res(" in spec:
            seen.add("res")
        study.tell(trial, 0.0)
    assert seen == {"SqueezeExcite", "CBAM", "res"}  # the sample covered every block type
