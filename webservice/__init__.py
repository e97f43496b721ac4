"""webservice: run a Toolforge tool's website on Kubernetes.

The package is split by concern; see README.rst ("A short tour") for the map.
Importing this package is cheap: it imports nothing but the standard library.
"""

__version__ = "1.0.0"
