"""``python -m jaxopt_lite``: the ``jaxopt-lite`` command."""

from jaxopt_lite._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
