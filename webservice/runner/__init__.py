"""webservice-runner: the launcher that runs inside a webservice's container.

The Deployment's container command is ``webservice-runner --type T --port 8000 [args]``
(see ``webservice.builders.objects.container_command``). The runner checks the tool's layout,
writes any server configuration to a runtime directory (never the tool's home on NFS),
starts the server in the foreground with ``PORT`` set and every byte of server and
application output on stdout/stderr (so that ``webservice logs`` shows it), forwards
signals to it and cleans up its whole process tree on exit.

This package is imported inside the Toolforge images: it must stay import-light, with
nothing outside the standard library (no click, no kubernetes, no rich) and nothing from
the rest of ``webservice`` beyond its (stdlib-only) ``__init__``.

Modules:

``cli``       the command line (``main``) and the environment contract
``context``   what the runner knows about the tool: home, name, port, prefix, runtime dir
``types``     the registry of runner types; each type module has ``prepare(ctx)``
``lighttpd``  ``lighttpd`` (PHP through FastCGI php-cgi) and ``lighttpd-plain``
``uwsgi``     ``uwsgi-python`` and ``uwsgi-plain``
``nodejs``    ``nodejs`` (alias ``js``): ``npm start`` in ``~/www/js``
``generic``   ``generic``: the extra arguments as a command, in the tool home
``process``   the supervisor: process group, signal forwarding, reaping, cleanup
"""
