"""Built-in node packs. Each sub-package exposes ``NODE_PACK`` and uses only ``studio.api``,
exactly as a community plugin would."""
