"""Checking a torch device before any work is done on it."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, once it is known to be usable here.

    ``"auto"`` means CUDA if available, else the CPU. Called before data is read or a model
    built, so that ``device="cuda"`` on a CPU-only torch fails at once with a message rather
    than with torch's ``AssertionError: Torch not compiled with CUDA enabled`` later.

    Raises:
        ValueError: ``device`` is not a device name torch knows, or names a CUDA/MPS device
            (or a CUDA index) this machine does not have.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device {str(device)!r} is not a torch device; use cpu, cuda or cuda:N"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            reason = (
                "this torch was built without CUDA"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise ValueError(f"device {str(device)!r} is not available: {reason}; use cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(
                f"device {str(device)!r} is not available: this machine has {count} CUDA "
                f"device(s), cuda:0 .. cuda:{count - 1}"
            )
    elif parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {str(device)!r} is not available here (no MPS); use cpu")
    return parsed
