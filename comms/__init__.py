"""comms: the client communication desk's core, usable without Streamlit.

`from comms import Desk` is the notebook API (comms.desk), imported on first use
so that `import comms.store` and the like stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comms.desk import Desk

__version__ = "0.1.0"
__all__ = ["Desk", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Desk":
        from comms.desk import Desk

        return Desk
    raise AttributeError(f"module 'comms' has no attribute {name!r}")
