import sys

from rdtf_engine.cli.main import main

sys.exit(main())
