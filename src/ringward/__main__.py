import sys

from ringward.cli import main

sys.exit(main())
