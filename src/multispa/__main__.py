"""`python -m multispa` runs the command-line interface."""

from multispa.cli import main

if __name__ == "__main__":
    main()
