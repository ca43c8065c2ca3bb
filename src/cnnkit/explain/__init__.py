"""Explanations: what the network looks at and what it learned."""
