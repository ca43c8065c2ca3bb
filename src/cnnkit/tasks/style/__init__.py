"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016): `cnnkit stylize CONTENT STYLE --out OUT.png`.

An image is optimised (L-BFGS or Adam, in pixel space) so that a pretrained CNN sees the content
image's layout at one deep layer and the style image's textures (Gram matrices) at several layers.

- features.py: the feature extractor (named layers of any network, normalisation, early stop)
- networks.py: which network and which layers (EfficientNet-Lite0 by default, a cnnkit checkpoint,
  a VGG-19 state dict with the paper's layers)
- losses.py: content loss, Gram matrix, style loss, total variation
- optimise.py: the optimisation loop
- colour.py: --preserve-colour (luminance transfer in YCbCr)
- images.py: reading, sizing and writing the pictures (the result, the progress strip)
- api.py: `stylize(...)`, the whole verb as a library call; commands.py: the CLI verb
"""
