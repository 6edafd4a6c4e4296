"""imagetools: everyday picture adjustments (levels, colour balance, vibrance, sharpening, film grain).

The example community plugin: it uses only :mod:`studio.api`, exactly as a third-party plugin would, and is
imported by the app as ``nuance_plugins.imagetools``, so its own modules are reached by relative imports.
Its nodes register as ``imagetools.<NAME>``. torch is imported only when a node runs, so listing nodes stays fast.
"""

from studio.api import NodePack

from .adjust import ColorBalance, Levels, Vibrance
from .filters import FilmGrain, Sharpen

NODE_PACK = NodePack(
    name="imagetools",
    description="Image adjustments: Levels, Color Balance, Vibrance, Sharpen (unsharp mask) and Film Grain.",
    version="1.0.0",
    nodes=[Levels, ColorBalance, Vibrance, Sharpen, FilmGrain],
)

__all__ = ["NODE_PACK", "ColorBalance", "FilmGrain", "Levels", "Sharpen", "Vibrance"]
