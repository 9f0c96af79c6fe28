"""`python -m hfft` (so `accelerate launch -m hfft train CONFIG` works)."""

import sys

from hfft.cli import main

sys.exit(main())
