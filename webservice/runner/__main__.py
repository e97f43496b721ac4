"""``python3 -m webservice.runner``: the same as ``webservice-runner``."""

from webservice.runner.cli import main

if __name__ == "__main__":
    main()
