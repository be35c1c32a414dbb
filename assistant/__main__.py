"""`python -m assistant` is the `paperbot` command."""

from assistant.cli import main

if __name__ == "__main__":
    main()
