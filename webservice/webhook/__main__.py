"""``python -m webservice.webhook``: the same as ``webservice-admission``."""

import sys

from webservice.webhook.cli import main

sys.exit(main())
