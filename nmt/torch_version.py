"""The oldest torch nmt runs on, and the one-line error for an older one.

pyproject.toml declares the same floor (`torch>=`, a test checks that they agree), so pip never
picks an older torch; this check is for the torch that pip did not pick (`pip install --no-deps`
beside an old one). The CLI runs it before a subcommand starts, `nmt.Translator` and `nmt.train`
before they import torch.
"""

from __future__ import annotations

import re

from nmt.errors import NmtError

# what nmt uses that older torch releases lack, and the first release that has it
TORCH_FEATURES: dict[str, tuple[int, int]] = {
    "torch.amp.GradScaler('cpu')": (2, 3),
    "fused Adam on CPU": (2, 4),
    "torch.get_autocast_dtype(device_type)": (2, 4),
    "torch.is_autocast_enabled(device_type)": (2, 4),
    "torch.nn.utils.get_total_norm": (2, 6),
}
TORCH_MIN: tuple[int, int] = max(TORCH_FEATURES.values())


def _release(version: str) -> tuple[int, int] | None:
    """'2.13.0+cpu' → (2, 13); None for a version string that does not start with major.minor."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def require_torch() -> None:
    """Raise NmtError (one line) unless the installed torch is at least TORCH_MIN."""
    floor = "%d.%d" % TORCH_MIN
    try:
        import torch
    except ImportError:
        raise NmtError(f"nmt needs torch >= {floor} (found none): pip install 'torch>={floor}'") from None
    found = _release(torch.__version__)
    if found is None or found >= TORCH_MIN:
        return
    lacking = ", ".join(f"{name} ({'%d.%d' % since})" for name, since in TORCH_FEATURES.items() if found < since)
    raise NmtError(f"nmt needs torch >= {floor} (found {torch.__version__}): it uses {lacking}; "
                   f"pip install 'torch>={floor}'")
