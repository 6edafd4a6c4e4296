"""myplugin: a node pack for Nuance Studio. Import the app only through ``studio.api``."""

from studio.api import NodePack

from .nodes import Brighten

NODE_PACK = NodePack(
    name="myplugin",  # must equal `name` in plugin.toml
    version="0.1.0",
    description="One line about what these nodes do.",
    nodes=[Brighten],
)
