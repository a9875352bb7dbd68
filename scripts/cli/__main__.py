"""``python -m scripts.cli``: the same as the ``gridpatrol`` command."""

import sys

from scripts.cli import main

sys.exit(main())
