"""`python -m livegen`: the same as the `livegen` command."""

from livegen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
