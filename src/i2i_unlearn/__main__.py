"""`python -m i2i_unlearn ...` is the `i2i-unlearn` command (handy under `accelerate launch -m` and in environments without the script)."""
from i2i_unlearn.cli import main

main()
