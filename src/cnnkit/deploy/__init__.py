"""Deployment: ONNX export with a parity check, int8 quantization, structured pruning and CPU
inference backends. The verbs live in `commands.py`; heavy imports (onnx, onnxruntime,
torch_pruning) happen inside the functions that need them."""
