"""What to say when `torch.load(weights_only=True)` refuses a file because it pickles code or objects.

torch's own message advises re-running with `weights_only=False`; cnnkit never does that (a
pickle can run any code when loaded), so its errors say so instead and name what the file
refers to.
"""

from __future__ import annotations

import pickle
import re

REFUSED = "this file needs full unpickling, which cnnkit refuses because it could run code"


def refusal(e: BaseException) -> str | None:
    """REFUSED plus the object the file refers to, if `e` is torch's weights-only refusal; else None."""
    text = str(e)
    if not isinstance(e, pickle.UnpicklingError) or "weights only load failed" not in text.lower():
        return None
    found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(
        r"Unsupported (?:global|operand|class)[^:]*: ([^\n]+)", text, re.IGNORECASE
    )
    what = f" (it refers to {found.group(1).strip()[:80]})" if found else ""
    return f"{REFUSED}{what}"
