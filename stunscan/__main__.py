"""Run the command-line interface: python -m stunscan."""

from stunscan.cli import main

if __name__ == "__main__":
    main()
