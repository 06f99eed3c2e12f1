import sys

from lossnets.cli import main

sys.exit(main())
