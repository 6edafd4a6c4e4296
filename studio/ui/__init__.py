"""The PySide6 editor. Talks to :mod:`studio.core` through document commands and to
:mod:`studio.engine` through events; importing it never imports torch (runs do, lazily)."""
