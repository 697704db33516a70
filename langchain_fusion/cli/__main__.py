"""``python -m langchain_fusion.cli``."""

import sys

from langchain_fusion.cli import main

sys.exit(main())
