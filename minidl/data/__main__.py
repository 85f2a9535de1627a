"""`python -m minidl.data list|download NAME`: see minidl/data/command.py."""
import sys

from .command import main

sys.exit(main())
