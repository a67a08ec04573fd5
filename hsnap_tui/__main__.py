import sys

from hsnap_tui.cli import main

sys.exit(main())
