"""Detection (issue 17): torchvision's Faster R-CNN on `DetectionSplit` data (data/detection.py), trained
by its own small epoch loop (train.py) that reuses the engine's run folder, atomic checkpoints and seeding."""
