import sys

from synthgen_client.cli import main

sys.exit(main())
