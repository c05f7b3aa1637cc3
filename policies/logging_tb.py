"""TensorBoard scalars, as Stable-Baselines3 writes them: off unless a folder is given.

``tensorboard`` is not a dependency of the library: :class:`TensorBoardWriter` imports
torch's ``SummaryWriter`` when made and names the package if it is missing. Read a run
with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["TensorBoardWriter"]


class TensorBoardWriter:
    """Scalars of one run under ``log_dir``, each tag prefixed with ``prefix/``.

    Args:
        log_dir: the run's folder (created); TensorBoard shows one run per folder.
        prefix: tag prefix, e.g. ``"train"`` gives ``train/loss``, ``train/lr``.

    Raises:
        ImportError: the ``tensorboard`` package is not installed.
        OSError: ``log_dir`` cannot be created.
    """

    def __init__(self, log_dir: str | Path, prefix: str = "train") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                f"TensorBoard logging needs the tensorboard package ({err}); "
                "pip install tensorboard"
            ) from err
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def scalars(self, step: int, values: Mapping[str, Any], prefix: str | None = None) -> None:
        """Write every numeric entry of ``values`` but ``step`` at ``step``."""
        prefix = self.prefix if prefix is None else prefix
        for key, value in values.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{prefix}/{key}", float(value), int(step))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
