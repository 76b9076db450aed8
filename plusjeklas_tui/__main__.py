"""`python -m plusjeklas_tui` does what the `plusjeklas` command does."""

from plusjeklas_tui.cli import main

if __name__ == "__main__":
    main()
