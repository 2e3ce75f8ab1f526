"""thesislib: models, losses, training loops and metrics for the replication book.

Importing the package has no side effects: no threads are configured, no seeds are
set, nothing is downloaded or written. Submodules are imported explicitly, e.g.
``from thesislib.engine import fit``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
