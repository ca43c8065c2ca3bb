"""Image generation with a DCGAN (Radford et al. 2016): `model.py` is the generator / discriminator pair
written as in the paper (class-conditional, spectral norm: options), `step.py` one alternating update of both
networks (BCE or hinge), `ema.py` the generator's moving average, `run.py` the epoch loop with its run folder
(sample grids, `progress.py`'s GIF, metrics.csv, both networks and optimisers in last.ckpt), `generate.py`
images and slerp walks from a run, `fid.py` / `score.py` the classifier-FID and class shares, `commands.py`
the `cnnkit generate` verb, `report.py` report.html's section. The engine hands a run
with data.task gan to `run.train_gan` (training/gan.py): two optimisers do not fit its single-loss step.
Nothing is imported here, so that commands.py (the CLI's parser) imports no torch."""
