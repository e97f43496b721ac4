"""``python -m webservice``: the same as the ``webservice`` command."""

from webservice.ui.cli import main

if __name__ == "__main__":
    main()
