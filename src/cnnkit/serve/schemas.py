"""The service's OpenAPI description: response models and the request bodies /docs shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TopK(BaseModel):
    label: str
    probability: float


class PredictionOut(BaseModel):
    source: str | None
    label: str
    probability: float
    top_k: list[TopK]
    labels: list[TopK] | None = None


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    errors: list[dict]
    latency_ms: float


class ErrorResponse(BaseModel):
    detail: str
    field: str | None = None


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "top_k": {"type": "integer", "default": 5},
                    },
                    "required": ["files"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {
                                "oneOf": [
                                    {"type": "string", "description": "base64 (or a data: URL)"},
                                    {
                                        "type": "object",
                                        "properties": {"name": {"type": "string"}, "data": {"type": "string"}},
                                    },
                                ]
                            },
                        },
                        "top_k": {"type": "integer", "default": 5},
                    },
                    "required": ["images"],
                }
            },
        },
    }
}
EXPLAIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "description": "base64"}},
                    "required": ["image"],
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 413, 415, 422, 503, 504)}
