"""Tests of webservice-runner, the 404 page and the ingress routing with real servers."""
