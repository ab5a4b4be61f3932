"""`python -m i2i_unlearn.cli` (what `accelerate launch -m i2i_unlearn.cli` runs) is the `i2i-unlearn` command."""
from i2i_unlearn.cli import main

main()
