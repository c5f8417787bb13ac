"""``python -m centaurus.transitd --droplet NAME --socket PATH [--netns NS] ...``"""

import sys

from centaurus.transitd.daemon import main

sys.exit(main())
