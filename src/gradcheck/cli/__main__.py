"""``python -m gradcheck.cli``: the same as the ``gradcheck`` command."""

import sys

from gradcheck.cli.app import main

sys.exit(main())
