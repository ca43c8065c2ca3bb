"""`cnnkit serve`: a model behind HTTP (FastAPI + uvicorn) with dynamic batching, limits and metrics.

`create_app(model, config)` builds the ASGI app (see app.py); `cnnkit serve` runs it with uvicorn.
Importing this package imports nothing heavy: FastAPI and torch load in the modules that use them.
"""
