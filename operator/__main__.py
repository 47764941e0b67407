"""``python -m airflowtask``: the same as the ``airflowtask-operator`` command."""

import sys

from airflowtask.cli import main

sys.exit(main())
