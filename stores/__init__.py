__version__ = "0.1.0"

from stores.store import Store  # noqa: E402 - the one handle for a store (stores/store.py)

__all__ = ["Store", "__version__"]
