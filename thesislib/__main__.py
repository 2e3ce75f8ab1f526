"""``python -m thesislib ...``: the same command line as ``thesislib``."""

import sys

from thesislib.cli import main

sys.exit(main())
